"""Cache and pub/sub contracts, run against the in-process and the Redis implementations."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager

import pytest
from redis.asyncio import Redis

from optix_server.infra.cache import Cache, InMemoryCache, RedisCache
from optix_server.infra.pubsub import (
    InMemoryPubSub,
    PubSub,
    RedisPubSub,
    listen_resubscribing,
)
from tests.support.backends import redis_namespace


@pytest.fixture
async def pubsub(broker_kind: str) -> AsyncIterator[PubSub]:
    """A PubSub of the parametrised kind."""
    if broker_kind == "memory":
        yield InMemoryPubSub()
        return
    async with redis_namespace() as (url, prefix):
        bus = RedisPubSub(Redis.from_url(url), prefix)
        yield bus
        await bus.close()


@pytest.fixture
async def cache(broker_kind: str) -> AsyncIterator[Cache]:
    """A Cache of the parametrised kind."""
    if broker_kind == "memory":
        yield InMemoryCache()
        return
    async with redis_namespace() as (url, prefix):
        store = RedisCache(Redis.from_url(url), prefix)
        yield store
        await store.close()


async def test_every_subscriber_gets_every_message_in_order(pubsub: PubSub) -> None:
    async with pubsub.subscribe("quotes.AAPL") as first, pubsub.subscribe("quotes.AAPL") as second:
        for i in range(5):
            await pubsub.publish("quotes.AAPL", f"tick-{i}".encode())
        for stream in (first, second):
            got = [await asyncio.wait_for(anext(stream), 5) for _ in range(5)]
            assert got == [f"tick-{i}".encode() for i in range(5)]


async def test_channels_are_isolated(pubsub: PubSub) -> None:
    async with pubsub.subscribe("a") as on_a:
        await pubsub.publish("b", b"not for a")
        await pubsub.publish("a", b"for a")
        assert await asyncio.wait_for(anext(on_a), 5) == b"for a"


async def test_publish_without_subscribers_is_fine_and_unsubscribe_stops_delivery(
    pubsub: PubSub,
) -> None:
    await pubsub.publish("nobody", b"x")
    async with pubsub.subscribe("c") as on_c:
        await pubsub.publish("c", b"1")
        assert await asyncio.wait_for(anext(on_c), 5) == b"1"
    async with pubsub.subscribe("c") as again:
        await pubsub.publish("c", b"2")
        assert await asyncio.wait_for(anext(again), 5) == b"2"


async def test_cache_set_get_delete(cache: Cache) -> None:
    assert await cache.get("k") is None
    await cache.set("k", b"v", ttl_seconds=60)
    assert await cache.get("k") == b"v"
    assert await cache.get_many(["k", "missing"]) == [b"v", None]
    remaining = await cache.ttl("k")
    assert remaining is not None and 0 < remaining <= 60
    await cache.delete("k")
    assert await cache.get("k") is None


async def test_publish_many_reaches_each_channel_in_order(pubsub: PubSub) -> None:
    async with pubsub.subscribe("m.a") as on_a, pubsub.subscribe("m.b") as on_b:
        await pubsub.publish_many([("m.a", b"a1"), ("m.b", b"b1"), ("m.a", b"a2")])
        await pubsub.publish_many([])
        assert [await asyncio.wait_for(anext(on_a), 5) for _ in range(2)] == [b"a1", b"a2"]
        assert await asyncio.wait_for(anext(on_b), 5) == b"b1"


async def test_cache_set_many_stores_every_key_with_its_expiry(cache: Cache) -> None:
    await cache.set_many({"x": b"1", "y": b"2"}, ttl_seconds=60)
    await cache.set_many({})
    assert await cache.get_many(["x", "y"]) == [b"1", b"2"]
    remaining = await cache.ttl("y")
    assert remaining is not None and 0 < remaining <= 60


async def test_cache_incr_counts_and_keeps_first_expiry(cache: Cache) -> None:
    assert await cache.incr("n", ttl_seconds=30) == 1
    assert await cache.incr("n", ttl_seconds=30) == 2
    assert await cache.incr("n", ttl_seconds=30) == 3
    remaining = await cache.ttl("n")
    assert remaining is not None and remaining <= 30


async def test_cache_hold_has_one_holder_at_a_time(cache: Cache) -> None:
    assert await cache.hold("owner", "a", ttl_seconds=30)
    assert not await cache.hold("owner", "b", ttl_seconds=30)
    assert await cache.hold("owner", "a", ttl_seconds=30)  # renewing is holding
    await cache.let_go("owner", "b")  # not b's to end
    assert not await cache.hold("owner", "b", ttl_seconds=30)
    await cache.let_go("owner", "a")
    assert await cache.hold("owner", "b", ttl_seconds=30)
    remaining = await cache.ttl("owner")
    assert remaining is not None and 0 < remaining <= 30


async def test_concurrent_holds_have_one_winner(cache: Cache) -> None:
    won = await asyncio.gather(*(cache.hold("race", f"r{i}", ttl_seconds=30) for i in range(20)))
    assert sum(won) == 1


async def test_an_expired_hold_is_free_again() -> None:
    now = [1000.0]
    cache = InMemoryCache(clock=lambda: now[0])
    assert await cache.hold("owner", "a", ttl_seconds=5)
    now[0] += 5.1
    assert await cache.hold("owner", "b", ttl_seconds=5)


async def test_in_memory_cache_expires_on_its_clock() -> None:
    now = [1000.0]
    cache = InMemoryCache(clock=lambda: now[0])
    await cache.set("k", b"v", ttl_seconds=5)
    now[0] += 4.9
    assert await cache.get("k") == b"v"
    now[0] += 0.2
    assert await cache.get("k") is None


async def test_stalled_in_memory_subscriber_is_bounded() -> None:
    bus = InMemoryPubSub(max_backlog=3)
    async with bus.subscribe("s") as stream:
        for i in range(10):
            await bus.publish("s", str(i).encode())
        got = [await asyncio.wait_for(anext(stream), 5) for _ in range(3)]
    assert got == [b"7", b"8", b"9"]
    assert bus.dropped == 7


async def test_in_memory_cache_is_bounded_and_evicts_the_oldest() -> None:
    cache = InMemoryCache(max_entries=3)
    for key in ("a", "b", "c"):
        await cache.set(key, key.encode())
    await cache.set("a", b"A")  # rewriting a key makes it the newest
    await cache.incr("d", ttl_seconds=10)  # full: the oldest ("b") goes
    assert await cache.get("b") is None
    assert [await cache.get(k) for k in ("a", "c", "d")] == [b"A", b"c", b"1"]


async def test_a_subscriber_leaving_does_not_end_the_others(pubsub: PubSub) -> None:
    async with pubsub.subscribe("shared") as staying:
        async with pubsub.subscribe("shared") as leaving:
            await pubsub.publish("shared", b"both")
            assert await asyncio.wait_for(anext(leaving), 5) == b"both"
            assert await asyncio.wait_for(anext(staying), 5) == b"both"
        await pubsub.publish("shared", b"after")
        assert await asyncio.wait_for(anext(staying), 5) == b"after"


async def test_redis_pubsub_uses_one_connection_for_every_channel() -> None:
    async with redis_namespace() as (url, prefix):
        name = prefix.replace(":", "-").rstrip("-")
        bus = RedisPubSub(Redis.from_url(url, client_name=name), prefix)
        admin = Redis.from_url(url)
        try:
            async with contextlib.AsyncExitStack() as stack:
                streams = [
                    await stack.enter_async_context(bus.subscribe(f"sym.{i}")) for i in range(20)
                ]
                clients = await admin.client_list(_type="pubsub")
                mine = [c for c in clients if c.get("name") == name]
                assert len(mine) == 1
                assert int(mine[0]["sub"]) == 20
                await bus.publish("sym.7", b"seven")
                assert await asyncio.wait_for(anext(streams[7]), 5) == b"seven"
        finally:
            await bus.close()
            await admin.aclose()


class FlakyPubSub:
    """An in-process pub/sub whose first subscription fails, like Redis restarting."""

    def __init__(self) -> None:
        self.inner = InMemoryPubSub()
        self.attempts = 0

    async def publish(self, channel: str, payload: bytes) -> None:
        await self.inner.publish(channel, payload)

    async def publish_many(self, messages: Sequence[tuple[str, bytes]]) -> None:
        await self.inner.publish_many(messages)

    def subscribe(self, channel: str) -> AbstractAsyncContextManager[AsyncIterator[bytes]]:
        self.attempts += 1
        if self.attempts == 1:
            raise ConnectionError("connection reset")
        return self.inner.subscribe(channel)

    async def close(self) -> None:
        await self.inner.close()


async def test_a_listener_resubscribes_after_a_failure() -> None:
    bus = FlakyPubSub()
    received: asyncio.Queue[bytes] = asyncio.Queue()
    subscribed = asyncio.Event()
    listener = asyncio.create_task(
        listen_resubscribing(bus, "c", received.put_nowait, subscribed, retry_delay=0)
    )
    try:
        await asyncio.wait_for(subscribed.wait(), 5)
        await bus.publish("c", b"after the failure")
        assert await asyncio.wait_for(received.get(), 5) == b"after the failure"
        assert bus.attempts == 2
    finally:
        listener.cancel()
        await asyncio.gather(listener, return_exceptions=True)
