"""The alert monitor's quote feed reads the market data topic the way another replica does:
a subscription per watched symbol, newer sequences only, and the demand that keeps the feed
owner ticking its symbols, said at once and renewed."""

from __future__ import annotations

import asyncio

from optix.marketdata.v1 import quote_pb2
from optix_server.alert.quote_feed import QuoteFeed
from optix_server.common.quote_topic import DEMAND_CHANNEL, demanded_symbols, quote_channel
from optix_server.infra.pubsub import InMemoryPubSub

WAIT = 10.0


def tick(symbol: str, sequence: int, last: float) -> bytes:
    """An encoded quote as the feed owner publishes it."""
    return quote_pb2.Quote(symbol=symbol, sequence=sequence, last=last).SerializeToString()


async def test_quotes_of_watched_symbols_arrive_in_sequence_order_only() -> None:
    pubsub = InMemoryPubSub()
    seen: list[tuple[str, int]] = []
    arrived = asyncio.Event()

    def on_quote(quote: quote_pb2.Quote) -> None:
        seen.append((quote.symbol, quote.sequence))
        arrived.set()

    feed = QuoteFeed(pubsub, on_quote)
    try:
        feed.watch({"SPY", "AAPL"})
        async with asyncio.timeout(WAIT):
            await feed.until_listening()
        for sequence in (1, 3, 2, 3, 4):  # a late and a duplicate tick
            await pubsub.publish(quote_channel("SPY"), tick("SPY", sequence, 500.0))
        await pubsub.publish(quote_channel("MSFT"), tick("MSFT", 1, 400.0))  # not watched
        await pubsub.publish(quote_channel("AAPL"), tick("AAPL", 7, 200.0))
        async with asyncio.timeout(WAIT):
            while ("AAPL", 7) not in seen:
                arrived.clear()
                await arrived.wait()
        assert [s for s in seen if s[0] == "SPY"] == [("SPY", 1), ("SPY", 3), ("SPY", 4)]
        assert all(symbol != "MSFT" for symbol, _ in seen)
        # An unwatched symbol's subscription ends; the rest keep theirs.
        feed.watch({"AAPL"})
        assert feed.symbols == {"AAPL"}
        await pubsub.publish(quote_channel("SPY"), tick("SPY", 9, 501.0))
        await pubsub.publish(quote_channel("AAPL"), tick("AAPL", 8, 201.0))
        async with asyncio.timeout(WAIT):
            while ("AAPL", 8) not in seen:
                arrived.clear()
                await arrived.wait()
        assert ("SPY", 9) not in seen
    finally:
        await feed.stop()


async def test_demand_is_said_for_new_symbols_at_once_and_renewed_for_all() -> None:
    pubsub = InMemoryPubSub()
    async with pubsub.subscribe(DEMAND_CHANNEL) as demands:
        # A short lease, so renewals come quickly.
        feed = QuoteFeed(pubsub, lambda quote: None, lease_seconds=0.06)
        try:
            feed.watch({"SPY"})
            stream = aiter(demands)
            async with asyncio.timeout(WAIT):
                assert demanded_symbols(await anext(stream)) == ["SPY"]
                feed.watch({"SPY", "QQQ"})
                assert demanded_symbols(await anext(stream)) == ["QQQ"]
                # Renewals name every watched symbol.
                while demanded_symbols(await anext(stream)) != ["QQQ", "SPY"]:
                    pass
        finally:
            await feed.stop()
