"""The Schwab provider: quotes, option chains, expirations and price history over HTTP, and
a live feed by polling quotes within the app's request budget."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Mapping, Sequence, Set
from datetime import date, datetime
from types import MappingProxyType
from typing import Any

import httpx

from optix_server.infra.logging import get_logger
from optix_server.infra.request_rate import SlidingWindowLimiter
from optix_server.marketdata.models import (
    BarInterval,
    DataSource,
    Expiration,
    PriceBar,
    Quote,
    RawChain,
)
from optix_server.marketdata.providers.base import ProviderError, QuoteSink, UnknownSymbolError
from optix_server.marketdata.providers.schwab_client import SchwabHttp, TokenSource
from optix_server.marketdata.providers.schwab_mapping import (
    candles_from_json,
    chain_contracts,
    expirations_from_json,
    quotes_from_json,
    underlying_from_chain,
)

__all__ = ["SchwabProvider", "TokenSource"]

log = get_logger(__name__)

MAX_SYMBOLS_PER_CALL = 500
# BarInterval -> (periodType, frequencyType, frequency, minutes per fetched candle).
_HISTORY_PARAMS: Mapping[BarInterval, tuple[str, str, int, int]] = MappingProxyType(
    {
        BarInterval.ONE_MINUTE: ("day", "minute", 1, 1),
        BarInterval.FIVE_MINUTES: ("day", "minute", 5, 5),
        BarInterval.FIFTEEN_MINUTES: ("day", "minute", 15, 15),
        BarInterval.THIRTY_MINUTES: ("day", "minute", 30, 30),
        BarInterval.ONE_HOUR: ("day", "minute", 30, 30),
        BarInterval.ONE_DAY: ("year", "daily", 1, 1440),
        BarInterval.ONE_WEEK: ("year", "weekly", 1, 10080),
    }
)


class SchwabProvider:
    """Schwab market data (https://api.schwabapi.com/marketdata/v1 by default)."""

    def __init__(
        self,
        *,
        base_url: str,
        token: TokenSource,
        requests_per_minute: int = 120,
        poll_interval: float = 2.0,
        timeout: float = 10.0,
        backoff_base: float = 0.5,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limiter = SlidingWindowLimiter(requests_per_minute, 60.0)
        self.http = SchwabHttp(
            base_url,
            token,
            self.limiter,
            timeout=timeout,
            backoff_base=backoff_base,
            transport=transport,
        )
        self._poll_interval = poll_interval
        self._clock = clock

    @property
    def source(self) -> DataSource:
        """Always SCHWAB."""
        return DataSource.SCHWAB

    async def start(self) -> None:
        """Nothing to open ahead of the first request."""

    async def close(self) -> None:
        """Close the HTTP client."""
        await self.http.close()

    async def get_quotes(self, symbols: Sequence[str]) -> dict[str, Quote]:
        """GET /quotes in chunks of up to 500 symbols."""
        found: dict[str, Quote] = {}
        for i in range(0, len(symbols), MAX_SYMBOLS_PER_CALL):
            chunk = symbols[i : i + MAX_SYMBOLS_PER_CALL]
            body = await self.http.get(
                "/quotes",
                {"symbols": ",".join(chunk), "fields": "quote,reference", "indicative": False},
            )
            found.update({s: q for s, q in quotes_from_json(body).items() if s in chunk})
        return found

    async def list_expirations(self, underlying: str) -> list[Expiration]:
        """GET /expirationchain."""
        expirations = expirations_from_json(
            await self.http.get("/expirationchain", {"symbol": underlying})
        )
        if not expirations:
            raise UnknownSymbolError(f"Schwab lists no options on {underlying}")
        return expirations

    def market_version(self, underlying: str) -> int | None:
        """The current poll interval: the live feed's update cadence, so a chain fetched in
        it is as fresh as the quotes streamed beside it (and the request budget is spared)."""
        return math.floor(self._clock() / self._poll_interval)

    async def get_chain(
        self, underlying: str, expiration_start: date | None, expiration_end: date | None
    ) -> RawChain:
        """GET /chains with the underlying quote, for the expiration range."""
        params: dict[str, str | int | float | bool] = {
            "symbol": underlying,
            "contractType": "ALL",
            "includeUnderlyingQuote": True,
            "strategy": "SINGLE",
        }
        if expiration_start:
            params["fromDate"] = expiration_start.isoformat()
        if expiration_end:
            params["toDate"] = expiration_end.isoformat()
        body: Any = await self.http.get("/chains", params)
        if not isinstance(body, dict) or body.get("status") == "FAILED":
            raise UnknownSymbolError(f"Schwab has no options chain for {underlying}")
        return RawChain(
            underlying=underlying,
            underlying_quote=underlying_from_chain(underlying, body),
            contracts=chain_contracts(underlying, body),
            source=DataSource.SCHWAB,
        )

    async def get_price_history(
        self, symbol: str, interval: BarInterval, start: datetime, end: datetime
    ) -> list[PriceBar]:
        """GET /pricehistory for [start, end); hourly bars are merged from 30-minute candles."""
        period_type, frequency_type, frequency, minutes = _HISTORY_PARAMS[interval]
        body = await self.http.get(
            "/pricehistory",
            {
                "symbol": symbol,
                "periodType": period_type,
                "frequencyType": frequency_type,
                "frequency": frequency,
                "startDate": int(start.timestamp() * 1000),
                "endDate": int(end.timestamp() * 1000),
                "needExtendedHoursData": False,
            },
        )
        if isinstance(body, dict) and body.get("empty") and not body.get("candles"):
            return []
        lo, hi = start.timestamp(), end.timestamp()
        return [
            b
            for b in candles_from_json(body, interval, minutes)
            if lo <= b.start_time.timestamp() < hi
        ]

    async def run_feed(self, symbols: Set[str], sink: QuoteSink) -> None:
        """Poll quotes of the live set every poll interval; emit those whose quote time moved."""
        sent: dict[str, int] = {}
        while True:
            wanted = sorted(symbols)
            if wanted:
                try:
                    quotes = await self.get_quotes(wanted)
                except ProviderError as exc:
                    log.warning("schwab poll failed", error=str(exc))
                    quotes = {}
                for symbol, quote in quotes.items():
                    if quote.sequence > sent.get(symbol, 0):
                        sent[symbol] = quote.sequence
                        await sink(quote)
            await asyncio.sleep(self._poll_interval)
