"""WITH_QUOTES with market data in a second `optix serve` process: quotes while it runs; when it
hangs or stops, reads answer in time (quotes_unavailable) and checked writes are UNAVAILABLE."""

# The tests of one database share one market data process and run in file order: it is alive,
# then paused (and resumed), then stopped for good.

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass

import grpc
import pytest
import pytest_asyncio
from google.protobuf import field_mask_pb2

from optix.watchlist.v1 import watchlist_pb2, watchlist_service_pb2
from optix_server.infra.auth.config import AuthSettings
from tests.e2e.stack import Process, optix_server
from tests.watchlist.harness import (
    BASIC,
    WITH_QUOTES,
    Account,
    Stack,
    Watchlist,
    expect,
    symbols_of,
    watchlist_stack,
)

pytestmark = pytest.mark.asyncio(loop_scope="package")

# The caller's deadline in the degraded cases; the answer must come before it.
DEADLINE_S = 3.0
SYMBOLS = ["AAPL", "MSFT", "SPY"]


@dataclass
class Remote:
    """A watchlist server (user + watchlist) whose market data is another process."""

    stack: Stack
    marketdata: Process

    def alive(self) -> None:
        """Fail clearly when an earlier test left the market data process stopped."""
        assert self.marketdata.proc.poll() is None, "the market data process is not running"


@pytest_asyncio.fixture(scope="module", loop_scope="package")
async def remote(db_kind: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Remote]:
    """`optix serve --services marketdata` as a subprocess, and an in-process watchlist server
    calling it at its address; both sign and verify tokens with one key directory."""
    tmp = tmp_path_factory.mktemp(f"watchlist-remote-{db_kind}")
    keys = tmp / "jwt-keys"
    processes = contextlib.ExitStack()
    try:
        marketdata = await asyncio.to_thread(
            processes.enter_context,
            optix_server(
                tmp / "marketdata-var",
                {"OPTIX_SERVICES": "marketdata", "OPTIX_AUTH_KEYS_DIR": str(keys)},
            ),
        )
        async with watchlist_stack(
            db_kind,
            tmp,
            services=("user", "watchlist"),
            service_addresses={"marketdata": marketdata.address},
            auth=AuthSettings(keys_dir=keys),
        ) as stack:
            yield Remote(stack, marketdata)
    finally:
        await asyncio.to_thread(processes.close)


@pytest_asyncio.fixture(loop_scope="package")
async def alice(remote: Remote) -> AsyncIterator[Account]:
    """A user of the remote stack with SYMBOLS in their default list."""
    scoped = remote.stack.fork()
    try:
        account = await scoped.account()
        default = await account.default()
        await account.add(default.name, SYMBOLS)
        yield account
    finally:
        await scoped.close()


