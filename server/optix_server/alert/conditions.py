"""What makes an alert fire: the condition kinds of optix.alert.v1.AlertCondition as plain values,
and the quote value each one compares (no storage, no gRPC types)."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta

from optix_server.common.occ import is_option_symbol


class ConditionKind(enum.Enum):
    """The kind of a condition; the value is its `AlertCondition.kind` oneof field name."""

    PRICE_ABOVE = "price_above"
    PRICE_BELOW = "price_below"
    PRICE_CROSSING = "price_crossing"
    PERCENT_MOVE = "percent_move"
    DAY_VOLUME_ABOVE = "day_volume_above"
    IMPLIED_VOLATILITY_ABOVE = "implied_volatility_above"
    IMPLIED_VOLATILITY_BELOW = "implied_volatility_below"
    DELTA_CROSSING = "delta_crossing"

    @property
    def options_only(self) -> bool:
        """Whether the kind applies to option contracts only."""
        return self in _OPTIONS_ONLY

    @property
    def crossing(self) -> bool:
        """Whether the kind fires on a transition between two consecutive quotes (not while a
        threshold holds)."""
        return self in (ConditionKind.PRICE_CROSSING, ConditionKind.DELTA_CROSSING)


_OPTIONS_ONLY = frozenset(
    {
        ConditionKind.IMPLIED_VOLATILITY_ABOVE,
        ConditionKind.IMPLIED_VOLATILITY_BELOW,
        ConditionKind.DELTA_CROSSING,
    }
)


class PriceType(enum.Enum):
    """Which price of a quote a price condition compares."""

    LAST = "last"
    MARK = "mark"
    BID = "bid"
    ASK = "ask"

    @staticmethod
    def default_for(symbol: str) -> PriceType:
        """The mark for option contracts, the last trade for everything else."""
        return PriceType.MARK if is_option_symbol(symbol) else PriceType.LAST


class Direction(enum.Enum):
    """The direction a crossing or move watches."""

    UP = "up"
    DOWN = "down"
    EITHER = "either"


class MoveBasis(enum.Enum):
    """What a percent move is measured from."""

    PREVIOUS_CLOSE = "previous_close"
    WINDOW = "window"


class Frequency(enum.Enum):
    """How often an alert may fire."""

    ONCE = "once"
    EVERY_TIME = "every_time"
    ONCE_PER_TRADING_DAY = "once_per_trading_day"


class AlertState(enum.Enum):
    """An alert's lifecycle state."""

    ACTIVE = "active"
    DISABLED = "disabled"
    COMPLETED = "completed"
    EXPIRED = "expired"


@dataclass(frozen=True, slots=True)
class Condition:
    """One alert condition, validated and with its defaults resolved.

    `level` is in the kind's units: a price (USD per share) for price kinds, percent for
    PERCENT_MOVE, shares or contracts for DAY_VOLUME_ABOVE, an annualised fraction for implied
    volatility, delta for DELTA_CROSSING. `direction` is set for crossings and percent moves,
    `price_type` for the price kinds and percent moves, `basis` for percent moves, and `window`
    for the WINDOW basis only."""

    kind: ConditionKind
    level: float
    direction: Direction | None = None
    price_type: PriceType | None = None
    basis: MoveBasis | None = None
    window: timedelta | None = None


DEFAULT_COOLDOWN = timedelta(minutes=5)
MIN_COOLDOWN, MAX_COOLDOWN = timedelta(minutes=1), timedelta(days=7)
MIN_WINDOW, MAX_WINDOW = timedelta(minutes=1), timedelta(hours=24)
MAX_PERCENT = 1000.0
MAX_IMPLIED_VOLATILITY = 10.0


@dataclass(frozen=True, slots=True)
class Tick:
    """The values of one quote that conditions compare; None where the quote has no value (an
    implied volatility or delta that could not be solved, or a non-option quote)."""

    symbol: str
    time: datetime
    last: float
    mark: float
    bid: float
    ask: float
    volume: int
    previous_close: float
    implied_volatility: float | None = None
    delta: float | None = None

    def price(self, price_type: PriceType) -> float:
        """The price a price condition of `price_type` compares."""
        match price_type:
            case PriceType.LAST:
                return self.last
            case PriceType.MARK:
                return self.mark
            case PriceType.BID:
                return self.bid
            case PriceType.ASK:
                return self.ask


def observed(condition: Condition, tick: Tick) -> float | None:
    """The value `condition` compares against its level on `tick` (for percent moves, the price
    the move is measured to); None when the tick has no such value, or no usable price (<= 0)."""
    match condition.kind:
        case ConditionKind.DAY_VOLUME_ABOVE:
            return float(tick.volume)
        case ConditionKind.IMPLIED_VOLATILITY_ABOVE | ConditionKind.IMPLIED_VOLATILITY_BELOW:
            return tick.implied_volatility
        case ConditionKind.DELTA_CROSSING:
            return tick.delta
        case _:
            assert condition.price_type is not None  # set for every price kind
            price = tick.price(condition.price_type)
            return price if price > 0 else None


def percent_move(price: float, base: float) -> float:
    """The move from `base` to `price` in percent of `base` (5.0 for a 5% rise)."""
    return (price - base) / base * 100
