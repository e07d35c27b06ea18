"""FallbackCache: the shared cache while it answers, this process's memory while it does not,
the shared one again once it is back; leases are never faked locally."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
import redis.exceptions
from redis.asyncio import Redis

from optix_server.infra.cache import RedisCache
from optix_server.infra.fallback_cache import FallbackCache
from tests.support.backends import redis_namespace
from tests.support.tcp_proxy import TcpProxy


class Ticks:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_counts_go_local_while_redis_is_away_and_shared_once_it_is_back() -> None:
    async with redis_namespace() as (url, prefix):
        target = urlsplit(url)
        proxy = TcpProxy(target.hostname or "127.0.0.1", target.port or 6379)
        await proxy.start()
        client = Redis.from_url(
            target._replace(netloc=f"127.0.0.1:{proxy.port}").geturl(), socket_timeout=5
        )
        ticks = Ticks()
        cache = FallbackCache(RedisCache(client, prefix), retry_after=2.0, monotonic=ticks)
        try:
            assert await cache.incr("tries", 60) == 1
            await proxy.cut()
            # Away: counted here, from zero (the shared count is out of reach).
            assert await cache.incr("tries", 60) == 1
            assert cache.on_fallback
            assert await cache.incr("tries", 60) == 2
            with pytest.raises(redis.exceptions.ConnectionError):
                await cache.hold("lease", "me", 10)  # never granted from local memory
            await proxy.start()
            assert await cache.incr("tries", 60) == 3  # still within retry_after: local
            ticks.now += 2.0
            assert await cache.incr("tries", 60) == 2  # the shared count again
            assert not cache.on_fallback
        finally:
            await proxy.cut()
            await client.aclose()
