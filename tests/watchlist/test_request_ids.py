"""CreateWatchlist's request_id: a retry returns the first result, concurrent creates with one
request_id make one list, and the id is scoped to its user."""

from __future__ import annotations

import asyncio
import uuid

import grpc
import pytest

from optix_client.errors import OptixError
from tests.watchlist.harness import Stack, Watchlist, expect

pytestmark = pytest.mark.asyncio(loop_scope="package")


async def test_a_retry_returns_the_first_result(stack: Stack) -> None:
    alice = await stack.account()
    await alice.default()
    request_id = str(uuid.uuid4())
    first = await alice.create("Tech", ["AAPL"], request_id=request_id)
    retry = await alice.create("Tech", ["AAPL"], request_id=request_id)
    assert retry == first
    # Even a retry that (wrongly) changed its payload gets the first result, not a new list.
    changed = await alice.create("Other", ["MSFT"], request_id=request_id)
    assert changed == first
    lists = await alice.lists()
    assert [w.name for w in lists][1:] == [first.name]
    # Another request id is another list.
    second = await alice.create("Tech", ["AAPL"], request_id=str(uuid.uuid4()))
    assert second.name != first.name
    assert len(await alice.lists()) == 3


async def test_a_retry_returns_the_first_result_after_a_change(stack: Stack) -> None:
    alice = await stack.account()
    request_id = str(uuid.uuid4())
    first = await alice.create("Tech", ["AAPL"], request_id=request_id)
    await alice.rename(first.name, "Renamed")
    retry = await alice.create("Tech", ["AAPL"], request_id=request_id)
    # The list the first attempt created (as it was or as it is now), not a new one.
    assert retry.name == first.name
    assert len(await alice.lists()) == 2


async def test_a_retry_at_the_list_limit_still_returns_the_first_result(stack: Stack) -> None:
    alice = await stack.account()
    await alice.default()
    for i in range(18):
        await alice.create(f"filler {i}")
    request_id = str(uuid.uuid4())
    last = await alice.create("Last", request_id=request_id)
    assert len(await alice.lists()) == 20
    await expect(grpc.StatusCode.RESOURCE_EXHAUSTED, alice.create("One too many"))
    assert await alice.create("Last", request_id=request_id) == last
    assert len(await alice.lists()) == 20


@pytest.mark.parametrize("callers", [10, 20])
async def test_concurrent_creates_with_one_request_id_make_one_list(
    stack: Stack, callers: int
) -> None:
    alice = await stack.account()
    await alice.default()
    request_id = str(uuid.uuid4())
    results = await asyncio.gather(
        *(alice.create("Tech", ["AAPL"], request_id=request_id) for _ in range(callers)),
        return_exceptions=True,
    )
    failures = [r for r in results if isinstance(r, BaseException)]
    assert not failures, [str(f) for f in failures]
    made = [r for r in results if isinstance(r, Watchlist)]
    assert {w.name for w in made} == {made[0].name}
    lists = await alice.lists()
    assert [w.name for w in lists if not w.is_default] == [made[0].name]


async def test_concurrent_first_calls_with_a_request_id_make_one_list_and_one_default(
    stack: Stack,
) -> None:
    alice = await stack.account()
    request_id = str(uuid.uuid4())
    results = await asyncio.gather(
        *(alice.create("Tech", request_id=request_id) for _ in range(12)),
        return_exceptions=True,
    )
    assert not [r for r in results if isinstance(r, OptixError)], results
    lists = await alice.lists()
    assert [w.is_default for w in lists] == [True, False]


async def test_request_ids_belong_to_their_user(stack: Stack) -> None:
    alice = await stack.account()
    bob = await stack.account()
    request_id = str(uuid.uuid4())
    alices = await alice.create("Alice's", request_id=request_id)
    bobs = await bob.create("Bob's", request_id=request_id)
    assert bobs.name != alices.name
    assert bobs.name.startswith(f"users/{bob.user_id}/")
    assert bobs.display_name == "Bob's"
    assert [w.display_name for w in await alice.lists()] == ["My Watchlist", "Alice's"]
    assert [w.display_name for w in await bob.lists()] == ["My Watchlist", "Bob's"]
