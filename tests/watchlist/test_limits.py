"""The default limits, 20 lists per user and 200 symbols per list: a request that would exceed
either is RESOURCE_EXHAUSTED and changes nothing, alone or racing others."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from google.protobuf import field_mask_pb2

from optix.watchlist.v1 import watchlist_pb2, watchlist_service_pb2
from optix_client.errors import OptixError
from tests.watchlist.harness import Stack, Watchlist, expect, symbols_of

pytestmark = pytest.mark.asyncio(loop_scope="package")

MAX_LISTS = 20
MAX_SYMBOLS = 200


async def test_the_21st_list_is_refused(stack: Stack) -> None:
    alice = await stack.account()
    await alice.default()
    made = [await alice.create(f"list {i}") for i in range(MAX_LISTS - 1)]
    before = await alice.lists()
    assert len(before) == MAX_LISTS
    error = await expect(grpc.StatusCode.RESOURCE_EXHAUSTED, alice.create("one too many"))
    assert error.message
    error = await expect(
        grpc.StatusCode.RESOURCE_EXHAUSTED, alice.create("with a request id", request_id="r-1")
    )
    assert await alice.lists() == before
    # Deleting one makes room for exactly one.
    await alice.wl.DeleteWatchlist(watchlist_service_pb2.DeleteWatchlistRequest(name=made[0].name))
    await alice.create("fits again")
    await expect(grpc.StatusCode.RESOURCE_EXHAUSTED, alice.create("full again"))
    assert len(await alice.lists()) == MAX_LISTS


async def test_racing_creates_never_exceed_the_list_limit(stack: Stack) -> None:
    # A few rounds, each a fresh user with room for 5 lists and 15 racing creates.
    for round_ in range(3):
        alice = await stack.account()
        await alice.default()
        for i in range(MAX_LISTS - 6):
            await alice.create(f"list {i}")
        results = await asyncio.gather(
            *(alice.create(f"racer {i}") for i in range(15)), return_exceptions=True
        )
        made = [r for r in results if isinstance(r, Watchlist)]
        refused = [r for r in results if isinstance(r, OptixError)]
        assert all(e.code == grpc.StatusCode.RESOURCE_EXHAUSTED for e in refused), refused
        assert len(made) + len(refused) == len(results)
        count = len(await alice.lists())
        assert count <= MAX_LISTS, f"round {round_}: {count} lists, over the limit of {MAX_LISTS}"
        assert len(made) == 5, f"round {round_}: {len(made)} of 15 racers made a list, room for 5"


async def test_the_201st_symbol_is_refused(stack: Stack) -> None:
    alice = await stack.account()
    name = (await alice.create("Options")).name
    contracts = await stack.option_symbols(MAX_SYMBOLS + 60)
    await alice.add(name, contracts[:100])
    await alice.add(name, contracts[100:150])
    before = await alice.get(name)
    # 50 more than fits: refused whole, not filled up to the limit.
    await expect(grpc.StatusCode.RESOURCE_EXHAUSTED, alice.add(name, contracts[150:250]))
    assert await alice.get(name) == before
    full = await alice.add(name, contracts[150:200])
    assert len(full.items) == MAX_SYMBOLS
    error = await expect(grpc.StatusCode.RESOURCE_EXHAUSTED, alice.add(name, ["AAPL"]))
    assert error.message
    assert await alice.get(name) == full
    # Symbols already present do not grow the list, so they are no excess.
    again = await alice.add(name, [contracts[0], contracts[199]])
    assert symbols_of(again) == symbols_of(full)


async def test_update_items_and_create_beyond_200_symbols_are_refused(stack: Stack) -> None:
    alice = await stack.account()
    contracts = await stack.option_symbols(MAX_SYMBOLS + 1)
    made = await alice.create("Tech", ["AAPL"])
    before = await alice.lists()
    await expect(
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        alice.wl.UpdateWatchlist(
            watchlist_service_pb2.UpdateWatchlistRequest(
                watchlist=Watchlist(
                    name=made.name,
                    items=[watchlist_pb2.WatchlistItem(symbol=s) for s in contracts],
                ),
                update_mask=field_mask_pb2.FieldMask(paths=["items"]),
            )
        ),
    )
    await expect(grpc.StatusCode.RESOURCE_EXHAUSTED, alice.create("Too big", contracts))
    assert await alice.lists() == before
    exact = await alice.create("Exactly full", contracts[:MAX_SYMBOLS])
    assert len(exact.items) == MAX_SYMBOLS


async def test_racing_adds_never_exceed_the_symbol_limit(stack: Stack) -> None:
    alice = await stack.account()
    name = (await alice.create("Options")).name
    contracts = await stack.option_symbols(MAX_SYMBOLS + 40)
    await alice.add(name, contracts[:100])
    await alice.add(name, contracts[100:190])
    batches = [contracts[190 + 5 * i : 195 + 5 * i] for i in range(10)]
    results = await asyncio.gather(*(alice.add(name, b) for b in batches), return_exceptions=True)
    landed = [r for r in results if isinstance(r, Watchlist)]
    refused = [r for r in results if isinstance(r, OptixError)]
    assert all(e.code == grpc.StatusCode.RESOURCE_EXHAUSTED for e in refused), refused
    final = await alice.get(name)
    assert len(final.items) <= MAX_SYMBOLS
    assert len(landed) == 2, f"room for 2 batches of 5, {len(landed)} landed"
    assert len(final.items) == MAX_SYMBOLS
