"""A separate feed-owner process for the cross-process test: runs the simulated provider's
feed and publishes ticks through Redis until its stdin closes.

Usage: python -m tests.marketdata.feed_owner_process REDIS_URL PREFIX EPOCH
"""

from __future__ import annotations

import asyncio
import sys
from datetime import datetime

from redis.asyncio import Redis

from optix_server.infra.cache import RedisCache
from optix_server.infra.pubsub import RedisPubSub
from optix_server.marketdata.config import DEFAULT_UNIVERSE
from optix_server.marketdata.feed import FeedPublisher
from optix_server.marketdata.providers.simulated import SimulatedProvider


async def main(url: str, prefix: str, epoch: str) -> None:
    """Publish until stdin reaches EOF."""
    pubsub = RedisPubSub(Redis.from_url(url), prefix)
    cache = RedisCache(Redis.from_url(url), prefix)
    provider = SimulatedProvider(
        DEFAULT_UNIVERSE,
        seed=5,
        tick_rate=20,
        risk_free_rate=0.045,
        dividend_yields={},
        start_time=datetime.fromisoformat(epoch),
    )
    await provider.start()
    publisher = FeedPublisher(provider, pubsub, cache, lease_seconds=15, cache_ttl=30)
    await publisher.start()
    print("ready", flush=True)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)
    await publisher.stop()
    await pubsub.close()
    await cache.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3]))
