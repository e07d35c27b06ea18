"""Shared infrastructure used by every service slice: config, errors, storage, messaging."""
