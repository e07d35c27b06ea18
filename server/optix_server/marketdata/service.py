"""Market data domain logic: cached quotes, priced chains, expirations and price history.

Knows nothing of gRPC: takes plain values, returns domain values, raises infra errors.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, date, datetime
from typing import TypeVar

from optix_server.common.exchange_calendar import ExchangeCalendar, us_options_calendar
from optix_server.common.symbol_fields import symbol_field, symbol_list, ticker_field
from optix_server.infra.cache import Cache
from optix_server.infra.errors import NotFound, Unavailable, ViolationCollector
from optix_server.infra.logging import get_logger
from optix_server.marketdata.config import MarketDataSettings
from optix_server.marketdata.convert import decode_quote, encode_quote
from optix_server.marketdata.models import (
    BarInterval,
    ChainFilter,
    ContractSide,
    Expiration,
    InstrumentType,
    PriceHistory,
    Quote,
)
from optix_server.marketdata.priced_chain import ChainPricer
from optix_server.marketdata.pricing.chain import analyze_chain
from optix_server.marketdata.providers.base import (
    MarketDataProvider,
    ProviderError,
    UnknownSymbolError,
)
from optix_server.marketdata.quote_analytics import QuoteAnalyst, option_roots
from optix_server.marketdata.shared_chain import ChainSelection, SharedChain, build_shared_chain
from optix_server.marketdata.timeconv import trading_date
from optix_server.marketdata.update_cache import UpdateCache
from optix_server.marketdata.validation import optional_positive

T = TypeVar("T")

MAX_BATCH_SYMBOLS = 500
MAX_HISTORY_BARS = 10_000
# Chains bigger than this are priced and encoded in a worker thread so the event loop keeps
# serving.
THREAD_THRESHOLD = 200
# Listed expirations kept per underlying (a few dozen dates each): ample for any universe.
EXPIRATIONS_CACHE_BYTES = 4 * 1024 * 1024
MIN_HEARTBEAT, MAX_HEARTBEAT, DEFAULT_HEARTBEAT = 1.0, 60.0, 15.0

log = get_logger(__name__)


def quote_cache_key(symbol: str) -> str:
    """Where a symbol's latest quote lives in the cache."""
    return f"marketdata:quote:{symbol}"


