"""The feed owner: runs the provider's live feed for every symbol some replica streams, and
publishes each tick to the cache (fresh GetQuote) and to the symbol's pub/sub channel."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from optix_server.infra.cache import Cache
from optix_server.infra.logging import get_logger
from optix_server.infra.pubsub import PubSub
from optix_server.marketdata.convert import encode_quote
from optix_server.marketdata.models import Quote
from optix_server.marketdata.providers.base import MarketDataProvider
from optix_server.marketdata.service import quote_cache_key
from optix_server.marketdata.streaming import DEMAND_CHANNEL, quote_channel

log = get_logger(__name__)

RESTART_DELAY = 1.0


class FeedPublisher:
    """Keeps one upstream subscription per demanded symbol and publishes its ticks."""

    def __init__(
        self,
        provider: MarketDataProvider,
        pubsub: PubSub,
        cache: Cache,
        *,
        lease_seconds: float,
        cache_ttl: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._provider = provider
        self._pubsub = pubsub
        self._cache = cache
        self._lease = lease_seconds
        self._cache_ttl = cache_ttl
        self._clock = clock
        self._leases: dict[str, float] = {}
        # The live set the provider's feed reads on every tick.
        self.symbols: set[str] = set()
        self.published = 0
        self._tasks: list[asyncio.Task[None]] = []
        self._listening = asyncio.Event()

    async def start(self) -> None:
        """Listen for demand and run the provider's feed."""
        self._tasks = [
            asyncio.create_task(self._listen_demand(), name="marketdata-demand-listener"),
            asyncio.create_task(self._run_feed(), name="marketdata-feed"),
            asyncio.create_task(self._expire_leases(), name="marketdata-leases"),
        ]
        async with asyncio.timeout(10):
            await self._listening.wait()

    async def stop(self) -> None:
        """Stop the feed."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    def demand(self, symbols: list[str]) -> None:
        """Renew the lease of `symbols` (starting their upstream subscription if new)."""
        expires = self._clock() + self._lease
        for symbol in symbols:
            self._leases[symbol] = expires
            self.symbols.add(symbol)

    async def _listen_demand(self) -> None:
        # Resubscribes after a failure: without demand the feed would starve for good.
        while True:
            try:
                async with self._pubsub.subscribe(DEMAND_CHANNEL) as messages:
                    self._listening.set()
                    async for payload in messages:
                        self.demand([s for s in payload.decode().split("\n") if s])
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("demand subscription failed; resubscribing", error=str(exc))
            await asyncio.sleep(RESTART_DELAY)

    async def _expire_leases(self) -> None:
        while True:
            await asyncio.sleep(self._lease / 3)
            now = self._clock()
            for symbol, expires in list(self._leases.items()):
                if expires <= now:
                    del self._leases[symbol]
                    self.symbols.discard(symbol)

    async def _publish(self, quote: Quote) -> None:
        payload = encode_quote(quote)
        if self._cache_ttl > 0:
            await self._cache.set(quote_cache_key(quote.symbol), payload, self._cache_ttl)
        await self._pubsub.publish(quote_channel(quote.symbol), payload)
        self.published += 1

    async def _run_feed(self) -> None:
        # The feed survives upstream failures: log, wait, resubscribe.
        while True:
            try:
                await self._provider.run_feed(self.symbols, self._publish)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("market data feed failed; restarting", error=str(exc))
            await asyncio.sleep(RESTART_DELAY)
