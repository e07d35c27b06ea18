"""Domain values of the market data slice (no protobuf, no grpc)."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from optix_server.common.occ import OccSymbol
from optix_server.common.price_increments import midpoint, percent_of, price_difference


class DataSource(enum.Enum):
    """Where numbers came from; simulated and replayed data are always labelled as such."""

    SIMULATED = "simulated"
    REPLAY = "replay"
    SCHWAB = "schwab"


class InstrumentType(enum.Enum):
    """The kind of instrument a symbol names."""

    EQUITY = "equity"
    OPTION = "option"
    INDEX = "index"


class ExpirationType(enum.Enum):
    """The schedule an expiration belongs to."""

    STANDARD = "standard"
    WEEKLY = "weekly"
    QUARTERLY = "quarterly"


class ContractSide(enum.Enum):
    """Which sides of a chain to return."""

    BOTH = "both"
    CALLS = "calls"
    PUTS = "puts"


class BarInterval(enum.Enum):
    """Price bar lengths; the value is the length in seconds (a week is 7 days)."""

    ONE_MINUTE = 60
    FIVE_MINUTES = 300
    FIFTEEN_MINUTES = 900
    THIRTY_MINUTES = 1800
    ONE_HOUR = 3600
    ONE_DAY = 86400
    ONE_WEEK = 604800

    @property
    def length(self) -> timedelta:
        """The bar length as a timedelta."""
        return timedelta(seconds=self.value)


@dataclass(frozen=True, slots=True)
class Greeks:
    """Black-Scholes-Merton sensitivities in the contract's units."""

    delta: float
    gamma: float
    theta: float
    vega: float
    rho: float


@dataclass(frozen=True, slots=True)
class OptionAnalytics:
    """An option quote's implied volatility and Greeks, with the inputs that reproduce them."""

    implied_volatility: float
    iv_status: int
    greeks: Greeks | None
    underlying_price: float
    risk_free_rate: float
    dividend_yield: float
    time_to_expiration_years: float
    in_the_money: bool


@dataclass(frozen=True, slots=True)
class Quote:
    """A snapshot of the market for one symbol."""

    symbol: str
    instrument_type: InstrumentType
    bid: float
    ask: float
    last: float
    bid_size: int
    ask_size: int
    volume: int
    open: float
    high: float
    low: float
    previous_close: float
    quote_time: datetime
    source: DataSource
    sequence: int
    # Option contracts only, once priced against the underlying (see quote_analytics).
    analytics: OptionAnalytics | None = None

    # Derived prices are rounded (common/price_increments.py) so that they print as the
    # decimals they are: a change of 0.04, not 0.03999999999999204.
    @property
    def mark(self) -> float:
        """Mid of bid and ask, or last without a two-sided market."""
        if self.bid > 0 and self.ask > 0:
            return midpoint(self.bid, self.ask)
        return self.last

    @property
    def change(self) -> float:
        """last - previous close (0 without a previous close)."""
        return price_difference(self.last, self.previous_close) if self.previous_close > 0 else 0.0

    @property
    def change_percent(self) -> float:
        """change as a percentage of the previous close."""
        return percent_of(self.change, self.previous_close) if self.previous_close > 0 else 0.0


@dataclass(frozen=True, slots=True)
class Expiration:
    """One listed expiration of an underlying."""

    date: date
    type: ExpirationType


@dataclass(frozen=True, slots=True)
class OptionMarket:
    """A contract's market as a provider reports it, before any modelling."""

    contract: OccSymbol
    bid: float
    ask: float
    last: float
    volume: int
    open_interest: int
    multiplier: int = 100


@dataclass(frozen=True, slots=True)
class RawChain:
    """A provider's chain: the underlying's quote and every contract's market."""

    underlying: str
    underlying_quote: Quote
    contracts: list[OptionMarket]
    source: DataSource


@dataclass(frozen=True, slots=True)
class ChainFilter:
    """Optional chain filters; all combine with AND."""

    expiration_start: date | None = None
    expiration_end: date | None = None
    strike_min: float | None = None
    strike_max: float | None = None
    strike_count: int = 0
    side: ContractSide = ContractSide.BOTH


@dataclass(frozen=True, slots=True)
class PricedOption:
    """One contract of a served chain: its market, implied volatility and Greeks."""

    contract: OccSymbol
    underlying: str
    multiplier: int
    bid: float
    ask: float
    last: float
    mark: float
    volume: int
    open_interest: int
    implied_volatility: float
    iv_status: int
    greeks: Greeks | None
    time_to_expiration_years: float
    in_the_money: bool


@dataclass(frozen=True, slots=True)
class PricingParameters:
    """The model inputs a chain was computed with, so a client can reproduce every number."""

    underlying_price: float
    risk_free_rate: float
    dividend_yield: float
    model: str
    time_convention: str
    pricing_time: datetime
    price_basis: str


@dataclass(frozen=True, slots=True)
class OptionsChain:
    """A served chain."""

    underlying: str
    underlying_quote: Quote
    pricing: PricingParameters
    options: list[PricedOption]
    source: DataSource


@dataclass(frozen=True, slots=True)
class PriceBar:
    """Open, high, low, close and volume over one interval starting at `start_time`."""

    start_time: datetime
    open: float
    high: float
    low: float
    close: float
    volume: int


@dataclass(frozen=True, slots=True)
class PriceHistory:
    """Bars for a symbol and interval, oldest first."""

    symbol: str
    interval: BarInterval
    bars: list[PriceBar]
    source: DataSource
    instrument_type: InstrumentType
