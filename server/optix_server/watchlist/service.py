"""The watchlist slice's domain logic: ownership, limits, etags, idempotent creates, symbol
checks against market data. Knows nothing of gRPC; raises domain errors."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from enum import Enum

from optix.marketdata.v1 import quote_pb2
from optix.watchlist.v1 import watchlist_pb2
from optix_server.common.market_data import MarketData
from optix_server.common.occ import SymbolError, normalize_symbol
from optix_server.infra import errors
from optix_server.infra.aip.etags import check_etag, stale_etag
from optix_server.infra.aip.masks import update_paths
from optix_server.infra.aip.names import ChildPattern, parse_parent
from optix_server.infra.aip.paging import PageTokens, page_size
from optix_server.infra.aip.request_ids import check_request_id
from optix_server.infra.auth.clock import Clock
from optix_server.infra.db import new_id
from optix_server.infra.errors import ViolationCollector
from optix_server.watchlist import validation
from optix_server.watchlist.config import WatchlistSettings
from optix_server.watchlist.domain import (
    DEFAULT_DISPLAY_NAME,
    Watchlist,
    WatchlistItem,
    insert_symbols,
    move_symbol,
    remove_symbols,
    replace_symbols,
)
from optix_server.watchlist.repository import Cursor, WatchlistRepository

WATCHLISTS = ChildPattern("watchlists", watchlist_pb2.Watchlist.DESCRIPTOR.full_name)
UPDATABLE = ("display_name", "items", "is_default")
# Optimistic retries of an unconditional change that lost a race to another change: each
# round lets at least one racer through, so this covers dozens of concurrent writers.
MAX_ATTEMPTS = 64


class View(Enum):
    """How much of a list a read returns."""

    BASIC = "basic"
    WITH_QUOTES = "with_quotes"


@dataclass(frozen=True)
class Quoted:
    """Lists as read, with the quotes of their symbols when the view asked for them."""

    watchlists: list[Watchlist]
    quotes: Mapping[str, quote_pb2.Quote]
    # The view asked for quotes but market data did not answer in time.
    quotes_unavailable: bool = False
    next_page_token: str = ""


@dataclass(frozen=True)
class WatchlistUpdate:
    """UpdateWatchlist's values; only the fields in `paths` are read."""

    name: str
    paths: Sequence[str]
    display_name: str = ""
    item_symbols: Sequence[str] = ()
    is_default: bool = False
    etag: str = ""


