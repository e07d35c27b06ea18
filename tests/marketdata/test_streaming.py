"""The stream hub: shared per-symbol subscriptions, conflation, stalled clients, shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from datetime import UTC, datetime

import pytest

from optix_server.common.quote_topic import quote_channel
from optix_server.infra.cache import InMemoryCache
from optix_server.infra.errors import Unavailable
from optix_server.infra.pubsub import InMemoryPubSub
from optix_server.marketdata.convert import decode_quote, encode_quote
from optix_server.marketdata.feed import OWNER_KEY, FeedPublisher
from optix_server.marketdata.models import DataSource, InstrumentType, Quote
from optix_server.marketdata.providers.simulated import SimulatedProvider
from optix_server.marketdata.providers.universe import SimulatedInstrument
from optix_server.marketdata.streaming import (
    QuoteHub,
    QuoteSubscription,
    Tick,
    tick_from_payload,
)


class CountingPubSub:
    """InMemoryPubSub that counts subscribe() calls per channel."""

    def __init__(self) -> None:
        self.inner = InMemoryPubSub()
        self.subscriptions: Counter[str] = Counter()

    async def publish(self, channel: str, payload: bytes) -> None:
        await self.inner.publish(channel, payload)

    async def publish_many(self, messages: Sequence[tuple[str, bytes]]) -> None:
        await self.inner.publish_many(messages)

    def subscribe(self, channel: str) -> AbstractAsyncContextManager[AsyncIterator[bytes]]:
        self.subscriptions[channel] += 1
        return self.inner.subscribe(channel)

    async def close(self) -> None:
        await self.inner.close()


def quote(symbol: str, sequence: int, last: float = 100.0) -> Quote:
    return Quote(
        symbol=symbol,
        instrument_type=InstrumentType.EQUITY,
        bid=last - 0.01,
        ask=last + 0.01,
        last=last,
        bid_size=1,
        ask_size=1,
        volume=sequence,
        open=100.0,
        high=max(100.0, last),
        low=min(100.0, last),
        previous_close=99.0,
        quote_time=datetime.now(UTC),
        source=DataSource.SIMULATED,
        sequence=sequence,
    )


async def no_snapshot(symbols: Sequence[str]) -> dict[str, bytes]:
    return {}


async def test_many_clients_one_upstream_subscription_and_a_stalled_client() -> None:
    pubsub = CountingPubSub()
    shutdown = asyncio.Event()
    hub = QuoteHub(pubsub, no_snapshot, shutdown)
    await hub.start()
    symbols = ["AAPL", "MSFT", "SPY"]
    clients = 200
    ticks = 30
    received: list[dict[str, list[int]]] = [{s: [] for s in symbols} for _ in range(clients)]
    progress = [0] * clients
    caught_up = asyncio.Event()
    target = [0]

    async def reader(i: int, sub: QuoteSubscription) -> None:
        while True:
            for tick in await sub.next_batch():
                received[i][tick.symbol].append(tick.sequence)
            progress[i] = min(max(v, default=0) for v in received[i].values())
            if all(p >= target[0] for p in progress):
                caught_up.set()

    async with AsyncExitStack() as stack:
        subs = [await stack.enter_async_context(hub.subscribe(symbols)) for _ in range(clients)]
        stalled = await stack.enter_async_context(hub.subscribe(symbols))  # never read
        readers = [asyncio.create_task(reader(i, s)) for i, s in enumerate(subs)]
        # One shared upstream subscription per symbol, however many streams.
        assert hub.symbol_count == 3
        assert all(pubsub.subscriptions[quote_channel(s)] == 1 for s in symbols)
        for seq in range(1, ticks + 1):
            target[0] = seq
            caught_up.clear()
            for s in symbols:
                await pubsub.publish(quote_channel(s), encode_quote(quote(s, seq)))
            await asyncio.wait_for(caught_up.wait(), 10)
        for task in readers:
            task.cancel()
        # Every reading client saw every tick, in order, despite the stalled one.
        for per_client in received:
            for s in symbols:
                assert per_client[s] == list(range(1, ticks + 1))
        # The stalled client holds only the newest tick per symbol: memory stays bounded.
        assert stalled.pending == len(symbols)
        assert stalled.conflated == len(symbols) * (ticks - 1)
        batch = await stalled.next_batch()
        assert sorted((t.symbol, t.sequence) for t in batch) == [(s, ticks) for s in symbols]
    # Last listener gone: upstream subscriptions are dropped.
    assert hub.symbol_count == 0 and hub.stream_count == 0
    await hub.stop()


async def test_batches_collect_several_symbols() -> None:
    pubsub = InMemoryPubSub()
    hub = QuoteHub(pubsub, no_snapshot, asyncio.Event())
    async with hub.subscribe(["A", "B", "C"]) as sub:
        for s in ("A", "B", "C"):
            await pubsub.publish(quote_channel(s), encode_quote(quote(s, 1)))
        # All three arrived before the client woke: one message carries all of them.
        batch: list[Tick] = await sub.next_batch()
        assert {t.symbol for t in batch} == {"A", "B", "C"}


async def test_older_and_duplicate_ticks_are_dropped() -> None:
    pubsub = InMemoryPubSub()

    async def snapshot(symbols: Sequence[str]) -> dict[str, bytes]:
        return {"AAPL": encode_quote(quote("AAPL", 5))}

    hub = QuoteHub(pubsub, snapshot, asyncio.Event())
    async with hub.subscribe(["AAPL"]) as sub:
        assert [t.sequence for t in await sub.next_batch()] == [5]  # the snapshot
        for seq in (4, 5, 6, 6, 3, 7):
            await pubsub.publish(quote_channel("AAPL"), encode_quote(quote("AAPL", seq)))
        seen: list[int] = []
        while not seen or seen[-1] < 7:
            seen += [t.sequence for t in await sub.next_batch()]
        assert seen == sorted(set(seen)) and seen[-1] == 7 and 4 not in seen and 3 not in seen


async def test_heartbeat_when_idle_and_unavailable_on_shutdown() -> None:
    shutdown = asyncio.Event()
    hub = QuoteHub(InMemoryPubSub(), no_snapshot, shutdown)
    await hub.start()
    async with hub.subscribe(["AAPL"], heartbeat_seconds=0.01) as sub:
        assert await sub.next_batch() == []  # nothing happened: a heartbeat is due
        sub.heartbeat_seconds = 3600
        waiting = asyncio.create_task(sub.next_batch())
        await asyncio.sleep(0)
        shutdown.set()
        with pytest.raises(Unavailable):
            await asyncio.wait_for(waiting, 10)
    with pytest.raises(Unavailable):
        async with hub.subscribe(["AAPL"]):
            pass
    await hub.stop()


def fast_simulated_provider(*symbols: str) -> SimulatedProvider:
    """A simulated market of `symbols` ticking 50 times a second."""
    return SimulatedProvider(
        [SimulatedInstrument(s, 190.0, 0.3) for s in symbols],
        seed=3,
        tick_rate=50,
        risk_free_rate=0.04,
        dividend_yields={},
    )


async def test_end_to_end_with_feed_owner_and_simulated_provider() -> None:
    pubsub, cache = InMemoryPubSub(), InMemoryCache()
    provider = fast_simulated_provider("AAPL")
    publisher = FeedPublisher(provider, pubsub, cache, lease_seconds=15, cache_ttl=5)
    await publisher.start()
    hub = QuoteHub(pubsub, no_snapshot, asyncio.Event())
    await hub.start()
    try:
        async with hub.subscribe(["AAPL"]) as sub:
            seen: list[int] = []
            while len(seen) < 5:
                seen += [t.sequence for t in await sub.next_batch()]
            assert seen == sorted(seen)
            # Demand reached the owner through pub/sub, and ticks refresh the quote cache.
            assert publisher.symbols == {"AAPL"}
            cached = await cache.get("marketdata:quote:AAPL")
            assert cached is not None and decode_quote(cached).sequence >= seen[0]
    finally:
        await hub.stop()
        await publisher.stop()


class BurstRecordingPubSub(CountingPubSub):
    """Records the quote channels of every publish_many burst."""

    def __init__(self) -> None:
        super().__init__()
        self.bursts: list[list[str]] = []

    async def publish_many(self, messages: Sequence[tuple[str, bytes]]) -> None:
        self.bursts.append([c for c, _ in messages if c.startswith(quote_channel(""))])
        await super().publish_many(messages)


async def test_a_tick_of_every_symbol_is_published_as_one_burst() -> None:
    # Other replicas receive a tick of many symbols at once and send each stream one message
    # for it, not one per symbol; the cache gets every quote too.
    symbols = ["AAPL", "MSFT", "SPY"]
    pubsub, cache = BurstRecordingPubSub(), InMemoryCache()
    provider = fast_simulated_provider(*symbols)
    publisher = FeedPublisher(provider, pubsub, cache, lease_seconds=15, cache_ttl=5)
    await publisher.start()
    try:
        async with pubsub.subscribe(quote_channel("SPY")) as spy_ticks:
            publisher.demand(symbols)
            for _ in range(5):
                await asyncio.wait_for(anext(spy_ticks), 10)
        bursts = [b for b in pubsub.bursts if b]
        assert len(bursts) >= 5
        assert all(sorted(b) == sorted(quote_channel(s) for s in symbols) for b in bursts)
        assert publisher.published == 3 * len(bursts)
        for symbol in symbols:
            assert await cache.get(f"marketdata:quote:{symbol}") is not None
    finally:
        await publisher.stop()


def aapl_feed(
    pubsub: InMemoryPubSub, cache: InMemoryCache, *, owner_lease_seconds: float
) -> FeedPublisher:
    """A replica's feed publisher for AAPL on a fast simulated market, sharing `pubsub` and
    `cache` (what Redis gives replicas)."""
    return FeedPublisher(
        fast_simulated_provider("AAPL"),
        pubsub,
        cache,
        lease_seconds=15,
        cache_ttl=5,
        owner_lease_seconds=owner_lease_seconds,
    )


async def test_replicas_elect_one_feed_owner_and_hand_over_when_it_stops() -> None:
    # Two replicas on one cache and pub/sub (what Redis gives them): one ticks, and when it
    # stops, the other takes over rather than the feed going quiet.
    pubsub, cache = InMemoryPubSub(), InMemoryCache()
    replicas = [aapl_feed(pubsub, cache, owner_lease_seconds=0.3) for _ in range(2)]
    first, second = replicas
    for replica in replicas:
        await replica.start()
        replica.demand(["AAPL"])
    try:
        assert first.owns_feed and not second.owns_feed
        async with pubsub.subscribe(quote_channel("AAPL")) as ticks:
            await asyncio.wait_for(anext(ticks), 10)
            await first.stop()
            assert not first.owns_feed
            # Only the second replica can publish now; the guard turns a hang into a failure.
            async with asyncio.timeout(10):
                async for _ in ticks:
                    if second.owns_feed:
                        break
            tick = tick_from_payload(await asyncio.wait_for(anext(ticks), 10))
            assert tick.symbol == "AAPL"
    finally:
        for replica in replicas:
            await replica.stop()


async def test_a_graceful_hand_over_is_announced_and_sequences_continue() -> None:
    # A lease far longer than the test: only the release announcement explains a quick
    # takeover. The second replica's market starts its sequences afresh (lower than those
    # already published), yet streams must see them keep growing.
    pubsub, cache = InMemoryPubSub(), InMemoryCache()
    first = aapl_feed(pubsub, cache, owner_lease_seconds=120)
    await first.start()
    first.demand(["AAPL"])
    second: FeedPublisher | None = None
    try:
        async with pubsub.subscribe(quote_channel("AAPL")) as ticks:
            seen = [tick_from_payload(await asyncio.wait_for(anext(ticks), 10)).sequence]
            while len(seen) < 20:
                seen.append(tick_from_payload(await asyncio.wait_for(anext(ticks), 10)).sequence)
            second = aapl_feed(pubsub, cache, owner_lease_seconds=120)
            await second.start()
            second.demand(["AAPL"])
            assert first.owns_feed and not second.owns_feed
            await first.stop()
            # Well within the 20 s a non-owner waits between looks.
            async with asyncio.timeout(10):
                async for payload in ticks:
                    seen.append(tick_from_payload(payload).sequence)
                    if second.owns_feed and len(seen) >= 40:
                        break
        assert all(b > a for a, b in itertools.pairwise(seen)), seen
    finally:
        await first.stop()
        if second is not None:
            await second.stop()


async def test_a_vanished_owner_is_replaced_when_its_hold_ends_not_at_the_next_poll() -> None:
    # A replica that died holds the key until it expires (it announced nothing). With a 120 s
    # lease a non-owner looks only every 20 s: taking over within 10 s means it woke at the
    # hold's end.
    pubsub, cache = InMemoryPubSub(), InMemoryCache()
    assert await cache.hold(OWNER_KEY, "a replica that died", 0.5)
    survivor = aapl_feed(pubsub, cache, owner_lease_seconds=120)
    await survivor.start()
    survivor.demand(["AAPL"])
    try:
        assert not survivor.owns_feed
        async with pubsub.subscribe(quote_channel("AAPL")) as ticks:
            tick = tick_from_payload(await asyncio.wait_for(anext(ticks), 10))
        assert tick.symbol == "AAPL" and survivor.owns_feed
        # Its own hold is shorter than the lease, so its own death is covered in time too.
        left = await cache.ttl(OWNER_KEY)
        assert left is not None and left <= 120 * 0.75
    finally:
        await survivor.stop()


class EndingPubSub(CountingPubSub):
    """A pub/sub whose quote subscriptions deliver `first`, then end once `end` is set."""

    def __init__(self, first: bytes) -> None:
        super().__init__()
        self.first = first
        self.end = asyncio.Event()

    def subscribe(self, channel: str) -> AbstractAsyncContextManager[AsyncIterator[bytes]]:
        @contextlib.asynccontextmanager
        async def ending() -> AsyncIterator[AsyncIterator[bytes]]:
            async def messages() -> AsyncIterator[bytes]:
                yield self.first
                await self.end.wait()

            yield messages()

        return ending()


async def test_an_interrupted_feed_ends_its_streams_with_a_reconnect_hint() -> None:
    pubsub = EndingPubSub(encode_quote(quote("AAPL", 1)))
    hub = QuoteHub(pubsub, no_snapshot, asyncio.Event())
    async with hub.subscribe(["AAPL"]) as sub:
        assert [t.sequence for t in await asyncio.wait_for(sub.next_batch(), 10)] == [1]
        pubsub.end.set()
        with pytest.raises(Unavailable) as ended:
            await asyncio.wait_for(sub.next_batch(), 10)
    assert ended.value.reason == "FEED_INTERRUPTED"
    assert "reconnect" in ended.value.message
