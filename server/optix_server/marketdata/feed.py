"""The feed owner: runs the provider's live feed for every symbol some replica streams, and
publishes each tick to the cache (fresh GetQuote) and to the symbol's pub/sub channel.

Every replica allowed to own the feed runs a FeedPublisher; they elect one owner through a
lease held in the cache (Redis when replicas share one). Only the owner polls the provider, so
replicas never multiply upstream requests (Schwab allows 120 a minute); when it stops it lets
the lease go, and when it vanishes its hold expires, so another replica takes over within one
lease."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Callable

from optix_server.common.quote_topic import DEMAND_CHANNEL, demanded_symbols, quote_channel
from optix_server.infra.cache import Cache
from optix_server.infra.logging import get_logger
from optix_server.infra.pubsub import PubSub, listen_resubscribing
from optix_server.marketdata.config import MarketDataSettings
from optix_server.marketdata.convert import encode_quote
from optix_server.marketdata.models import InstrumentType, Quote
from optix_server.marketdata.providers.base import MarketDataProvider
from optix_server.marketdata.quote_analytics import QuoteAnalyst, option_roots
from optix_server.marketdata.sequences import SEQUENCE_TTL_SECONDS, SequenceContinuity
from optix_server.marketdata.service import quote_cache_key

log = get_logger(__name__)

RESTART_DELAY = 1.0
OWNER_KEY = "marketdata.feed-owner"
DEFAULT_OWNER_LEASE_SECONDS = 2.4
# Announced by an owner that let the feed go, so the others take over without waiting.
RELEASED_CHANNEL = "marketdata.feed.released"
# The owner holds the key for three quarters of the lease and renews it every quarter (two
# renewals may fail before it lapses); the others wake when the hold ends. So even an owner that
# vanished just after renewing is replaced within the lease, its last quarter left for the new
# owner's first tick.
HOLD_FRACTION = 0.75
RENEW_FRACTION = 0.25
# A non-owner also looks this often (a sixth of the lease), and never sooner than this after
# its last look, whatever the hold's remaining time says.
POLL_FRACTION = 1 / 6
MIN_POLL_SECONDS = 0.01


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
        owner_lease_seconds: float = DEFAULT_OWNER_LEASE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        analyst: QuoteAnalyst | None = None,
    ) -> None:
        self._provider = provider
        self._pubsub = pubsub
        self._cache = cache
        self._lease = lease_seconds
        self._cache_ttl = cache_ttl
        self._clock = clock
        self._analyst = analyst or QuoteAnalyst(MarketDataSettings())
        # The newest mark of every ticking non-option symbol: what option ticks are priced
        # against (an option's underlying ticks too, see demand()).
        self._marks: dict[str, float] = {}
        self._leases: dict[str, float] = {}
        # The live set the provider's feed reads on every tick.
        self.symbols: set[str] = set()
        self.published = 0
        self._tasks: list[asyncio.Task[None]] = []
        self._listening = asyncio.Event()
        self._owner_id = uuid.uuid4().hex
        self._owner_lease = owner_lease_seconds
        self._feed: asyncio.Task[None] | None = None
        # Quotes waiting to be published, newest per symbol, and the task sending them.
        self._outbox: dict[str, Quote] = {}
        self._sender: asyncio.Task[None] | None = None
        self._sequences = SequenceContinuity(cache)
        # Set when another replica announces it let the feed go: contend now, not at the next
        # poll (a graceful hand-over misses at most a tick).
        self._released = asyncio.Event()

    @property
    def owns_feed(self) -> bool:
        """Whether this replica currently runs the feed."""
        return self._feed is not None

    async def start(self) -> None:
        """Listen for demand (even while another replica owns the feed, so a takeover knows
        what to tick) and run the feed whenever this replica holds the ownership lease."""
        released_listening = asyncio.Event()
        self._tasks = [
            asyncio.create_task(self._listen_demand(), name="marketdata-demand-listener"),
            asyncio.create_task(self._expire_leases(), name="marketdata-leases"),
            asyncio.create_task(
                listen_resubscribing(
                    self._pubsub,
                    RELEASED_CHANNEL,
                    lambda _payload: self._released.set(),
                    released_listening,
                    retry_delay=RESTART_DELAY,
                ),
                name="marketdata-feed-released",
            ),
        ]
        async with asyncio.timeout(10):
            await self._listening.wait()
            await released_listening.wait()
        await self._contend()  # a lone replica starts its feed before start() returns
        self._tasks.append(asyncio.create_task(self._hold_ownership(), name="marketdata-owner"))

    async def stop(self) -> None:
        """Stop the feed and let the ownership go at once (another replica takes over)."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        if self._feed is not None:
            await self._stop_feed()
            with contextlib.suppress(Exception):  # unreachable: the lease expires on its own
                await self._cache.let_go(OWNER_KEY, self._owner_id)
                # The others contend at once instead of at their next poll.
                await self._pubsub.publish(RELEASED_CHANNEL, self._owner_id.encode())

    async def _hold_ownership(self) -> None:
        while True:
            wait = await self._until_next_contention()
            self._released.clear()
            # asyncio.wait, not asyncio.timeout: on Python 3.11 a timeout firing as stop()
            # cancels this task can swallow the cancellation, and stop() would wait forever.
            released = asyncio.ensure_future(self._released.wait())
            try:
                await asyncio.wait({released}, timeout=wait)
            finally:
                released.cancel()
            await self._contend()

    async def _until_next_contention(self) -> float:
        # The owner renews on a fixed beat; the others wake when the owner's hold ends.
        if self._feed is not None:
            return self._owner_lease * RENEW_FRACTION
        poll = self._owner_lease * POLL_FRACTION
        try:
            left = await self._cache.ttl(OWNER_KEY)
        except Exception:  # the cache is away: contending will say so
            return poll
        if left is None:  # released or lapsed since we last looked
            return MIN_POLL_SECONDS
        return max(MIN_POLL_SECONDS, min(poll, left + MIN_POLL_SECONDS))

    async def _contend(self) -> None:
        try:
            hold = self._owner_lease * HOLD_FRACTION
            owner = await self._cache.hold(OWNER_KEY, self._owner_id, hold)
        except Exception as exc:
            # Unable to renew, another replica may take over once the lease runs out: stop
            # rather than risk two feeds.
            log.warning("could not renew the market data feed lease", error=str(exc))
            owner = False
        if owner and self._feed is None:
            log.info("this replica now runs the market data feed")
            self._feed = asyncio.create_task(self._run_feed(), name="marketdata-feed")
        elif not owner and self._feed is not None:
            log.info("another replica runs the market data feed")
            await self._stop_feed()

    async def _stop_feed(self) -> None:
        self._sequences.reset()
        feed, self._feed = self._feed, None
        sender, self._sender = self._sender, None
        tasks = [t for t in (feed, sender) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._outbox.clear()

    def demand(self, symbols: list[str]) -> None:
        """Renew the lease of `symbols` (starting their upstream subscription if new), and of
        the underlyings of the options among them (their ticks price the options')."""
        expires = self._clock() + self._lease
        for symbol in [*symbols, *option_roots(symbols)]:
            self._leases[symbol] = expires
            self.symbols.add(symbol)

    async def _listen_demand(self) -> None:
        # Resubscribes after a failure: without demand the feed would starve for good.
        await listen_resubscribing(
            self._pubsub,
            DEMAND_CHANNEL,
            lambda payload: self.demand(demanded_symbols(payload)),
            self._listening,
            retry_delay=RESTART_DELAY,
        )

    async def _expire_leases(self) -> None:
        while True:
            await asyncio.sleep(self._lease / 3)
            now = self._clock()
            for symbol, expires in list(self._leases.items()):
                if expires <= now:
                    del self._leases[symbol]
                    self.symbols.discard(symbol)
                    self._marks.pop(symbol, None)

    async def _publish(self, quote: Quote) -> None:
        # The provider's sink: queue, don't wait. The quotes a provider pushes in one loop turn
        # (a tick of every symbol) leave together, so other replicas receive a tick as one
        # burst and send each stream one message for it; one round trip for all (not two a
        # quote) also keeps the feed's timing off the network. A slow cache or bus makes the
        # outbox conflate: it holds the newest quote per symbol, never more.
        self._outbox[quote.symbol] = quote
        if self._sender is None or self._sender.done():
            self._sender = asyncio.create_task(self._send_outbox(), name="marketdata-publish")

    async def _send_outbox(self) -> None:
        while self._outbox:
            quotes, self._outbox = self._outbox, {}
            try:
                quotes = await self._sequences.continued(quotes)
            except Exception as exc:
                log.warning("could not read the recorded quote sequences", error=str(exc))
                continue
            for symbol, quote in quotes.items():
                if quote.instrument_type is not InstrumentType.OPTION and quote.mark > 0:
                    self._marks[symbol] = quote.mark
            batch = {
                s: encode_quote(q) for s, q in self._analyst.price(quotes, self._marks).items()
            }
            try:
                if self._cache_ttl > 0:
                    await self._cache.set_many(
                        {quote_cache_key(s): p for s, p in batch.items()}, self._cache_ttl
                    )
                await self._cache.set_many(SequenceContinuity.records(quotes), SEQUENCE_TTL_SECONDS)
                await self._pubsub.publish_many([(quote_channel(s), p) for s, p in batch.items()])
            except Exception as exc:
                # The next tick supersedes these quotes: log, don't stop the feed.
                log.warning("could not publish quotes", symbols=len(batch), error=str(exc))
                continue
            self.published += len(batch)

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
