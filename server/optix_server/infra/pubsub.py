"""Publish/subscribe fan-out: one protocol, an in-process implementation and a Redis one.

Anything that must reach every replica (quote ticks, alert events) goes through here, so N
replicas behind Envoy behave as one.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, Protocol

from redis.asyncio import Redis

from optix_server.infra.cache import reraise_lost_cancellation
from optix_server.infra.logging import get_logger

log = get_logger(__name__)


class PubSub(Protocol):
    """Channels of opaque byte messages, delivered to every current subscriber."""

    async def publish(self, channel: str, payload: bytes) -> None:
        """Send `payload` to every subscriber of `channel` (none is fine)."""
        ...

    async def publish_many(self, messages: Sequence[tuple[str, bytes]]) -> None:
        """Send each (channel, payload) in order, together: subscribers receive them in one
        burst (one round trip on Redis), so a tick of many symbols arrives as one."""
        ...

    def subscribe(self, channel: str) -> AbstractAsyncContextManager[AsyncIterator[bytes]]:
        """Subscribe to `channel`; active when the context is entered, ended when it exits."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...


# Queued to a subscriber whose subscription broke (compared by identity, never delivered).
_BROKEN = b"\x00optix:pubsub-broken"


class LocalFanout:
    """This process's subscribers per channel, each with a bounded queue.

    A subscriber that falls `max_backlog` messages behind has stalled: its oldest message is
    dropped (and counted) so memory stays bounded and a publisher never blocks.
    """

    def __init__(self, max_backlog: int = 10_000) -> None:
        self._subscribers: dict[str, set[asyncio.Queue[bytes]]] = defaultdict(set)
        self._max_backlog = max_backlog
        self.dropped = 0

    def add(self, channel: str) -> tuple[asyncio.Queue[bytes], bool]:
        """A new subscriber queue on `channel`, and whether it is the channel's first."""
        queue: asyncio.Queue[bytes] = asyncio.Queue(self._max_backlog)
        first = channel not in self._subscribers
        self._subscribers[channel].add(queue)
        return queue, first

    def remove(self, channel: str, queue: asyncio.Queue[bytes]) -> bool:
        """Drop a subscriber; True when the channel has no subscribers left."""
        subscribers = self._subscribers.get(channel)
        if subscribers is None:
            return True
        subscribers.discard(queue)
        if subscribers:
            return False
        del self._subscribers[channel]
        return True

    def has_subscribers(self, channel: str) -> bool:
        """Whether anyone in this process listens on `channel`."""
        return channel in self._subscribers

    def deliver(self, channel: str, payload: bytes) -> None:
        """Queue `payload` for every subscriber of `channel`."""
        for queue in list(self._subscribers.get(channel, ())):
            if queue.full():
                queue.get_nowait()
                self.dropped += 1
            queue.put_nowait(payload)

    def clear(self) -> None:
        """Forget every subscriber."""
        self._subscribers.clear()

    def break_all(self) -> None:
        """End every subscription with ConnectionError: messages were (or may have been) lost,
        and a subscriber that went on would never know it had missed them."""
        for subscribers in self._subscribers.values():
            for queue in subscribers:
                if queue.full():
                    queue.get_nowait()
                queue.put_nowait(_BROKEN)

    @staticmethod
    async def messages(queue: asyncio.Queue[bytes]) -> AsyncIterator[bytes]:
        """The messages arriving on one subscriber's queue, until the connection breaks."""
        while True:
            payload = await queue.get()
            if payload is _BROKEN:
                raise ConnectionError("the pub/sub connection was lost")
            yield payload


class InMemoryPubSub:
    """Process-local pub/sub for the embedded default (single replica)."""

    def __init__(self, max_backlog: int = 10_000) -> None:
        self._fanout = LocalFanout(max_backlog)

    @property
    def dropped(self) -> int:
        """Messages dropped for stalled subscribers so far."""
        return self._fanout.dropped

    async def publish(self, channel: str, payload: bytes) -> None:
        """Send `payload` to every subscriber of `channel`."""
        self._fanout.deliver(channel, payload)

    async def publish_many(self, messages: Sequence[tuple[str, bytes]]) -> None:
        """Send each (channel, payload) in order."""
        for channel, payload in messages:
            self._fanout.deliver(channel, payload)

    @asynccontextmanager
    async def subscribe(self, channel: str) -> AsyncIterator[AsyncIterator[bytes]]:
        """Subscribe to `channel` for the duration of the context."""
        queue, _ = self._fanout.add(channel)
        try:
            yield self._fanout.messages(queue)
        finally:
            self._fanout.remove(channel, queue)

    async def close(self) -> None:
        """Forget every subscriber."""
        self._fanout.clear()


