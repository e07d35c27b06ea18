"""GetPortfolio's snapshots: an answer is kept per user for max_age and shared by concurrent
calls, and a change to the user's book (here, on this replica or another through pub/sub) is
never served stale."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from optix.brokerage.v1 import brokerage_service_pb2 as pb
from optix_server.brokerage.snapshots import EVERYONE, PortfolioSnapshots
from optix_server.infra.pubsub import InMemoryPubSub
from tests.brokerage.harness import Stack

pytestmark = pytest.mark.asyncio(loop_scope="package")

WAIT = 10.0


class Ticks:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Books:
    """Builds that answer b"<user>:<n>", n counting the builds of that user."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self.gate = asyncio.Event()
        self.gate.set()

    def of(self, user_id: str, fail: bool = False) -> Callable[[], Awaitable[bytes]]:
        async def build() -> bytes:
            await self.gate.wait()
            if fail:
                raise RuntimeError("market data said no")
            self.counts[user_id] = self.counts.get(user_id, 0) + 1
            return f"{user_id}:{self.counts[user_id]}".encode()

        return build


async def test_an_answer_is_kept_for_max_age_then_priced_again() -> None:
    ticks, books = Ticks(), Books()
    snapshots = PortfolioSnapshots(InMemoryPubSub(), max_age_s=1.0, monotonic=ticks)
    assert await snapshots.get("u", books.of("u")) == b"u:1"
    ticks.now += 0.99
    assert await snapshots.get("u", books.of("u")) == b"u:1"
    ticks.now += 0.01
    assert await snapshots.get("u", books.of("u")) == b"u:2"
    # Users are apart.
    assert await snapshots.get("v", books.of("v")) == b"v:1"
    # A failed build is not kept, and the next call builds again.
    with pytest.raises(RuntimeError):
        await snapshots.get("w", books.of("w", fail=True))
    assert await snapshots.get("w", books.of("w")) == b"w:1"


async def test_max_age_zero_prices_every_call() -> None:
    books = Books()
    snapshots = PortfolioSnapshots(InMemoryPubSub(), max_age_s=0.0)
    assert await snapshots.get("u", books.of("u")) == b"u:1"
    assert await snapshots.get("u", books.of("u")) == b"u:2"


async def test_concurrent_calls_share_one_build_and_a_change_during_it_is_not_kept() -> None:
    books = Books()
    snapshots = PortfolioSnapshots(InMemoryPubSub(), max_age_s=60.0)
    books.gate.clear()
    waiting = [asyncio.ensure_future(snapshots.get("u", books.of("u"))) for _ in range(10)]
    await asyncio.sleep(0)
    snapshots.forget("u")  # the book changes while it is being priced
    books.gate.set()
    assert set(await asyncio.gather(*waiting)) == {b"u:1"}
    assert snapshots.builds == 1
    # Built across a change: not kept.
    assert await snapshots.get("u", books.of("u")) == b"u:2"
    assert await snapshots.get("u", books.of("u")) == b"u:2"


async def test_the_kept_answers_stay_within_their_byte_budget() -> None:
    books = Books()
    snapshots = PortfolioSnapshots(InMemoryPubSub(), max_age_s=60.0, max_bytes=8)
    for user in ("a", "b", "c"):  # 3 bytes each: two fit
        await snapshots.get(user, books.of(user))
    await snapshots.get("b", books.of("b"))
    await snapshots.get("a", books.of("a"))
    assert books.counts == {"a": 2, "b": 1, "c": 1}  # a, least recently used, went first


async def test_a_change_on_one_replica_drops_the_answer_on_every_replica() -> None:
    pubsub, books = InMemoryPubSub(), Books()
    here = PortfolioSnapshots(pubsub, max_age_s=60.0)
    there = PortfolioSnapshots(pubsub, max_age_s=60.0)
    await here.start()
    await there.start()
    try:
        assert await there.get("u", books.of("u")) == b"u:1"
        assert await there.get("v", books.of("v")) == b"v:1"
        await here.changed("u")
        async with asyncio.timeout(WAIT):
            await there.until_applied(1)
        assert await there.get("u", books.of("u")) == b"u:2"
        assert await there.get("v", books.of("v")) == b"v:1"
        await here.changed(EVERYONE)
        async with asyncio.timeout(WAIT):
            await there.until_applied(2)
        assert await there.get("v", books.of("v")) == b"v:2"
        assert await there.get("u", books.of("u")) == b"u:3"
    finally:
        await here.stop()
        await there.stop()


async def test_a_deleted_connection_leaves_the_next_portfolio_at_once(stack: Stack) -> None:
    user = await stack.user()
    connection = await user.connect_paper()
    await stack.worker.run_due()
    request = pb.GetPortfolioRequest(name="users/me/portfolio")
    before = (await user.brokerage.GetPortfolio(request)).portfolio
    assert before.positions and len(before.accounts) == 1
    # Kept now; the deletion must not be hidden by it.
    assert (await user.brokerage.GetPortfolio(request)).portfolio == before
    await user.brokerage.DeleteConnection(pb.DeleteConnectionRequest(name=connection.name))
    after = (await user.brokerage.GetPortfolio(request)).portfolio
    assert not after.positions and not after.accounts
