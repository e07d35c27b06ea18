"""A task cancelled while it waits on Redis stops: no cancellation is lost inside redis-py.

On Python 3.11 asyncio.wait_for (which redis-py wraps every command in) can return the
command's result and drop the caller's cancellation when both land in the same loop turn; a
loop such as the feed owner's lease renewal then outlived its stop() and `optix serve` never
exited. These tests cancel many tasks at arbitrary points of a busy Redis loop and require
every one of them to end cancelled.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from redis.asyncio import Redis

from optix_server.infra.cache import RedisCache
from optix_server.infra.pubsub import RedisPubSub
from tests.support.backends import redis_namespace

pytestmark = pytest.mark.redis

TASKS = 40
ROUNDS = 5
# A bound on the test, not a timing claim: a task that outlives it kept running after cancel().
STOP_BOUND_S = 10.0


@pytest.fixture
async def cache() -> AsyncIterator[RedisCache]:
    """A Redis cache in a namespace of its own."""
    async with redis_namespace() as (url, prefix):
        store = RedisCache(Redis.from_url(url), prefix)
        yield store
        await store.close()


@pytest.fixture
async def bus() -> AsyncIterator[RedisPubSub]:
    """Redis pub/sub in a namespace of its own."""
    async with redis_namespace() as (url, prefix):
        pubsub = RedisPubSub(Redis.from_url(url), prefix)
        yield pubsub
        await pubsub.close()


async def busy_loop(step: Callable[[int], Awaitable[None]], n: int, started: asyncio.Event) -> None:
    """Call step(n) until cancelled; set `started` after the first call."""
    while True:
        await step(n)
        started.set()


async def cancel_busy_loops(step: Callable[[int], Awaitable[None]]) -> list[int]:
    """Run TASKS loops of `step` (each round-tripping to Redis), cancel each at a random
    moment, and return, per round, how many did not end cancelled within STOP_BOUND_S."""
    not_cancelled: list[int] = []
    rng = random.Random(7)
    for _ in range(ROUNDS):
        started = asyncio.Event()
        tasks = [asyncio.create_task(busy_loop(step, n, started)) for n in range(TASKS)]
        await started.wait()
        for task in rng.sample(tasks, len(tasks)):
            task.cancel()
            # Let other commands complete between cancellations, so some land mid-reply.
            for _ in range(rng.randrange(3)):
                await asyncio.sleep(0)
        _, pending = await asyncio.wait(tasks, timeout=STOP_BOUND_S)
        not_cancelled.append(sum(1 for t in tasks if not (t.done() and t.cancelled())))
        for task in pending:  # so a failing round does not leave loops running
            task.cancel()
        await asyncio.wait(tasks, timeout=STOP_BOUND_S)
    return not_cancelled


async def test_cache_commands_never_lose_a_cancellation(cache: RedisCache) -> None:
    async def step(n: int) -> None:
        await cache.set(f"k{n}", b"v", 30)
        await cache.get(f"k{n}")

    assert await cancel_busy_loops(step) == [0] * ROUNDS


async def test_publishing_never_loses_a_cancellation(bus: RedisPubSub) -> None:
    async def step(n: int) -> None:
        await bus.publish(f"c{n}", b"tick")
        await bus.publish_many([(f"c{n}", b"a"), (f"c{n}", b"b")])

    assert await cancel_busy_loops(step) == [0] * ROUNDS
