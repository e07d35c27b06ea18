"""Watchlist fixtures: one server (user + marketdata + watchlist) per database for the package."""

from __future__ import annotations

from tests.support.stack_fixtures import per_database_stack
from tests.watchlist.harness import watchlist_stack

db_kind, shared_stack, stack = per_database_stack(watchlist_stack, "watchlist")
