"""Channels and shapes: how the indexed engine files a condition.

A channel is one number a tick yields for a symbol (a price of one type, the day volume, the
implied volatility, the delta, or a percent move of one price type from the previous close or
over one window, in one direction). A shape is how a level is compared with it. Every condition
becomes (channel, shape, level), so alerts that read the same number share one sorted level set
and a tick costs one lookup per channel, whatever the number of alerts on it.

Percent moves are compared in percent space: the tick's move m = (price - base) / base * 100 is
computed once per channel and compared with the alerts' percents, UP as m >= percent, DOWN as
-m >= percent, EITHER as |m| >= percent. That is the same comparison, in the same floating-point
arithmetic, as the plain `move <= -percent` form, and mapping the percents to price levels per
base instead would round differently at the edge."""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

from optix_server.alert.conditions import (
    Condition,
    ConditionKind,
    Direction,
    MoveBasis,
    PriceType,
    Tick,
    percent_move,
)
from optix_server.alert.engine.history import WindowHistories
from optix_server.alert.engine.timing import duration_micros, to_micros


class Source(enum.Enum):
    """What number of a tick a channel reads."""

    PRICE = "price"
    VOLUME = "volume"
    IMPLIED_VOLATILITY = "implied_volatility"
    DELTA = "delta"
    MOVE_FROM_CLOSE = "move_from_close"
    MOVE_OVER_WINDOW = "move_over_window"


class Shape(enum.IntEnum):
    """How a level is compared with a channel's value (stored in a bytearray per slot)."""

    ABOVE = 0  # holds while value > level
    BELOW = 1  # holds while value < level
    AT_LEAST = 2  # holds while value >= level (percent moves)
    CROSS_UP = 3  # fires when previous < level <= value
    CROSS_DOWN = 4  # fires when previous > level >= value
    CROSS_EITHER = 5  # either of the two

    @property
    def crossing(self) -> bool:
        """Whether the shape fires on a transition rather than while it holds."""
        return self >= Shape.CROSS_UP


@dataclass(frozen=True, slots=True)
class ChannelKey:
    """One number of a symbol's ticks; `window` in microseconds for window moves, else 0."""

    source: Source
    price_type: PriceType | None = None
    direction: Direction | None = None
    window: int = 0


@dataclass(frozen=True, slots=True)
class Reading:
    """A channel's number on one tick: `value` is compared with the levels; `observed` and
    `reference` are what a candidate reports (for moves the signed percent and its base)."""

    value: float
    observed: float
    reference: float | None = None


_CROSSING = {
    Direction.UP: Shape.CROSS_UP,
    Direction.DOWN: Shape.CROSS_DOWN,
    Direction.EITHER: Shape.CROSS_EITHER,
}


def classify(condition: Condition) -> tuple[ChannelKey, Shape]:
    """The channel and shape `condition` is filed under (its level is `condition.level`)."""
    kind = condition.kind
    match kind:
        case ConditionKind.PRICE_ABOVE | ConditionKind.PRICE_BELOW:
            shape = Shape.ABOVE if kind is ConditionKind.PRICE_ABOVE else Shape.BELOW
            return ChannelKey(Source.PRICE, _price_type(condition)), shape
        case ConditionKind.PRICE_CROSSING:
            return ChannelKey(Source.PRICE, _price_type(condition)), _CROSSING[
                _direction(condition)
            ]
        case ConditionKind.DAY_VOLUME_ABOVE:
            return ChannelKey(Source.VOLUME), Shape.ABOVE
        case ConditionKind.IMPLIED_VOLATILITY_ABOVE:
            return ChannelKey(Source.IMPLIED_VOLATILITY), Shape.ABOVE
        case ConditionKind.IMPLIED_VOLATILITY_BELOW:
            return ChannelKey(Source.IMPLIED_VOLATILITY), Shape.BELOW
        case ConditionKind.DELTA_CROSSING:
            return ChannelKey(Source.DELTA), _CROSSING[_direction(condition)]
        case ConditionKind.PERCENT_MOVE:
            price_type, direction = _price_type(condition), _direction(condition)
            if condition.basis is MoveBasis.WINDOW:
                assert condition.window is not None  # validated with the WINDOW basis
                window = duration_micros(condition.window)
                key = ChannelKey(Source.MOVE_OVER_WINDOW, price_type, direction, window)
            else:
                key = ChannelKey(Source.MOVE_FROM_CLOSE, price_type, direction)
            return key, Shape.AT_LEAST


def read(key: ChannelKey, tick: Tick, histories: WindowHistories) -> Reading | None:
    """The channel's reading on `tick`; None when the tick has no usable value (no implied
    volatility or delta, a price <= 0, no previous close, no history reaching back a window)."""
    match key.source:
        case Source.PRICE:
            assert key.price_type is not None
            price = usable_price(tick.price(key.price_type))
            return None if price is None else Reading(price, price)
        case Source.VOLUME:
            return Reading(float(tick.volume), float(tick.volume))
        case Source.IMPLIED_VOLATILITY:
            value = finite(tick.implied_volatility)
            return None if value is None else Reading(value, value)
        case Source.DELTA:
            value = finite(tick.delta)
            return None if value is None else Reading(value, value)
        case Source.MOVE_FROM_CLOSE:
            return _move(key, tick, usable_price(tick.previous_close))
        case Source.MOVE_OVER_WINDOW:
            assert key.price_type is not None
            series = histories.series(tick.symbol, key.price_type)
            base = None if series is None else series.reference(to_micros(tick.time), key.window)
            return _move(key, tick, base)


def holds(shape: Shape, value: float, level: float) -> bool:
    """Whether a threshold shape holds at `value`."""
    if shape is Shape.ABOVE:
        return value > level
    if shape is Shape.BELOW:
        return value < level
    return value >= level


def finite(value: float | None) -> float | None:
    """`value` if it is a finite number, else None."""
    return value if value is not None and math.isfinite(value) else None


def usable_price(price: float) -> float | None:
    """`price` if it is a finite positive price, else None (a quote without that price)."""
    return price if math.isfinite(price) and price > 0 else None


def _move(key: ChannelKey, tick: Tick, base: float | None) -> Reading | None:
    assert key.price_type is not None
    price = usable_price(tick.price(key.price_type))
    if price is None or base is None:
        return None
    move = finite(percent_move(price, base))
    if move is None:
        return None
    value = move if key.direction is Direction.UP else -move
    if key.direction is Direction.EITHER:
        value = abs(move)
    return Reading(value, move, base)


def _price_type(condition: Condition) -> PriceType:
    assert condition.price_type is not None  # resolved for every price kind
    return condition.price_type


def _direction(condition: Condition) -> Direction:
    assert condition.direction is not None  # required for crossings and moves
    return condition.direction
