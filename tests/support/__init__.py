"""Shared test support: backends (SQLite/PostgreSQL/Redis) and a real server on port 0."""
