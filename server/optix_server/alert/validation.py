"""Request checks of the alert slice: an AlertCondition message and the alert's settings into
domain values, every problem a field violation under its full request path."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime, timedelta

from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp

from optix.alert.v1 import alert_pb2
from optix_server.alert.conditions import (
    DEFAULT_COOLDOWN,
    MAX_COOLDOWN,
    MAX_IMPLIED_VOLATILITY,
    MAX_PERCENT,
    MAX_WINDOW,
    MIN_COOLDOWN,
    MIN_WINDOW,
    AlertState,
    Condition,
    ConditionKind,
    Direction,
    Frequency,
    MoveBasis,
    PriceType,
)
from optix_server.common.occ import is_option_symbol
from optix_server.common.proto_fields import bounded_duration, optional_timestamp
from optix_server.common.text import has_control_characters
from optix_server.infra.errors import ViolationCollector

MAX_DISPLAY_NAME = 100
MAX_NOTE = 500

_PRICE_TYPES = {
    alert_pb2.PRICE_TYPE_LAST: PriceType.LAST,
    alert_pb2.PRICE_TYPE_MARK: PriceType.MARK,
    alert_pb2.PRICE_TYPE_BID: PriceType.BID,
    alert_pb2.PRICE_TYPE_ASK: PriceType.ASK,
}
_DIRECTIONS = {
    alert_pb2.MOVE_DIRECTION_UP: Direction.UP,
    alert_pb2.MOVE_DIRECTION_DOWN: Direction.DOWN,
    alert_pb2.MOVE_DIRECTION_EITHER: Direction.EITHER,
}
_STATES = {
    alert_pb2.ALERT_STATE_ACTIVE: AlertState.ACTIVE,
    alert_pb2.ALERT_STATE_DISABLED: AlertState.DISABLED,
    alert_pb2.ALERT_STATE_COMPLETED: AlertState.COMPLETED,
    alert_pb2.ALERT_STATE_EXPIRED: AlertState.EXPIRED,
}
_FREQUENCIES = {
    alert_pb2.ALERT_FREQUENCY_UNSPECIFIED: Frequency.ONCE,
    alert_pb2.ALERT_FREQUENCY_ONCE: Frequency.ONCE,
    alert_pb2.ALERT_FREQUENCY_EVERY_TIME: Frequency.EVERY_TIME,
    alert_pb2.ALERT_FREQUENCY_ONCE_PER_TRADING_DAY: Frequency.ONCE_PER_TRADING_DAY,
}


def _level(
    check: ViolationCollector,
    field: str,
    value: float,
    *,
    low: float = 0.0,
    high: float = math.inf,
    low_inclusive: bool = False,
) -> float:
    """A finite level in (low, high] (or [low, high]), recording why not."""
    above_low = value >= low if low_inclusive else value > low
    if not math.isfinite(value) or not above_low or value > high:
        bound = f">= {low:g}" if low_inclusive else f"> {low:g}"
        rule = f"must be a finite number {bound}" + (
            f" and at most {high:g}" if math.isfinite(high) else ""
        )
        check.add(field, rule)
    return value


def _price_type(check: ViolationCollector, field: str, value: int, symbol: str) -> PriceType:
    if value == alert_pb2.PRICE_TYPE_UNSPECIFIED:
        return PriceType.default_for(symbol)
    found = _PRICE_TYPES.get(alert_pb2.PriceType.ValueType(value))
    if found is None:
        check.add(field, f"unknown price type {value}")
        return PriceType.default_for(symbol)
    return found


def _direction(check: ViolationCollector, field: str, value: int) -> Direction:
    found = _DIRECTIONS.get(alert_pb2.MoveDirection.ValueType(value))
    if found is None:
        check.add(field, "a direction (UP, DOWN or EITHER) is required")
        return Direction.EITHER
    return found


def condition(
    check: ViolationCollector, field: str, message: alert_pb2.AlertCondition, symbol: str
) -> Condition | None:
    """The domain condition of `message` for `symbol` (canonical, may be "" when the symbol was
    itself invalid), defaults resolved; None after recording why it is not valid."""
    kind_name = message.WhichOneof("kind")
    if kind_name is None:
        check.add(field, "a condition is required: set exactly one kind")
        return None
    kind = ConditionKind(kind_name)
    at = f"{field}.{kind_name}"
    before = len(check.violations)
    if kind.options_only and symbol and not is_option_symbol(symbol):
        check.add(at, "applies to option contracts (OCC symbols) only")
    result: Condition
    match kind:
        case ConditionKind.PRICE_ABOVE | ConditionKind.PRICE_BELOW:
            threshold = getattr(message, kind_name)
            result = Condition(
                kind,
                _level(check, f"{at}.price", threshold.price),
                price_type=_price_type(check, f"{at}.price_type", threshold.price_type, symbol),
            )
        case ConditionKind.PRICE_CROSSING:
            crossing = message.price_crossing
            result = Condition(
                kind,
                _level(check, f"{at}.price", crossing.price),
                direction=_direction(check, f"{at}.direction", crossing.direction),
                price_type=_price_type(check, f"{at}.price_type", crossing.price_type, symbol),
            )
        case ConditionKind.PERCENT_MOVE:
            result = _percent_move(check, at, message.percent_move, symbol)
        case ConditionKind.DAY_VOLUME_ABOVE:
            volume = message.day_volume_above.volume
            if volume <= 0:
                check.add(f"{at}.volume", "must be > 0")
            result = Condition(kind, float(volume))
        case ConditionKind.IMPLIED_VOLATILITY_ABOVE | ConditionKind.IMPLIED_VOLATILITY_BELOW:
            level = getattr(message, kind_name).implied_volatility
            result = Condition(
                kind,
                _level(check, f"{at}.implied_volatility", level, high=MAX_IMPLIED_VOLATILITY),
            )
        case ConditionKind.DELTA_CROSSING:
            crossing_delta = message.delta_crossing
            result = Condition(
                kind,
                _level(
                    check,
                    f"{at}.delta",
                    crossing_delta.delta,
                    low=-1.0,
                    high=1.0,
                    low_inclusive=True,
                ),
                direction=_direction(check, f"{at}.direction", crossing_delta.direction),
            )
    return result if len(check.violations) == before else None


def _percent_move(
    check: ViolationCollector, at: str, move: alert_pb2.PercentMove, symbol: str
) -> Condition:
    basis = (
        MoveBasis.WINDOW
        if move.basis == alert_pb2.PERCENT_MOVE_BASIS_WINDOW
        else MoveBasis.PREVIOUS_CLOSE
    )
    if move.basis not in alert_pb2.PercentMoveBasis.values():
        check.add(f"{at}.basis", f"unknown basis {move.basis}")
    window: timedelta | None = None
    if basis is MoveBasis.WINDOW:
        if not move.HasField("window"):
            check.add(f"{at}.window", "is required for the WINDOW basis (1 minute to 24 hours)")
        else:
            window = bounded_duration(check, f"{at}.window", move.window, MIN_WINDOW, MAX_WINDOW)
    return Condition(
        ConditionKind.PERCENT_MOVE,
        _level(check, f"{at}.percent", move.percent, high=MAX_PERCENT),
        direction=_direction(check, f"{at}.direction", move.direction),
        price_type=_price_type(check, f"{at}.price_type", move.price_type, symbol),
        basis=basis,
        window=window,
    )


def frequency(check: ViolationCollector, field: str, value: int) -> Frequency:
    """The frequency (UNSPECIFIED is ONCE)."""
    found = _FREQUENCIES.get(alert_pb2.AlertFrequency.ValueType(value))
    if found is None:
        check.add(field, f"unknown frequency {value}")
        return Frequency.ONCE
    return found


def cooldown(
    check: ViolationCollector, field: str, value: Duration, is_set: bool, freq: Frequency
) -> timedelta:
    """The cooldown of an EVERY_TIME alert (1 minute to 7 days, default 5 minutes); other
    frequencies ignore it and keep the default."""
    if freq is not Frequency.EVERY_TIME or not is_set:
        return DEFAULT_COOLDOWN
    return bounded_duration(check, field, value, MIN_COOLDOWN, MAX_COOLDOWN) or DEFAULT_COOLDOWN


def expire_time(
    check: ViolationCollector, field: str, value: Timestamp, is_set: bool, now: datetime
) -> datetime | None:
    """When the alert expires (None: never); it must be in the future."""
    when = optional_timestamp(check, field, value, is_set)
    if when is not None and when <= now:
        check.add(field, "must be in the future")
        return None
    return when


def display_name(check: ViolationCollector, field: str, value: str) -> str:
    """The trimmed label ("" to derive one), at most 100 characters, no control characters."""
    name = value.strip()
    if len(name) > MAX_DISPLAY_NAME:
        check.add(field, f"at most {MAX_DISPLAY_NAME} characters, got {len(name)}")
    elif has_control_characters(name):
        check.add(field, "must not contain control characters")
    return name


def note(check: ViolationCollector, field: str, value: str) -> str:
    """The note, at most 500 characters; line breaks and tabs are its only control characters."""
    if len(value) > MAX_NOTE:
        check.add(field, f"at most {MAX_NOTE} characters, got {len(value)}")
    elif has_control_characters(value.replace("\n", "").replace("\t", "")):
        check.add(field, "must not contain control characters other than line breaks and tabs")
    return value


def states(check: ViolationCollector, field: str, values: Sequence[int]) -> list[AlertState]:
    """A ListAlerts state filter, duplicates collapsed (UNSPECIFIED or unknown: a violation)."""
    result: list[AlertState] = []
    for i, value in enumerate(values):
        state = _STATES.get(alert_pb2.AlertState.ValueType(value))
        if state is None:
            check.add(f"{field}[{i}]", f"unknown alert state {value}")
        else:
            result.append(state)
    return list(dict.fromkeys(result))
