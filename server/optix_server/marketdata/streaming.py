"""Quote stream fan-out: one pub/sub subscription per symbol per process, shared by every
client stream, each client holding only the newest quote per symbol (conflation).

A slow client never slows the others: fan-out only replaces an entry in that client's
dictionary, so its memory is bounded by its symbol count whatever the tick rate.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass

from optix.marketdata.v1 import quote_pb2
from optix_server.common.quote_topic import (
    DEMAND_CHANNEL,
    DEMAND_LEASE_SECONDS,
    demand_message,
    quote_channel,
)
from optix_server.infra.errors import Unavailable
from optix_server.infra.lifecycle import SHUTDOWN_MESSAGE
from optix_server.infra.logging import get_logger
from optix_server.infra.pubsub import PubSub
from optix_server.marketdata.wire import frame_field_1, quote_batch_response

log = get_logger(__name__)

SUBSCRIBE_TIMEOUT = 10.0
HEARTBEAT_RESOLUTION = 0.25

Snapshot = Callable[[Sequence[str]], Awaitable[dict[str, bytes]]]


@dataclass(frozen=True, slots=True)
class Tick:
    """One quote update: its symbol, per-symbol sequence and encoded Quote message, also
    framed as a repeated-field element so stream messages are built by concatenation, and its
    quote_time in epoch seconds (0 when unset)."""

    symbol: str
    sequence: int
    payload: bytes
    framed: bytes
    quote_time: float = 0.0


def tick_from_payload(payload: bytes) -> Tick:
    """Read the symbol, sequence and time of an encoded Quote (once per tick per process)."""
    message = quote_pb2.Quote.FromString(payload)
    stamp = message.quote_time
    return Tick(
        message.symbol,
        message.sequence,
        payload,
        frame_field_1(payload),
        stamp.seconds + stamp.nanos * 1e-9,
    )


class _Delivery:
    """The ticks of one flush for one symbol set, shared by every stream on that set: the
    stream message is encoded once, on first use, whatever the number of streams."""

    __slots__ = ("_encoded", "ticks")

    def __init__(self, ticks: tuple[Tick, ...]) -> None:
        self.ticks = ticks
        self._encoded: bytes | None = None

    def encoded(self) -> bytes:
        """StreamQuotesResponse bytes carrying these ticks."""
        if self._encoded is None:
            self._encoded = quote_batch_response([t.framed for t in self.ticks])
        return self._encoded


class QuoteSubscription:
    """One client stream's view: the newest undelivered tick per symbol, and a wake-up."""

    __slots__ = (
        "_close_message",
        "_close_reason",
        "_closed",
        "_delivery",
        "_pending",
        "_seen",
        "_waiter",
        "conflated",
        "heartbeat_due",
        "heartbeat_seconds",
        "last_sent",
        "symbols",
        "synced",
    )

    def __init__(self, symbols: Sequence[str], heartbeat_seconds: float = 15.0) -> None:
        self.symbols = tuple(symbols)
        self.heartbeat_seconds = heartbeat_seconds
        self._pending: dict[str, Tick] = {}
        # A shared flush not yet sent; set only while _pending is empty (the usual case).
        self._delivery: _Delivery | None = None
        # The newest sequence offered per symbol, pending or already sent (until synced).
        self._seen: dict[str, int] = {}
        # Synced: nothing seen is newer than what the hub has flushed, so every later flush
        # is newer than anything this stream holds and needs no per-symbol check.
        self.synced = False
        # The future next_message is waiting on, if it is: one per wait, resolved by the
        # first wake-up (cheaper than an asyncio.Event on the fan-out hot path).
        self._waiter: asyncio.Future[None] | None = None
        self._closed = False
        self._close_message = SHUTDOWN_MESSAGE
        self._close_reason = "SHUTTING_DOWN"
        self.heartbeat_due = False
        self.last_sent = time.monotonic()
        self.conflated = 0

    @property
    def pending(self) -> int:
        """How many symbols have an undelivered tick (never more than the symbol count)."""
        if self._delivery is not None:
            return len(self._delivery.ticks)
        return len(self._pending)

    def seen(self, symbol: str) -> int:
        """The newest sequence this stream was offered for `symbol` before it synced."""
        return self._seen.get(symbol, 0)

    def _spill(self) -> None:
        # A second flush arrived before the first was sent: fall back to per-symbol merging.
        delivery = self._delivery
        if delivery is not None:
            self._delivery = None
            for tick in delivery.ticks:
                self._pending[tick.symbol] = tick

    def offer(self, tick: Tick) -> None:
        """Keep `tick` unless this stream already has (or sent) a newer one for its symbol."""
        symbol = tick.symbol
        if tick.sequence <= self._seen.get(symbol, 0):
            return
        self._seen[symbol] = tick.sequence
        self._spill()
        if symbol in self._pending:
            self.conflated += 1
        self._pending[symbol] = tick
        self._wake()

    def deliver(self, delivery: _Delivery) -> None:
        """Take a flush's ticks (newer than anything held: only called once synced)."""
        # Called once per flush per stream: the hot path of fan-out.
        if self._delivery is None and not self._pending:
            self._delivery = delivery
        else:
            self._spill()
            pending = self._pending
            for tick in delivery.ticks:
                if tick.symbol in pending:
                    self.conflated += 1
                pending[tick.symbol] = tick
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():  # cancelled with its stream
                waiter.set_result(None)

    def wake_for_heartbeat(self) -> None:
        """Called by the hub's clock when the stream has been quiet for its heartbeat interval."""
        self.heartbeat_due = True
        self._wake()

    def close(self, message: str = SHUTDOWN_MESSAGE, reason: str = "SHUTTING_DOWN") -> None:
        """End the stream: the next next_batch raises Unavailable with `message`."""
        self._closed = True
        self._close_message = message
        self._close_reason = reason
        self._wake()

    async def _wait(self) -> None:
        # Waits on a plain future (no per-wait timer): with thousands of streams, arming and
        # cancelling a timeout for every message costs more than the hub's one heartbeat clock.
        while (
            self._delivery is None
            and not self._pending
            and not self._closed
            and not self.heartbeat_due
        ):
            self._waiter = asyncio.get_running_loop().create_future()
            await self._waiter
        if self._closed:
            raise Unavailable(self._close_message, reason=self._close_reason)
        self.heartbeat_due = False
        self.last_sent = time.monotonic()

    async def next_batch(self) -> list[Tick]:
        """Everything pending as one batch; [] when a heartbeat is due; Unavailable on close."""
        await self._wait()
        delivery = self._delivery
        if delivery is not None:
            self._delivery = None
            return list(delivery.ticks)
        batch = list(self._pending.values())
        self._pending.clear()
        return batch

    async def next_message(self) -> bytes | None:
        """next_batch as encoded StreamQuotesResponse bytes (shared by the streams that got
        the same flush); None when a heartbeat is due; Unavailable on close."""
        await self._wait()
        delivery = self._delivery
        if delivery is not None:
            self._delivery = None
            return delivery.encoded()
        if not self._pending:
            return None
        encoded = quote_batch_response([t.framed for t in self._pending.values()])
        self._pending.clear()
        return encoded