class RedisPubSub:
    """Redis pub/sub shared by every replica; channels are namespaced by `prefix`.

    One Redis connection carries every channel this process listens to (not one per channel):
    a reader task dispatches incoming messages to the local subscribers. `on_error` hears the
    name of each operation that fails (the metrics count them).
    """

    CONFIRM_TIMEOUT_S = 5.0

    def __init__(
        self,
        redis: Redis,
        prefix: str = "optix:",
        max_backlog: int = 10_000,
        *,
        on_error: Callable[[str], None] | None = None,
    ) -> None:
        self._redis = redis
        self._on_error = on_error
        self._prefix = prefix + "ps:"
        self._fanout = LocalFanout(max_backlog)
        self._pubsub = redis.pubsub()
        # Serialises SUBSCRIBE/UNSUBSCRIBE so a channel's first-subscriber and last-subscriber
        # transitions never interleave.
        self._commands = asyncio.Lock()
        self._confirmations: dict[str, asyncio.Future[None]] = {}
        self._reader: asyncio.Task[None] | None = None

    @property
    def dropped(self) -> int:
        """Messages dropped for stalled subscribers so far."""
        return self._fanout.dropped

    def _failed(self, operation: str) -> None:
        if self._on_error is not None:
            self._on_error(operation)

    async def publish(self, channel: str, payload: bytes) -> None:
        """Send `payload` to every subscriber of `channel` on any replica."""
        try:
            await self._redis.publish(self._prefix + channel, payload)
        except Exception:
            self._failed("publish")
            reraise_lost_cancellation()
            raise
        reraise_lost_cancellation()

    async def publish_many(self, messages: Sequence[tuple[str, bytes]]) -> None:
        """Send each (channel, payload) in order, pipelined in one round trip."""
        if not messages:
            return
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for channel, payload in messages:
                    pipe.publish(self._prefix + channel, payload)
                await pipe.execute()
        except Exception:
            self._failed("publish_many")
            reraise_lost_cancellation()
            raise
        reraise_lost_cancellation()

    @asynccontextmanager
    async def subscribe(self, channel: str) -> AsyncIterator[AsyncIterator[bytes]]:
        """Subscribe to `channel`; returns once Redis has confirmed the subscription."""
        full = self._prefix + channel
        queue, first = self._fanout.add(channel)
        try:
            async with self._commands:
                if first:
                    confirmed = asyncio.get_running_loop().create_future()
                    self._confirmations[full] = confirmed
                    try:
                        await self._pubsub.subscribe(full)
                        self._start_reader()
                        # Wait for Redis's confirmation so a publish right after entering is
                        # seen.
                        await asyncio.wait_for(confirmed, self.CONFIRM_TIMEOUT_S)
                    except Exception:
                        self._failed("subscribe")
                        reraise_lost_cancellation()
                        raise
                    # Both awaits can lose a cancellation on Python 3.11 (wait_for).
                    reraise_lost_cancellation()
            yield self._fanout.messages(queue)
        finally:
            if self._fanout.remove(channel, queue):
                async with self._commands:
                    self._confirmations.pop(full, None)
                    if not self._fanout.has_subscribers(channel):
                        with contextlib.suppress(Exception):  # gone already during shutdown
                            await self._pubsub.unsubscribe(full)
                        reraise_lost_cancellation()

    def _start_reader(self) -> None:
        if self._reader is None or self._reader.done():
            self._reader = asyncio.create_task(self._read(), name="redis-pubsub-reader")

    async def _read(self) -> None:
        while True:
            try:
                message = await self._pubsub.get_message(timeout=1.0)
                # A cancellation (close()) lost inside redis-py would keep this loop alive
                # and close() waiting for it forever.
                reraise_lost_cancellation()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                reraise_lost_cancellation()
                # Messages published meanwhile are lost: every subscriber hears it (a quote
                # stream ends UNAVAILABLE so its client reconnects; listeners resubscribe)
                # rather than waiting, unaware, on a subscription that missed them. Pause so
                # a Redis outage does not become a busy loop.
                self._failed("read")
                log.warning("redis pub/sub read failed; retrying", error=type(exc).__name__)
                self._fanout.break_all()
                await asyncio.sleep(0.5)
                continue
            if message is not None:
                self._dispatch(message)

    def _dispatch(self, message: dict[str, Any]) -> None:
        raw_channel = message["channel"]
        full = raw_channel.decode() if isinstance(raw_channel, bytes) else str(raw_channel)
        kind = message["type"]
        if kind == "message":
            data = message["data"]
            payload = data if isinstance(data, bytes) else str(data).encode()
            self._fanout.deliver(full[len(self._prefix) :], payload)
        elif kind == "subscribe":
            confirmed = self._confirmations.pop(full, None)
            if confirmed is not None and not confirmed.done():
                confirmed.set_result(None)

    async def close(self) -> None:
        """Stop the reader and close the Redis connections."""
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader
        self._fanout.clear()
        with contextlib.suppress(Exception):
            await self._pubsub.aclose()  # type: ignore[no-untyped-call]
        await self._redis.aclose()


async def listen_resubscribing(
    pubsub: PubSub,
    channel: str,
    on_message: Callable[[bytes], None],
    subscribed: asyncio.Event,
    *,
    retry_delay: float = 1.0,
) -> None:
    """Hand every message of `channel` to `on_message` until cancelled, setting `subscribed`
    once listening; after a failure (Redis restarting, say) it subscribes again rather than
    leaving its listener deaf for good."""
    while True:
        try:
            async with pubsub.subscribe(channel) as messages:
                subscribed.set()
                async for payload in messages:
                    on_message(payload)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("subscription failed; resubscribing", channel=channel, error=str(exc))
        await asyncio.sleep(retry_delay)