class WatchlistService:
    """Users' watchlists."""

    def __init__(
        self,
        repository: WatchlistRepository,
        market: MarketData,
        settings: WatchlistSettings,
        clock: Clock,
        page_tokens: PageTokens,
    ) -> None:
        self._repository = repository
        self._market = market
        self._settings = settings
        self._clock = clock
        self._page_tokens = page_tokens

    # --- reads --------------------------------------------------------------------------------

    async def list_watchlists(
        self,
        caller: str,
        parent: str,
        *,
        size: int,
        page_token: str,
        view: View,
        budget_s: float,
    ) -> Quoted:
        """One page of the caller's lists, the default first (created if missing)."""
        user_id = parse_parent(parent, caller)
        limit = page_size(size)
        bound = {"parent": f"users/{user_id}", "view": view.value}
        cursor = self._page_tokens.read(page_token, user_id, bound)
        await self._ensure_default(user_id)
        after: Cursor | None = None if cursor is None else _cursor(cursor)
        page = await self._repository.page(user_id, after, limit)
        token = (
            self._page_tokens.issue(user_id, bound, list(page.next_cursor))
            if page.next_cursor
            else ""
        )
        quoted = await self._with_quotes(page.watchlists, view, budget_s)
        return replace(quoted, next_page_token=token)

    async def get(self, caller: str, name: str, *, view: View, budget_s: float) -> Quoted:
        """One of the caller's lists."""
        watchlist = await self._owned(caller, name)
        return await self._with_quotes([watchlist], view, budget_s)

    # --- writes -------------------------------------------------------------------------------

    async def create(
        self,
        caller: str,
        parent: str,
        *,
        display_name: str,
        item_symbols: Sequence[str],
        request_id: str,
        budget_s: float,
    ) -> Watchlist:
        """A new (non-default) list, idempotent per request id."""
        user_id = parse_parent(parent, caller)
        check = ViolationCollector()
        name = validation.display_name(check, "watchlist.display_name", display_name)
        symbols = validation.item_symbols(check, "watchlist.items", item_symbols)
        check.raise_if_any()
        check_request_id(request_id)
        self._check_size(len(symbols))
        await self._check_known(symbols, "watchlist.items", item_symbols, budget_s)
        await self._ensure_default(user_id)
        now = self._clock.now()
        watchlist = Watchlist(
            id=new_id(),
            user_id=user_id,
            display_name=name,
            items=tuple(WatchlistItem(symbol, now) for symbol in symbols),
            is_default=False,
            revision=1,
            create_time=now,
            update_time=now,
        )
        return await self._repository.create(
            watchlist,
            request_id=request_id,
            max_lists=self._settings.max_lists_per_user,
            now=now,
        )

    async def update(self, caller: str, update: WatchlistUpdate, *, budget_s: float) -> Watchlist:
        """Rename, replace the items, and/or make default, as the mask says."""
        paths = update_paths(update.paths, UPDATABLE)
        check = ViolationCollector()
        name = (
            validation.display_name(check, "watchlist.display_name", update.display_name)
            if "display_name" in paths
            else ""
        )
        symbols = (
            validation.item_symbols(check, "watchlist.items", update.item_symbols)
            if "items" in paths
            else []
        )
        if "is_default" in paths and not update.is_default:
            check.add(
                "watchlist.is_default", "can only be set to true (make another list the default)"
            )
        check.raise_if_any()
        watchlist_id = WATCHLISTS.parse(update.name, caller, field="watchlist.name")
        if "items" in paths:
            self._check_size(len(symbols))
            current = await self._get(caller, update.name, watchlist_id)
            new = [s for s in symbols if s not in set(current.symbols)]
            await self._check_known(new, "watchlist.items", update.item_symbols, budget_s)

        def change(current: Watchlist) -> Watchlist:
            now = self._clock.now()
            updated = current
            if "display_name" in paths:
                updated = replace(updated, display_name=name, update_time=now)
            if "items" in paths:
                updated = updated.with_items(replace_symbols(current.items, symbols, now), now)
            return updated

        watchlist = await self._change(caller, update.name, watchlist_id, update.etag, change)
        if "is_default" in paths and not watchlist.is_default:
            watchlist = await self._make_default(caller, update.name, watchlist_id, watchlist)
        return watchlist

    async def delete(self, caller: str, name: str, *, etag: str) -> None:
        """Delete a list that is not the default."""
        watchlist = await self._owned(caller, name)
        check_etag(etag, watchlist.id, watchlist.revision)
        if watchlist.is_default:
            raise _default_not_deletable()
        expected = watchlist.revision if etag else None
        if await self._repository.delete(watchlist.user_id, watchlist.id, expected):
            return
        # Nothing matched: gone, made default, or (with an etag) changed meanwhile.
        now = await self._repository.get(watchlist.user_id, watchlist.id)
        if now is None:
            raise WATCHLISTS.not_found(name)
        if now.is_default:
            raise _default_not_deletable()
        raise stale_etag()

    async def add_symbols(
        self,
        caller: str,
        name: str,
        *,
        symbols: Sequence[str],
        index: int | None,
        etag: str,
        budget_s: float,
    ) -> Watchlist:
        """Insert symbols (at `index`, or at the end); ones already present stay put."""
        check = ViolationCollector()
        wanted = validation.symbols_to_add(check, symbols)
        validation.index(check, "index", index)
        check.raise_if_any()
        watchlist_id = WATCHLISTS.parse(name, caller)
        # NOT_FOUND and a stale etag before asking market data (a conflict costs one read).
        current = await self._get(caller, name, watchlist_id)
        check_etag(etag, current.id, current.revision)
        await self._check_known(
            [s for s in wanted if s not in set(current.symbols)], "symbols", symbols, budget_s
        )

        def change(current: Watchlist) -> Watchlist:
            now = self._clock.now()
            items = insert_symbols(current.items, wanted, index, now)
            self._check_size(len(items))
            return current.with_items(items, now)

        return await self._change(caller, name, watchlist_id, etag, change)

    async def remove_symbols(
        self, caller: str, name: str, *, symbols: Sequence[str], etag: str
    ) -> Watchlist:
        """Remove symbols; ones not in the list are ignored."""
        check = ViolationCollector()
        gone = validation.symbols_to_remove(check, symbols)
        check.raise_if_any()
        watchlist_id = WATCHLISTS.parse(name, caller)
        return await self._change(
            caller,
            name,
            watchlist_id,
            etag,
            lambda current: current.with_items(
                remove_symbols(current.items, gone), self._clock.now()
            ),
        )

    async def move_symbol(
        self, caller: str, name: str, *, symbol: str, index: int, etag: str
    ) -> Watchlist:
        """Move one symbol to `index`."""
        check = ViolationCollector()
        wanted = validation.one_symbol(check, "symbol", symbol)
        validation.index(check, "index", index)
        check.raise_if_any()
        watchlist_id = WATCHLISTS.parse(name, caller)

        def change(current: Watchlist) -> Watchlist:
            items = move_symbol(current.items, wanted, index)
            if items is None:
                raise errors.NotFound(f"{wanted} is not in {name}", resource_name=name)
            return current.with_items(items, self._clock.now())

        return await self._change(caller, name, watchlist_id, etag, change)

    # --- helpers ------------------------------------------------------------------------------

    async def _ensure_default(self, user_id: str) -> None:
        if await self._repository.has_default(user_id):
            return
        now = self._clock.now()
        await self._repository.add_default(
            Watchlist(
                id=new_id(),
                user_id=user_id,
                display_name=DEFAULT_DISPLAY_NAME,
                items=(),
                is_default=True,
                revision=1,
                create_time=now,
                update_time=now,
            )
        )

    async def _owned(self, caller: str, name: str) -> Watchlist:
        return await self._get(caller, name, WATCHLISTS.parse(name, caller))

    async def _get(self, caller: str, name: str, watchlist_id: str) -> Watchlist:
        watchlist = await self._repository.get(caller, watchlist_id)
        if watchlist is None:
            raise WATCHLISTS.not_found(name)
        return watchlist

    async def _change(
        self,
        caller: str,
        name: str,
        watchlist_id: str,
        etag: str,
        change: Callable[[Watchlist], Watchlist],
    ) -> Watchlist:
        """Apply `change` to the current revision and save it conditionally on that revision.
        With an etag a lost race is ABORTED; without one the change is recomputed on the new
        revision, so concurrent unconditional changes all land (no lost update)."""
        for _ in range(MAX_ATTEMPTS):
            current = await self._get(caller, name, watchlist_id)
            check_etag(etag, current.id, current.revision)
            updated = change(current)
            if (updated.display_name, updated.items) == (current.display_name, current.items):
                # Nothing changes (symbols already there, or not there to remove): no new
                # revision, so the etag other writers hold stays good.
                return current
            saved = await self._repository.save(updated, current.revision)
            if saved is not None:
                return saved
            if etag:
                raise stale_etag()
        raise errors.Aborted(
            "the watchlist is being changed by many calls at once; retry", reason="CONTENTION"
        )

    async def _make_default(
        self, caller: str, name: str, watchlist_id: str, current: Watchlist
    ) -> Watchlist:
        for _ in range(MAX_ATTEMPTS):
            now = self._clock.now()
            if await self._repository.make_default(caller, watchlist_id, current.revision, now):
                return replace(
                    current, is_default=True, revision=current.revision + 1, update_time=now
                )
            current = await self._get(caller, name, watchlist_id)
            if current.is_default:
                return current
        raise errors.Aborted(
            "the watchlist is being changed by many calls at once; retry", reason="CONTENTION"
        )

    def _check_size(self, count: int) -> None:
        limit = self._settings.max_symbols_per_list
        if count > limit:
            raise errors.ResourceExhausted(
                f"a watchlist holds at most {limit} symbols", reason="WATCHLIST_SYMBOL_LIMIT"
            )

    async def _check_known(
        self,
        symbols: Sequence[str],
        field: str,
        given: Sequence[str],
        budget_s: float,
    ) -> None:
        """INVALID_ARGUMENT, a violation per symbol, for symbols market data does not know."""
        unknown = set(await self._market.unknown_symbols(list(symbols), budget_s))
        if not unknown:
            return
        check = ViolationCollector()
        suffix = ".symbol" if field.endswith("items") else ""
        for i, value in enumerate(given):
            if _normalised_or_none(value) in unknown:
                check.add(f"{field}[{i}]{suffix}", f"unknown symbol {value.strip().upper()!r}")
        check.raise_if_any("the request names unknown symbols")

    async def _with_quotes(
        self, watchlists: list[Watchlist], view: View, budget_s: float
    ) -> Quoted:
        if view is not View.WITH_QUOTES:
            return Quoted(watchlists, {})
        symbols = list(dict.fromkeys(s for w in watchlists for s in w.symbols))
        try:
            quotes = await self._market.quotes(symbols, budget_s)
        except errors.Unavailable:
            # A read still answers: the lists without quotes, flagged.
            return Quoted(watchlists, {}, quotes_unavailable=True)
        return Quoted(watchlists, quotes)


def _cursor(values: list[object]) -> Cursor:
    is_default, created, last_id = values
    if not (isinstance(is_default, bool) and isinstance(created, str) and isinstance(last_id, str)):
        raise errors.InvalidArgument(
            "page_token is not valid", [errors.FieldViolation("page_token", "malformed")]
        )
    return (is_default, created, last_id)


def _normalised_or_none(value: str) -> str | None:
    try:
        return normalize_symbol(value)
    except SymbolError:
        return None


def _default_not_deletable() -> errors.FailedPrecondition:
    return errors.FailedPrecondition(
        "the default watchlist cannot be deleted; make another list the default first",
        reason="DEFAULT_WATCHLIST",
    )
