"""What every market data provider offers, and the errors it may raise."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence, Set
from datetime import date, datetime
from typing import Protocol

from optix_server.marketdata.models import (
    BarInterval,
    DataSource,
    Expiration,
    PriceBar,
    Quote,
    RawChain,
)

QuoteSink = Callable[[Quote], Awaitable[None]]


class ProviderError(Exception):
    """The upstream source failed or is unreachable; the call may be retried later."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class UnknownSymbolError(Exception):
    """The source has no data for this symbol (or no options for this underlying)."""


class MarketDataProvider(Protocol):
    """A source of quotes, chains, expirations, price history and live ticks."""

    @property
    def source(self) -> DataSource:
        """The label every quote from this provider carries."""
        ...

    async def start(self) -> None:
        """Open connections or start playback."""
        ...

    async def close(self) -> None:
        """Release connections and background work."""
        ...

    async def get_quotes(self, symbols: Sequence[str]) -> dict[str, Quote]:
        """Latest quotes for canonical symbols; unknown symbols are simply absent."""
        ...

    async def list_expirations(self, underlying: str) -> list[Expiration]:
        """Listed expirations, soonest first; UnknownSymbolError without options."""
        ...

    def market_version(self, underlying: str) -> int | None:
        """Which market update the underlying's chain and expirations are at now: the same
        number means the same prices, a larger one a newer update; None when the source
        cannot tell (then nothing derived from it may be shared between requests)."""
        ...

    async def get_chain(
        self, underlying: str, expiration_start: date | None, expiration_end: date | None
    ) -> RawChain:
        """Every contract's market for the expirations in range (inclusive)."""
        ...

    async def get_price_history(
        self, symbol: str, interval: BarInterval, start: datetime, end: datetime
    ) -> list[PriceBar]:
        """OHLCV bars starting in [start, end), oldest first; UnknownSymbolError if unknown."""
        ...

    async def run_feed(self, symbols: Set[str], sink: QuoteSink) -> None:
        """Push a quote to `sink` for every update of a symbol currently in the live set
        `symbols` (the caller mutates it); runs until cancelled."""
        ...
