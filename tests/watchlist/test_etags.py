"""Etags and concurrent changes: every change gives a new etag, a stale etag is ABORTED and
changes nothing on every method that takes one, and concurrent writers never lose updates."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
import pytest
from google.protobuf import field_mask_pb2
from google.protobuf.descriptor import MethodDescriptor

from optix.watchlist.v1 import watchlist_pb2, watchlist_service_pb2
from optix_client.errors import OptixError
from tests.watchlist.harness import (
    KNOWN,
    METHODS,
    Account,
    Stack,
    Watchlist,
    call,
    expect,
    request_for,
    symbols_of,
    takes_etag,
)

pytestmark = pytest.mark.asyncio(loop_scope="package")

ETAG_METHODS = [m for m in METHODS if takes_etag(m)]


def _update(watchlist: Watchlist, *paths: str) -> watchlist_service_pb2.UpdateWatchlistRequest:
    return watchlist_service_pb2.UpdateWatchlistRequest(
        watchlist=watchlist, update_mask=field_mask_pb2.FieldMask(paths=list(paths))
    )


async def test_the_etag_methods_are_the_documented_ones() -> None:
    assert {m.name for m in ETAG_METHODS} >= {
        "UpdateWatchlist",
        "DeleteWatchlist",
        "AddSymbols",
        "RemoveSymbols",
        "MoveSymbol",
    }


async def test_every_change_gives_a_new_etag(stack: Stack) -> None:
    alice = await stack.account()
    old_default = await alice.default()
    made = await alice.create("Tech", ["AAPL"])
    etags = [old_default.etag, made.etag]
    # Thunks: a stub call starts its RPC when made, so each step is made when its turn comes.
    steps: list[Callable[[], Awaitable[Any]]] = [
        lambda: alice.add(made.name, ["MSFT"]),
        lambda: alice.add(made.name, ["NVDA"], index=0),
        lambda: alice.wl.MoveSymbol(
            watchlist_service_pb2.MoveSymbolRequest(name=made.name, symbol="NVDA", index=2)
        ),
        lambda: alice.wl.RemoveSymbols(
            watchlist_service_pb2.RemoveSymbolsRequest(name=made.name, symbols=["AAPL"])
        ),
        lambda: alice.rename(made.name, "Big Tech"),
        lambda: alice.wl.UpdateWatchlist(
            _update(
                Watchlist(name=made.name, items=[watchlist_pb2.WatchlistItem(symbol="SPY")]),
                "items",
            )
        ),
        lambda: alice.wl.UpdateWatchlist(
            _update(Watchlist(name=made.name, is_default=True), "is_default")
        ),
    ]
    for step in steps:
        reply = await step()
        current: Watchlist = reply if isinstance(reply, Watchlist) else reply.watchlist
        assert current.etag == (await alice.get(made.name)).etag
        etags.append(current.etag)
    etags.append((await alice.get(old_default.name)).etag)
    assert len(set(etags)) == len(etags), etags
    # Reading changes nothing.
    assert (await alice.get(made.name)).etag == etags[-2]


@pytest.mark.parametrize("descriptor", ETAG_METHODS, ids=lambda m: str(m.name))
async def test_a_stale_etag_is_aborted_and_changes_nothing(
    stack: Stack, descriptor: MethodDescriptor
) -> None:
    alice = await stack.account()
    made = await alice.create("Tech", ["AAPL", "MSFT"])
    stale = made.etag
    await alice.rename(made.name, "Renamed")
    before = await alice.lists()
    request = request_for(descriptor, name=made.name, parent="users/me", etag=stale, symbol="MSFT")
    error = await expect(grpc.StatusCode.ABORTED, call(alice, descriptor, request))
    assert error.message
    assert await alice.lists() == before
    # With the current etag the same request goes through.
    current = (await alice.get(made.name)).etag
    fresh = request_for(descriptor, name=made.name, parent="users/me", etag=current, symbol="MSFT")
    await call(alice, descriptor, fresh)


async def test_a_current_etag_makes_the_change(stack: Stack) -> None:
    alice = await stack.account()
    made = await alice.create("Tech", ["AAPL"])
    after = await alice.add(made.name, ["MSFT"], etag=made.etag)
    assert symbols_of(after) == ["AAPL", "MSFT"]
    renamed = await alice.rename(made.name, "X", etag=after.etag)
    assert renamed.display_name == "X"
    await expect(grpc.StatusCode.ABORTED, alice.rename(made.name, "Y", etag=after.etag))
    await alice.wl.DeleteWatchlist(
        watchlist_service_pb2.DeleteWatchlistRequest(name=made.name, etag=renamed.etag)
    )
    await expect(grpc.StatusCode.NOT_FOUND, alice.get(made.name))


async def test_stale_etag_on_a_default_change_moves_nothing(stack: Stack) -> None:
    alice = await stack.account()
    default = await alice.default()
    made = await alice.create("Tech")
    await alice.rename(made.name, "Renamed")
    before = await alice.lists()
    await expect(
        grpc.StatusCode.ABORTED,
        alice.wl.UpdateWatchlist(
            _update(Watchlist(name=made.name, is_default=True, etag=made.etag), "is_default")
        ),
    )
    assert await alice.lists() == before
    assert [w.name for w in before if w.is_default] == [default.name]


async def test_two_concurrent_adds_without_etags_both_land(stack: Stack) -> None:
    alice = await stack.account()
    made = await alice.create("Tech", ["AAPL"])
    await asyncio.gather(alice.add(made.name, ["MSFT"]), alice.add(made.name, ["NVDA"]))
    assert sorted(symbols_of(await alice.get(made.name))) == ["AAPL", "MSFT", "NVDA"]


async def test_two_concurrent_adds_with_one_etag_exactly_one_wins(stack: Stack) -> None:
    alice = await stack.account()
    for _ in range(3):
        made = await alice.create("Tech", ["AAPL"])
        results = await asyncio.gather(
            alice.add(made.name, ["MSFT"], etag=made.etag),
            alice.add(made.name, ["NVDA"], etag=made.etag),
            return_exceptions=True,
        )
        won = [r for r in results if isinstance(r, Watchlist)]
        lost = [r for r in results if isinstance(r, OptixError)]
        assert len(won) == 1 and len(lost) == 1, results
        assert lost[0].code == grpc.StatusCode.ABORTED, lost[0]
        final = await alice.get(made.name)
        assert final == won[0]
        assert len(final.items) == 2


async def test_twenty_concurrent_writers_without_etags_all_land(stack: Stack) -> None:
    alice = await stack.account()
    # Twenty distinct symbols; tickers are quick to validate, so their writers collide most.
    wanted = [*KNOWN, *await stack.option_symbols(10)]
    for round_ in range(3):
        made = await alice.create(f"round {round_}")
        results = await asyncio.gather(
            *(alice.add(made.name, [symbol]) for symbol in wanted), return_exceptions=True
        )
        failed = [r for r in results if isinstance(r, BaseException)]
        assert not failed, f"round {round_}: {len(failed)} of 20 writers failed: {failed[0]}"
        assert sorted(symbols_of(await alice.get(made.name))) == sorted(wanted)


async def test_mixed_concurrent_writers_without_etags_all_land(stack: Stack) -> None:
    alice = await stack.account()
    made = await alice.create("Tech", ["AAPL", "MSFT", "NVDA"])
    results = await asyncio.gather(
        alice.add(made.name, ["SPY"]),
        alice.add(made.name, ["QQQ"], index=0),
        alice.wl.RemoveSymbols(
            watchlist_service_pb2.RemoveSymbolsRequest(name=made.name, symbols=["MSFT"])
        ),
        alice.wl.MoveSymbol(
            watchlist_service_pb2.MoveSymbolRequest(name=made.name, symbol="NVDA", index=0)
        ),
        alice.rename(made.name, "Renamed"),
        return_exceptions=True,
    )
    assert not [r for r in results if isinstance(r, BaseException)], results
    final = await alice.get(made.name)
    assert final.display_name == "Renamed"
    assert sorted(symbols_of(final)) == ["AAPL", "NVDA", "QQQ", "SPY"]


async def test_a_new_users_first_concurrent_calls_make_one_default(stack: Stack) -> None:
    scenarios: dict[str, Callable[[Account], list[Awaitable[object]]]] = {
        "list+list": lambda a: [a.lists(), a.lists()],
        "list+create": lambda a: [a.lists(), a.create("Tech")],
        "create+create": lambda a: [a.create("A"), a.create("B")],
        "many": lambda a: [a.lists() for _ in range(5)] + [a.create(k) for k in KNOWN[:5]],
    }
    for calls, first_calls in scenarios.items():
        alice = await stack.account()
        results = await asyncio.gather(*first_calls(alice), return_exceptions=True)
        assert not [r for r in results if isinstance(r, BaseException)], (calls, results)
        lists = await alice.lists()
        defaults = [w for w in lists if w.is_default]
        assert len(defaults) == 1, (calls, lists)
        assert defaults[0].display_name == "My Watchlist"
        assert lists[0] == defaults[0]


async def test_concurrent_default_changes_leave_exactly_one_default(stack: Stack) -> None:
    for _ in range(3):
        alice = await stack.account()
        await alice.default()
        lists = [await alice.create(f"list {i}") for i in range(4)]
        results = await asyncio.gather(
            *(
                alice.wl.UpdateWatchlist(
                    _update(Watchlist(name=w.name, is_default=True), "is_default")
                )
                for w in lists
            ),
            return_exceptions=True,
        )
        failures = [r for r in results if isinstance(r, BaseException)]
        # Losing a race may be ABORTED (retry); anything else is a server fault.
        assert all(
            isinstance(f, OptixError) and f.code == grpc.StatusCode.ABORTED for f in failures
        ), failures
        assert len(failures) < len(lists)
        after = await alice.lists()
        assert len([w for w in after if w.is_default]) == 1, after
        assert after[0].is_default