class MarketDataService:
    """Quotes (cached with a short TTL), chains with IV and Greeks, expirations and history."""

    def __init__(
        self,
        provider: MarketDataProvider,
        cache: Cache,
        settings: MarketDataSettings,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        pricer: ChainPricer = analyze_chain,
        market_calendar: ExchangeCalendar | None = None,
    ) -> None:
        self._provider = provider
        self._cache = cache
        self._settings = settings
        self._analyst = QuoteAnalyst(settings)
        self._now = now
        self._pricer = pricer
        # Whether an expiration still trades at an instant (until its last session's close).
        self._listed = (market_calendar or us_options_calendar()).is_listed
        # Priced once per underlying per market update, shared by that update's requests.
        self.chains: UpdateCache[SharedChain] = UpdateCache(
            settings.chain_cache_bytes, lambda chain: chain.nbytes
        )
        self.expirations: UpdateCache[list[Expiration]] = UpdateCache(
            EXPIRATIONS_CACHE_BYTES, lambda listed: 64 * (len(listed) + 1)
        )

    async def _upstream(self, call: Awaitable[T], what: str) -> T:
        try:
            return await call
        except UnknownSymbolError as exc:
            raise NotFound(str(exc) or f"{what} not found", resource_type="symbol") from exc
        except ProviderError as exc:
            # The provider's own text (URLs, upstream errors) is for operators, not clients.
            log.warning("market data provider failed", operation=what, error=str(exc))
            raise Unavailable(
                "market data source unavailable; retry shortly", reason="MARKET_DATA_UNAVAILABLE"
            ) from exc

    async def _fetch(self, symbols: Sequence[str], *, store: bool = True) -> dict[str, Quote]:
        # Option quotes are priced against their underlying's quote from the same request.
        underlyings = option_roots(symbols) - set(symbols)
        quotes = await self._upstream(
            self._provider.get_quotes([*symbols, *sorted(underlyings)]), "quotes"
        )
        quotes = self._analyst.price(quotes, {})
        ttl = self._settings.quote_cache_ttl
        if store and ttl > 0 and quotes:
            await asyncio.gather(
                *(
                    self._cache.set(quote_cache_key(s), encode_quote(q), ttl)
                    for s, q in quotes.items()
                )
            )
        return {s: q for s, q in quotes.items() if s not in underlyings}

    async def get_quote(self, symbol: str) -> Quote:
        """The latest quote for a ticker or OCC symbol; NotFound when the source has none."""
        errors = ViolationCollector()
        normalized = symbol_field(errors, "symbol", symbol)
        errors.raise_if_any()
        cached = await self._cache.get(quote_cache_key(normalized))
        if cached is not None:
            return decode_quote(cached)
        quote = (await self._fetch([normalized])).get(normalized)
        if quote is None:
            raise NotFound(
                f"no quote for {normalized!r}", resource_type="symbol", resource_name=normalized
            )
        return quote

    async def batch_get_quotes(self, symbols: Sequence[str]) -> tuple[list[Quote], list[str]]:
        """Quotes found, in request order, and the normalised symbols that have none."""
        errors = ViolationCollector()
        wanted = symbol_list(errors, "symbols", symbols, MAX_BATCH_SYMBOLS)
        errors.raise_if_any()
        cached = await self._cache.get_many([quote_cache_key(s) for s in wanted])
        found = {s: decode_quote(c) for s, c in zip(wanted, cached, strict=True) if c is not None}
        misses = [s for s in wanted if s not in found]
        if misses:
            found.update(await self._fetch(misses))
        return [found[s] for s in wanted if s in found], [s for s in wanted if s not in found]

    async def list_expirations(self, underlying: str) -> tuple[list[Expiration], date]:
        """Listed expirations, soonest first, and the date days-to-expiration count from."""
        errors = ViolationCollector()
        ticker = ticker_field(errors, "underlying", underlying)
        errors.raise_if_any()
        expirations = await self.expirations.get(
            ticker,
            self._provider.market_version(ticker),
            lambda: self._upstream(self._provider.list_expirations(ticker), ticker),
        )
        now = self._now()
        # Listed until the close of the last session (13:00 on an early-close day).
        listed = (e for e in expirations if self._listed(e.date, now))
        return sorted(listed, key=lambda e: e.date), trading_date(now)

    async def get_options_chain(
        self,
        underlying: str,
        *,
        expiration_start: date | None,
        expiration_end: date | None,
        strike_min: float,
        strike_max: float,
        strike_count: int,
        side: ContractSide | None,
        invalid_dates: Sequence[tuple[str, str]] = (),
    ) -> ChainSelection:
        """The chain for the filters, every contract with IV and Greeks from its mark: a slice
        of the whole chain priced once per market update; INVALID_ARGUMENT when the filters
        select more than the configured maximum of contracts (none is an empty chain)."""
        errors = ViolationCollector()
        for field, why in invalid_dates:
            errors.add(field, why)
        ticker = ticker_field(errors, "underlying", underlying)
        lo = optional_positive(errors, "strike_min", strike_min)
        hi = optional_positive(errors, "strike_max", strike_max)
        if lo is not None and hi is not None and hi < lo:
            errors.add("strike_max", "must not be below strike_min")
        if expiration_start and expiration_end and expiration_end < expiration_start:
            errors.add("expiration_end", "must not be before expiration_start")
        if strike_count < 0:
            errors.add("strike_count", "must be >= 0")
        if side is None:
            errors.add("side", "unknown contract side")
        errors.raise_if_any()
        chain_filter = ChainFilter(
            expiration_start, expiration_end, lo, hi, strike_count, side or ContractSide.BOTH
        )
        shared = await self.chains.get(
            ticker, self._provider.market_version(ticker), lambda: self._build_chain(ticker)
        )
        index = shared.priced.select(chain_filter)
        limit = self._settings.max_chain_contracts
        if index.size > limit:
            errors.add(
                "expiration_end",
                f"the filters select {index.size} contracts, more than the {limit} one response "
                "carries: narrow the expiration window (or the strikes or side)",
            )
            errors.raise_if_any()
        return ChainSelection(shared, index)

    async def _build_chain(self, ticker: str) -> SharedChain:
        """The whole chain of `ticker` at the provider's current update, priced and encoded."""
        started = time.perf_counter()
        raw = await self._upstream(self._provider.get_chain(ticker, None, None), ticker)
        build = functools.partial(
            build_shared_chain,
            raw,
            self._settings.risk_free_rate,
            self._settings.dividend_yield(raw.underlying),
            self._pricer,
            self.chains.peek(ticker),
            time.perf_counter() - started,
            # As ListExpirations, but at the instant the prices are for: a contract whose last
            # session closed by then is not in the chain.
            self._listed,
        )
        if len(raw.contracts) > THREAD_THRESHOLD:
            return await asyncio.to_thread(build)
        return build()

    async def get_price_history(
        self,
        symbol: str,
        interval: BarInterval | None,
        start: datetime | None,
        end: datetime | None,
        invalid_times: Sequence[tuple[str, str]] = (),
    ) -> PriceHistory:
        """OHLCV bars starting in [start, end); end defaults to (and is capped at) now."""
        errors = ViolationCollector()
        for field, why in invalid_times:
            errors.add(field, why)
        ticker = ticker_field(errors, "symbol", symbol)
        now = self._now()
        if interval is None:
            errors.add("interval", "a bar interval is required")
        if start is None and not any(field == "start_time" for field, _ in invalid_times):
            errors.add("start_time", "is required")
        end = min(end, now) if end is not None else now
        if start is not None and start >= end:
            errors.add("end_time", "must be after start_time (and start_time before now)")
        if start is not None and interval is not None and start < end:
            bars = (end - start).total_seconds() / interval.value
            if bars > MAX_HISTORY_BARS:
                errors.add(
                    "start_time",
                    f"the range holds {int(bars)} bars of this interval; "
                    f"at most {MAX_HISTORY_BARS}",
                )
        errors.raise_if_any()
        assert interval is not None and start is not None  # guaranteed by the checks above
        bars_list = await self._upstream(
            self._provider.get_price_history(ticker, interval, start, end), ticker
        )
        kind = InstrumentType.INDEX if ticker.startswith("$") else InstrumentType.EQUITY
        return PriceHistory(ticker, interval, bars_list, self._provider.source, kind)

    def validate_stream(
        self, symbols: Sequence[str], heartbeat_seconds: float | None
    ) -> tuple[list[str], float]:
        """Normalised stream symbols (1 to the per-stream limit) and the heartbeat interval."""
        errors = ViolationCollector()
        wanted = symbol_list(errors, "symbols", symbols, self._settings.max_stream_symbols)
        heartbeat = DEFAULT_HEARTBEAT
        if heartbeat_seconds is not None:
            if not MIN_HEARTBEAT <= heartbeat_seconds <= MAX_HEARTBEAT:
                errors.add("heartbeat_interval", "must be between 1 s and 60 s")
            heartbeat = heartbeat_seconds
        errors.raise_if_any()
        return wanted, heartbeat

    async def cached_quotes(self, symbols: Sequence[str]) -> dict[str, bytes]:
        """Encoded latest quotes for symbols (cache first, then the source): stream snapshots."""
        cached = await self._cache.get_many([quote_cache_key(s) for s in symbols])
        found = {s: c for s, c in zip(symbols, cached, strict=True) if c is not None}
        misses = [s for s in symbols if s not in found]
        if misses:
            try:
                # Not stored: the feed owner is about to write fresher ticks for these symbols.
                fetched = await self._fetch(misses, store=False)
            except (Unavailable, NotFound):
                # A snapshot is a courtesy: live ticks still follow when the source recovers.
                fetched = {}
            found.update({s: encode_quote(q) for s, q in fetched.items()})
        return found