@contextlib.contextmanager
def paused(process: Process) -> Iterator[None]:
    """SIGSTOP the process (its socket stays open, nothing answers), SIGCONT afterwards."""
    os.kill(process.proc.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(process.proc.pid, signal.SIGCONT)


def _get(
    name: str, view: watchlist_pb2.WatchlistView.ValueType
) -> watchlist_service_pb2.GetWatchlistRequest:
    return watchlist_service_pb2.GetWatchlistRequest(name=name, view=view)


def _assert_complete_without_quotes(read: Watchlist, basic: Watchlist) -> None:
    assert symbols_of(read) == symbols_of(basic)
    assert not any(item.HasField("quote") for item in read.items)
    assert read == basic


async def test_quotes_come_from_the_other_process(remote: Remote, alice: Account) -> None:
    remote.alive()
    default = await alice.default()
    reply = await alice.wl.GetWatchlist(_get(default.name, WITH_QUOTES))
    assert not reply.quotes_unavailable
    assert symbols_of(reply.watchlist) == SYMBOLS
    for item in reply.watchlist.items:
        assert item.HasField("quote"), item.symbol
        assert item.quote.symbol == item.symbol
        assert item.quote.last > 0 and item.quote.mark > 0
    for view in (BASIC, watchlist_pb2.WATCHLIST_VIEW_UNSPECIFIED):
        plain = await alice.wl.GetWatchlist(_get(default.name, view))
        assert not any(item.HasField("quote") for item in plain.watchlist.items)
        assert not plain.quotes_unavailable
    listed = await alice.wl.ListWatchlists(
        watchlist_service_pb2.ListWatchlistsRequest(parent="users/me", view=WITH_QUOTES)
    )
    assert not listed.quotes_unavailable
    assert [i.quote.symbol for i in listed.watchlists[0].items] == SYMBOLS
    # Symbol checks go to the other process as well.
    error = await expect(grpc.StatusCode.INVALID_ARGUMENT, alice.add(default.name, ["ZZZZ"]))
    assert "symbols[0]" in error.field_violations
    assert symbols_of(await alice.add(default.name, ["nvda"])) == [*SYMBOLS, "NVDA"]


async def test_a_hung_marketdata_process_does_not_cost_the_caller_its_deadline(
    remote: Remote, alice: Account
) -> None:
    remote.alive()
    default = await alice.default()
    with paused(remote.marketdata):
        started = time.monotonic()
        reply, listed = await asyncio.gather(
            alice.wl.GetWatchlist(_get(default.name, WITH_QUOTES), timeout=DEADLINE_S),
            alice.wl.ListWatchlists(
                watchlist_service_pb2.ListWatchlistsRequest(parent="users/me", view=WITH_QUOTES),
                timeout=DEADLINE_S,
            ),
        )
        assert time.monotonic() - started < DEADLINE_S
    assert reply.quotes_unavailable
    _assert_complete_without_quotes(reply.watchlist, default)
    assert listed.quotes_unavailable
    _assert_complete_without_quotes(listed.watchlists[0], default)


async def test_a_stopped_marketdata_process(remote: Remote, alice: Account) -> None:
    remote.alive()
    default = await alice.default()
    other = await alice.create("Other", ["AAPL"])
    await asyncio.to_thread(_terminate, remote.marketdata)
    before = await alice.lists()

    # Reads answer, in time, with the complete lists and no quotes; never INTERNAL.
    started = time.monotonic()
    reply = await alice.wl.GetWatchlist(_get(default.name, WITH_QUOTES), timeout=DEADLINE_S)
    assert time.monotonic() - started < DEADLINE_S
    assert reply.quotes_unavailable
    _assert_complete_without_quotes(reply.watchlist, default)
    listed = await alice.wl.ListWatchlists(
        watchlist_service_pb2.ListWatchlistsRequest(parent="users/me", view=WITH_QUOTES),
        timeout=DEADLINE_S,
    )
    assert listed.quotes_unavailable
    assert list(listed.watchlists) == before
    basic = await alice.wl.GetWatchlist(_get(default.name, BASIC))
    assert not basic.quotes_unavailable

    # Writes that must check symbols are UNAVAILABLE with a retry delay, and change nothing.
    needs_checks: dict[str, Callable[[], Awaitable[object]]] = {
        "AddSymbols": lambda: alice.add(default.name, ["NVDA"]),
        "CreateWatchlist": lambda: alice.create("New", ["NVDA"]),
        "UpdateWatchlist items": lambda: alice.wl.UpdateWatchlist(
            watchlist_service_pb2.UpdateWatchlistRequest(
                watchlist=Watchlist(
                    name=other.name,
                    items=[watchlist_pb2.WatchlistItem(symbol=s) for s in ("AAPL", "TSLA")],
                ),
                update_mask=field_mask_pb2.FieldMask(paths=["items"]),
            )
        ),
    }
    for write, attempt in needs_checks.items():
        error = await expect(grpc.StatusCode.UNAVAILABLE, attempt())
        assert error.retry_delay is not None and error.retry_delay.total_seconds() > 0, write
    assert await alice.lists() == before

    # Writes that need no symbol check still work.
    removed = await alice.wl.RemoveSymbols(
        watchlist_service_pb2.RemoveSymbolsRequest(name=default.name, symbols=["MSFT"])
    )
    assert symbols_of(removed.watchlist) == ["AAPL", "SPY"]
    moved = await alice.wl.MoveSymbol(
        watchlist_service_pb2.MoveSymbolRequest(name=default.name, symbol="SPY", index=0)
    )
    assert symbols_of(moved.watchlist) == ["SPY", "AAPL"]
    assert (await alice.rename(other.name, "Renamed")).display_name == "Renamed"
    plain = await alice.create("Empty")
    assert not plain.items


def _terminate(process: Process) -> None:
    process.proc.terminate()
    process.proc.wait(15)