class _SymbolFeed:
    """The process's single subscription to one symbol's channel."""

    def __init__(self, symbol: str) -> None:
        self.symbol = symbol
        self.listeners: set[QuoteSubscription] = set()
        self.ready = asyncio.Event()
        self.failed: BaseException | None = None
        self.last_sequence = 0
        # The newest sequence handed to streams by a flush.
        self.flushed_sequence = 0
        self.task: asyncio.Task[None] | None = None


class QuoteHub:
    """Shares one upstream subscription per symbol among all client streams of a process."""

    def __init__(
        self,
        pubsub: PubSub,
        snapshot: Snapshot,
        shutting_down: asyncio.Event,
        lease_seconds: float = DEMAND_LEASE_SECONDS,
        *,
        observe_lag: Callable[[float], None] | None = None,
    ) -> None:
        self._pubsub = pubsub
        # Hears, once per flush, the seconds from its oldest quote's quote_time to now.
        self._observe_lag = observe_lag
        # Ticks conflated by the streams that have ended (the open ones keep their own count).
        self._conflated_before = 0
        self._snapshot = snapshot
        self._shutting_down = shutting_down
        self._renew_every = lease_seconds / 3
        self._feeds: dict[str, _SymbolFeed] = {}
        self._subscriptions: set[QuoteSubscription] = set()
        # Streams by symbol set: one shared delivery per set per flush.
        self._groups: dict[tuple[str, ...], set[QuoteSubscription]] = {}
        # Ticks received since the last flush, newest per symbol.
        self._dirty: dict[str, Tick] = {}
        self._flush_scheduled = False
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def symbol_count(self) -> int:
        """Symbols with a live upstream subscription in this process."""
        return len(self._feeds)

    @property
    def stream_count(self) -> int:
        """Client streams currently open."""
        return len(self._subscriptions)

    @property
    def conflated(self) -> int:
        """Ticks superseded before their stream sent them, over every stream so far (read at
        scrape time, so fan-out only bumps each stream's own count)."""
        return self._conflated_before + sum(sub.conflated for sub in self._subscriptions)

    async def start(self) -> None:
        """Start renewing demand leases and watching for shutdown."""
        self._tasks = [
            asyncio.create_task(self._renew_demand(), name="marketdata-demand"),
            asyncio.create_task(self._close_on_shutdown(), name="marketdata-shutdown"),
            asyncio.create_task(self._heartbeats(), name="marketdata-heartbeats"),
        ]

    async def stop(self) -> None:
        """End every client stream (UNAVAILABLE) and drop every upstream subscription."""
        for sub in list(self._subscriptions):
            sub.close()
        for task in self._tasks:
            task.cancel()
        for feed in list(self._feeds.values()):
            if feed.task is not None:
                feed.task.cancel()
        tasks = [*self._tasks, *(f.task for f in self._feeds.values() if f.task is not None)]
        await asyncio.gather(*tasks, return_exceptions=True)
        self._feeds.clear()
        self._tasks = []

    @contextlib.asynccontextmanager
    async def subscribe(
        self, symbols: Sequence[str], heartbeat_seconds: float = 15.0
    ) -> AsyncIterator[QuoteSubscription]:
        """A subscription to `symbols` for the duration of the context, primed with the
        latest known quote of each symbol; quiet for `heartbeat_seconds`, it wakes with []."""
        if self._shutting_down.is_set():
            raise Unavailable(SHUTDOWN_MESSAGE, reason="SHUTTING_DOWN")
        sub = QuoteSubscription(symbols, heartbeat_seconds)
        self._subscriptions.add(sub)
        group = self._groups.setdefault(sub.symbols, set())
        group.add(sub)
        new: list[_SymbolFeed] = []
        try:
            for symbol in sub.symbols:
                feed = self._feeds.get(symbol)
                if feed is None:
                    feed = _SymbolFeed(symbol)
                    self._feeds[symbol] = feed
                    feed.task = asyncio.create_task(self._run_feed(feed), name=f"md-{symbol}")
                    new.append(feed)
                feed.listeners.add(sub)
            await self._await_ready([self._feeds[s] for s in sub.symbols])
            if new:
                await self._announce([f.symbol for f in new])
            for symbol, payload in (await self._snapshot(sub.symbols)).items():
                tick = tick_from_payload(payload)
                if tick.symbol == symbol:
                    sub.offer(tick)
            self._sync(sub)
            yield sub
        finally:
            self._subscriptions.discard(sub)
            self._conflated_before += sub.conflated
            group.discard(sub)
            if not group and self._groups.get(sub.symbols) is group:
                del self._groups[sub.symbols]
            for symbol in sub.symbols:
                feed = self._feeds.get(symbol)
                if feed is None:
                    continue
                feed.listeners.discard(sub)
                if not feed.listeners:
                    del self._feeds[symbol]
                    if feed.task is not None:
                        feed.task.cancel()

    async def _await_ready(self, feeds: list[_SymbolFeed]) -> None:
        pending = [f for f in feeds if not f.ready.is_set()]
        if pending:
            try:
                async with asyncio.timeout(SUBSCRIBE_TIMEOUT):
                    await asyncio.gather(*(f.ready.wait() for f in pending))
            except TimeoutError:
                raise Unavailable("quote stream could not subscribe in time") from None
        failed = [f for f in feeds if f.failed is not None]
        if failed:
            raise Unavailable("quote stream could not subscribe to the quote feed")

    async def _run_feed(self, feed: _SymbolFeed) -> None:
        try:
            async with self._pubsub.subscribe(quote_channel(feed.symbol)) as messages:
                feed.ready.set()
                async for payload in messages:
                    tick = tick_from_payload(payload)
                    # Sequences only grow: an older tick (duplicate publisher, late message)
                    # would move a client backwards, so it is dropped here once.
                    if tick.sequence <= feed.last_sequence:
                        continue
                    feed.last_sequence = tick.sequence
                    # Ticks arriving within one loop turn (a feed ticks every symbol at
                    # once) go out together: one message per stream, not one per tick.
                    self._dirty[feed.symbol] = tick
                    if not self._flush_scheduled:
                        self._flush_scheduled = True
                        asyncio.get_running_loop().call_soon(self._flush)
            raise ConnectionError("the subscription ended")
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("quote feed subscription failed", symbol=feed.symbol, error=str(exc))
            feed.failed = exc
            feed.ready.set()
            # Not a shutdown: tell clients the feed broke, and that reconnecting resumes it.
            for sub in list(feed.listeners):
                sub.close(
                    f"the quote feed for {feed.symbol} was interrupted; reconnect to resume",
                    reason="FEED_INTERRUPTED",
                )

    def _sync(self, sub: QuoteSubscription) -> None:
        if all(sub.seen(s) <= self._feeds[s].flushed_sequence for s in sub.symbols):
            sub.synced = True

    def _flush(self) -> None:
        self._flush_scheduled = False
        dirty, self._dirty = self._dirty, {}
        oldest = 0.0
        for symbol, tick in dirty.items():
            feed = self._feeds.get(symbol)
            if feed is not None:
                feed.flushed_sequence = tick.sequence
            if tick.quote_time and (not oldest or tick.quote_time < oldest):
                oldest = tick.quote_time
        if oldest and self._observe_lag is not None:
            # One observation per flush (the batch every stream is handed now), not per stream
            # or per message; a clock behind the feed's counts as no lag.
            self._observe_lag(max(0.0, time.time() - oldest))
        for symbols, group in self._groups.items():
            ticks = tuple(dirty[s] for s in symbols if s in dirty)
            if not ticks:
                continue
            delivery = _Delivery(ticks)
            for sub in group:
                if sub.synced:
                    sub.deliver(delivery)
                else:
                    # Primed by a snapshot possibly newer than the feed: check each tick.
                    for tick in ticks:
                        sub.offer(tick)
                    self._sync(sub)

    async def _announce(self, symbols: Sequence[str]) -> None:
        try:
            await self._pubsub.publish(DEMAND_CHANNEL, demand_message(symbols))
        except Exception as exc:
            log.warning("could not announce quote demand", error=str(exc))

    async def _renew_demand(self) -> None:
        # Leases tell the feed owner (maybe another replica) which symbols still have readers.
        while True:
            await asyncio.sleep(self._renew_every)
            if self._feeds:
                await self._announce(list(self._feeds))

    async def _heartbeats(self) -> None:
        # One clock for every stream; heartbeats are due within HEARTBEAT_RESOLUTION.
        while True:
            await asyncio.sleep(HEARTBEAT_RESOLUTION)
            now = time.monotonic()
            for sub in self._subscriptions:
                if now - sub.last_sent >= sub.heartbeat_seconds:
                    sub.wake_for_heartbeat()

    async def _close_on_shutdown(self) -> None:
        await self._shutting_down.wait()
        for sub in list(self._subscriptions):
            sub.close()
