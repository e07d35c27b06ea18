"""Symbols in a watchlist: AddSymbols, RemoveSymbols, MoveSymbol and Update(items) keep the
user's order and normalise input; unknown symbols are refused one violation each."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf import field_mask_pb2

from optix.common.v1 import instrument_pb2
from optix.watchlist.v1 import watchlist_pb2, watchlist_service_pb2
from tests.watchlist.harness import (
    Account,
    Stack,
    Watchlist,
    expect,
    invalid,
    symbols_of,
    violations,
)

pytestmark = pytest.mark.asyncio(loop_scope="package")

# Well-formed symbols the simulated market has no quote for.
UNKNOWN_TICKERS = ("ZZZZ", "QWERTY")
UNKNOWN_OPTION = "AAPL  991231C00001000"


async def _remove(account: Account, name: str, *symbols: str, etag: str = "") -> Watchlist:
    reply = await account.wl.RemoveSymbols(
        watchlist_service_pb2.RemoveSymbolsRequest(name=name, symbols=symbols, etag=etag)
    )
    return reply.watchlist


async def _move(account: Account, name: str, symbol: str, index: int) -> Watchlist:
    reply = await account.wl.MoveSymbol(
        watchlist_service_pb2.MoveSymbolRequest(name=name, symbol=symbol, index=index)
    )
    return reply.watchlist


async def _set_items(account: Account, name: str, symbols: list[str]) -> Watchlist:
    reply = await account.wl.UpdateWatchlist(
        watchlist_service_pb2.UpdateWatchlistRequest(
            watchlist=Watchlist(
                name=name, items=[watchlist_pb2.WatchlistItem(symbol=s) for s in symbols]
            ),
            update_mask=field_mask_pb2.FieldMask(paths=["items"]),
        )
    )
    return reply.watchlist


async def test_add_symbols_appends_inserts_and_normalises(stack: Stack) -> None:
    alice = await stack.account()
    name = (await alice.default()).name
    after = await alice.add(name, ["aapl", " msft ", "AAPL", "Msft"])
    assert symbols_of(after) == ["AAPL", "MSFT"]
    after = await alice.add(name, ["spy", "qqq"], index=1)
    assert symbols_of(after) == ["AAPL", "SPY", "QQQ", "MSFT"]
    after = await alice.add(name, ["nvda"], index=0)
    assert symbols_of(after) == ["NVDA", "AAPL", "SPY", "QQQ", "MSFT"]
    after = await alice.add(name, ["amd"], index=999)
    assert symbols_of(after) == ["NVDA", "AAPL", "SPY", "QQQ", "MSFT", "AMD"]
    # Symbols already present stay where they are; only new ones are inserted.
    after = await alice.add(name, ["msft", "tsla", "nvda"], index=2)
    assert symbols_of(after) == ["NVDA", "AAPL", "TSLA", "SPY", "QQQ", "MSFT", "AMD"]
    assert await alice.get(name) == after


async def test_option_symbols_are_padded_to_the_occ_form(stack: Stack) -> None:
    alice = await stack.account()
    name = (await alice.create("Options")).name
    occ = (await stack.option_symbols(2))[:2]
    compact = [s.replace(" ", "").lower() for s in occ]
    after = await alice.add(name, [compact[0], f"  {occ[1]}  ", "aapl"])
    assert symbols_of(after) == [occ[0], occ[1], "AAPL"]
    assert all(len(s) == 21 for s in symbols_of(after)[:2])
    first = after.items[0].instrument
    assert first.type == instrument_pb2.INSTRUMENT_TYPE_OPTION
    assert first.option.symbol == occ[0]
    assert first.option.underlying == occ[0][:6].strip()
    assert after.items[2].instrument.type == instrument_pb2.INSTRUMENT_TYPE_EQUITY
    # The compact form names the same symbol: removing and moving find it.
    moved = await _move(alice, name, compact[1], 0)
    assert symbols_of(moved) == [occ[1], occ[0], "AAPL"]
    removed = await _remove(alice, name, compact[0])
    assert symbols_of(removed) == [occ[1], "AAPL"]


async def test_remove_symbols_keeps_the_order_and_ignores_absent_ones(stack: Stack) -> None:
    alice = await stack.account()
    made = await alice.create("Tech", ["AAPL", "MSFT", "NVDA", "AMD", "SPY"])
    after = await _remove(alice, made.name, "msft", "amd", "TSLA", "ZZZZ")
    assert symbols_of(after) == ["AAPL", "NVDA", "SPY"]
    kept = {i.symbol: i.add_time for i in made.items}
    assert all(item.add_time == kept[item.symbol] for item in after.items)
    # A retry is harmless.
    again = await _remove(alice, made.name, "msft", "amd")
    assert symbols_of(again) == ["AAPL", "NVDA", "SPY"]
    assert await alice.get(made.name) == again


async def test_move_symbol(stack: Stack) -> None:
    alice = await stack.account()
    made = await alice.create("Tech", ["AAPL", "MSFT", "NVDA", "AMD"])
    assert symbols_of(await _move(alice, made.name, "amd", 0)) == ["AMD", "AAPL", "MSFT", "NVDA"]
    assert symbols_of(await _move(alice, made.name, "AMD", 2)) == ["AAPL", "MSFT", "AMD", "NVDA"]
    assert symbols_of(await _move(alice, made.name, "aapl", 3)) == ["MSFT", "AMD", "NVDA", "AAPL"]
    assert symbols_of(await _move(alice, made.name, "msft", 50)) == ["AMD", "NVDA", "AAPL", "MSFT"]
    after = await _move(alice, made.name, "nvda", 1)
    assert symbols_of(after) == ["AMD", "NVDA", "AAPL", "MSFT"]
    kept = {i.symbol: i.add_time for i in made.items}
    assert all(item.add_time == kept[item.symbol] for item in after.items)
    before = await alice.get(made.name)
    error = await expect(grpc.StatusCode.NOT_FOUND, _move(alice, made.name, "TSLA", 0))
    assert "TSLA" in error.message
    assert await alice.get(made.name) == before


async def test_update_items_sets_any_order(stack: Stack) -> None:
    alice = await stack.account()
    made = await alice.create("Tech", ["AAPL", "MSFT", "NVDA"])
    after = await _set_items(alice, made.name, ["nvda", "aapl", "msft", "NVDA"])
    assert symbols_of(after) == ["NVDA", "AAPL", "MSFT"]
    assert await alice.get(made.name) == after


async def test_unknown_symbols_are_refused_one_violation_each(stack: Stack) -> None:
    alice = await stack.account()
    made = await alice.create("Tech", ["AAPL"])
    before = await alice.lists()
    given = ["MSFT", UNKNOWN_TICKERS[0], "spy", UNKNOWN_OPTION, UNKNOWN_TICKERS[1].lower()]

    add = await invalid(alice.add(made.name, given))
    assert sorted(violations(add)) == ["symbols[1]", "symbols[3]", "symbols[4]"]

    update = await invalid(_set_items(alice, made.name, given))
    assert sorted(violations(update)) == [
        "watchlist.items[1].symbol",
        "watchlist.items[3].symbol",
        "watchlist.items[4].symbol",
    ]

    create = await invalid(alice.create("New", given))
    assert sorted(violations(create)) == [
        "watchlist.items[1].symbol",
        "watchlist.items[3].symbol",
        "watchlist.items[4].symbol",
    ]
    assert await alice.lists() == before


async def test_more_than_100_symbols_in_one_add_is_invalid(stack: Stack) -> None:
    alice = await stack.account()
    name = (await alice.create("Options")).name
    many = await stack.option_symbols(101)
    before = await alice.get(name)
    await invalid(alice.add(name, many), "symbols")
    assert await alice.get(name) == before
    # Exactly 100 is fine.
    assert len((await alice.add(name, many[:100])).items) == 100
