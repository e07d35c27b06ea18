"""Request validation for market data: symbols, ranges and limits, as field violations."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, date, datetime

from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp

from optix_server.common.occ import SymbolError, normalize_symbol, normalize_ticker
from optix_server.infra.errors import ViolationCollector


def ticker_field(collector: ViolationCollector, field: str, value: str) -> str:
    """A normalised ticker, or "" after recording why `value` is not one."""
    try:
        return normalize_ticker(value)
    except SymbolError as exc:
        collector.add(field, str(exc))
        return ""


def symbol_field(collector: ViolationCollector, field: str, value: str) -> str:
    """A normalised ticker or OCC symbol, or "" after recording why `value` is neither."""
    try:
        return normalize_symbol(value)
    except SymbolError as exc:
        collector.add(field, str(exc))
        return ""


def symbol_list(
    collector: ViolationCollector, field: str, values: Sequence[str], limit: int
) -> list[str]:
    """Normalised, de-duplicated symbols (request order kept), 1 to `limit` of them."""
    if not values:
        collector.add(field, "at least one symbol is required")
        return []
    if len(values) > limit:
        # Checking a huge list element by element would only produce a huge error.
        collector.add(field, f"at most {limit} symbols per request, got {len(values)}")
        return []
    result: dict[str, None] = {}
    for i, value in enumerate(values):
        symbol = symbol_field(collector, f"{field}[{i}]", value)
        if symbol:
            result[symbol] = None
    if len(result) > limit:
        collector.add(field, f"at most {limit} distinct symbols per request")
    return list(result)


def optional_date(
    collector: ViolationCollector, field: str, year: int, month: int, day: int, is_set: bool
) -> date | None:
    """A valid calendar date, None when unset, recording a violation when malformed."""
    if not is_set or (year, month, day) == (0, 0, 0):
        return None
    try:
        return date(year, month, day)
    except ValueError:
        collector.add(field, f"{year:04d}-{month:02d}-{day:02d} is not a valid date")
        return None


def optional_timestamp(
    collector: ViolationCollector, field: str, value: Timestamp, is_set: bool
) -> datetime | None:
    """A UTC datetime, None when unset, recording a violation when out of Timestamp's range."""
    if not is_set:
        return None
    try:
        return value.ToDatetime(UTC)
    except (ValueError, OverflowError):
        collector.add(field, "is not a valid timestamp")
        return None


def duration_seconds(value: Duration) -> float:
    """A Duration in seconds, without timedelta's range limit (callers check the range)."""
    return value.seconds + value.nanos / 1e9


def optional_positive(collector: ViolationCollector, field: str, value: float) -> float | None:
    """None for 0 (unset); a violation for negative or non-finite values."""
    if value == 0:
        return None
    if not math.isfinite(value) or value < 0:
        collector.add(field, "must be > 0 when set")
        return None
    return value
