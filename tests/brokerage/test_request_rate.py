"""The request budget shared by replicas through the cache: never more than the rate in any
window, whichever replica asks."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from redis.asyncio import Redis

from optix_server.infra.cache import Cache, InMemoryCache, RedisCache
from optix_server.infra.request_rate import SharedWindowLimiter
from tests.brokerage.support import VirtualTime
from tests.support.backends import redis_namespace


@asynccontextmanager
async def shared_cache(kind: str, vt: VirtualTime) -> AsyncIterator[Cache]:
    """The cache replicas share: in process, or a real Redis namespace."""
    if kind == "memory":
        yield InMemoryCache(clock=vt.monotonic)
        return
    async with redis_namespace() as (url, prefix):
        client = Redis.from_url(url)
        try:
            yield RedisCache(client, prefix=prefix)
        finally:
            await client.aclose()


@pytest.mark.parametrize("kind", ["memory", pytest.param("redis", marks=pytest.mark.redis)])
async def test_two_replicas_share_one_budget(kind: str) -> None:
    vt = VirtualTime()
    async with shared_cache(kind, vt) as cache:
        replicas = [
            SharedWindowLimiter(cache, "schwab", 10, 60.0, clock=vt.wall, sleep=vt.sleep)
            for _ in range(2)
        ]
        admitted: list[float] = []
        for i in range(35):
            await replicas[i % 2].acquire()
            admitted.append(vt.wall())
    assert max(sum(1 for s in admitted if t <= s < t + 60) for t in admitted) <= 10
    # ...while still using most of it: 35 requests at 10 a minute in about 3-4 windows.
    assert admitted[-1] - admitted[0] < 4 * 61


async def test_a_burst_fills_the_budget_then_waits() -> None:
    vt = VirtualTime()
    limiter = SharedWindowLimiter(
        InMemoryCache(clock=vt.monotonic), "k", 3, 10.0, clock=vt.wall, sleep=vt.sleep
    )
    for _ in range(3):
        await limiter.acquire()
    assert vt.sleeps == []
    await limiter.acquire()
    assert 10.0 <= vt.elapsed <= 12.0


def test_settings_are_checked() -> None:
    cache = InMemoryCache()
    with pytest.raises(ValueError):
        SharedWindowLimiter(cache, "k", 0)
    with pytest.raises(ValueError):
        SharedWindowLimiter(cache, "k", 5, 10.0, slot_seconds=20.0)
