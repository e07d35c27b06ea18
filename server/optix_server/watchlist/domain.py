"""The watchlist slice's domain values: plain dataclasses, no storage or gRPC types."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime

DEFAULT_DISPLAY_NAME = "My Watchlist"


@dataclass(frozen=True)
class WatchlistItem:
    """One symbol of a list (canonical form) and when it was added."""

    symbol: str
    add_time: datetime


@dataclass(frozen=True)
class Watchlist:
    """A user's named, ordered list of symbols at one revision."""

    id: str
    user_id: str
    display_name: str
    items: tuple[WatchlistItem, ...]
    is_default: bool
    # Bumped by every change; the etag is derived from it.
    revision: int
    create_time: datetime
    update_time: datetime

    @property
    def symbols(self) -> tuple[str, ...]:
        """The symbols in order."""
        return tuple(item.symbol for item in self.items)

    def with_items(self, items: tuple[WatchlistItem, ...], now: datetime) -> Watchlist:
        """This list with other items (the next revision is the repository's to assign)."""
        return replace(self, items=items, update_time=now)


@dataclass(frozen=True)
class WatchlistPage:
    """One page of a user's lists, and the cursor after its last one (None: no more)."""

    watchlists: list[Watchlist] = field(default_factory=list)
    next_cursor: tuple[bool, str, str] | None = None


def insert_symbols(
    items: tuple[WatchlistItem, ...], symbols: list[str], index: int | None, now: datetime
) -> tuple[WatchlistItem, ...]:
    """`items` with the new `symbols` inserted at `index` (None or past the end: appended);
    symbols already in the list stay where they are."""
    present = {item.symbol for item in items}
    new = [WatchlistItem(symbol, now) for symbol in dict.fromkeys(symbols) if symbol not in present]
    at = len(items) if index is None else min(index, len(items))
    return (*items[:at], *new, *items[at:])


def remove_symbols(
    items: tuple[WatchlistItem, ...], symbols: list[str]
) -> tuple[WatchlistItem, ...]:
    """`items` without `symbols` (ones not present are ignored)."""
    gone = set(symbols)
    return tuple(item for item in items if item.symbol not in gone)


def move_symbol(
    items: tuple[WatchlistItem, ...], symbol: str, index: int
) -> tuple[WatchlistItem, ...] | None:
    """`items` with `symbol` moved to `index` (past the end: last); None when it is absent."""
    position = next((i for i, item in enumerate(items) if item.symbol == symbol), None)
    if position is None:
        return None
    rest = [*items[:position], *items[position + 1 :]]
    rest.insert(min(index, len(rest)), items[position])
    return tuple(rest)


def replace_symbols(
    items: tuple[WatchlistItem, ...], symbols: list[str], now: datetime
) -> tuple[WatchlistItem, ...]:
    """The list `symbols` in that order, keeping the add time of symbols that stay."""
    added = {item.symbol: item.add_time for item in items}
    return tuple(WatchlistItem(s, added.get(s, now)) for s in dict.fromkeys(symbols))
