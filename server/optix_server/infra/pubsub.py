"""Publish/subscribe fan-out: one protocol, an in-process implementation and a Redis one.

Anything that must reach every replica (quote ticks, alert events) goes through here, so N
replicas behind Envoy behave as one.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Protocol

from redis.asyncio import Redis

from optix_server.infra.logging import get_logger

log = get_logger(__name__)


class PubSub(Protocol):
    """Channels of opaque byte messages, delivered to every current subscriber."""

    async def publish(self, channel: str, payload: bytes) -> None:
        """Send `payload` to every subscriber of `channel` (none is fine)."""
        ...

    def subscribe(self, channel: str) -> AbstractAsyncContextManager[AsyncIterator[bytes]]:
        """Subscribe to `channel`; active when the context is entered, ended when it exits."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...


class InMemoryPubSub:
    """Process-local pub/sub for the embedded default (single replica)."""

    def __init__(self, max_backlog: int = 10_000) -> None:
        self._subscribers: dict[str, set[asyncio.Queue[bytes]]] = defaultdict(set)
        self._max_backlog = max_backlog
        self.dropped = 0

    async def publish(self, channel: str, payload: bytes) -> None:
        """Send `payload` to every subscriber of `channel`."""
        for queue in list(self._subscribers.get(channel, ())):
            if queue.full():
                # A subscriber this far behind has stalled; dropping its oldest message keeps
                # memory bounded and never blocks the publisher.
                queue.get_nowait()
                self.dropped += 1
            queue.put_nowait(payload)

    @asynccontextmanager
    async def subscribe(self, channel: str) -> AsyncIterator[AsyncIterator[bytes]]:
        """Subscribe to `channel` for the duration of the context."""
        queue: asyncio.Queue[bytes] = asyncio.Queue(self._max_backlog)
        self._subscribers[channel].add(queue)

        async def messages() -> AsyncIterator[bytes]:
            while True:
                yield await queue.get()

        try:
            yield messages()
        finally:
            subscribers = self._subscribers.get(channel)
            if subscribers is not None:
                subscribers.discard(queue)
                if not subscribers:
                    del self._subscribers[channel]

    async def close(self) -> None:
        """Forget every subscriber."""
        self._subscribers.clear()


class RedisPubSub:
    """Redis pub/sub shared by every replica; channels are namespaced by `prefix`."""

    def __init__(self, redis: Redis, prefix: str = "optix:") -> None:
        self._redis = redis
        self._prefix = prefix + "ps:"

    async def publish(self, channel: str, payload: bytes) -> None:
        """Send `payload` to every subscriber of `channel` on any replica."""
        await self._redis.publish(self._prefix + channel, payload)

    @asynccontextmanager
    async def subscribe(self, channel: str) -> AsyncIterator[AsyncIterator[bytes]]:
        """Subscribe to `channel`; returns once Redis has confirmed the subscription."""
        pubsub = self._redis.pubsub()
        full = self._prefix + channel
        await pubsub.subscribe(full)
        # Wait for the confirmation so a publish right after entering is not missed.
        while True:
            message = await pubsub.get_message(timeout=5.0)
            if message is not None and message["type"] == "subscribe":
                break

        async def messages() -> AsyncIterator[bytes]:
            async for message in pubsub.listen():
                if message["type"] == "message":
                    data = message["data"]
                    yield data if isinstance(data, bytes) else str(data).encode()

        try:
            yield messages()
        finally:
            try:
                await pubsub.unsubscribe(full)
                await pubsub.aclose()  # type: ignore[no-untyped-call]
            except Exception:  # the connection may already be gone during shutdown
                log.debug("redis unsubscribe failed", channel=channel, exc_info=True)

    async def close(self) -> None:
        """Close the Redis connection pool."""
        await self._redis.aclose()
