"""Request validation for market data: symbols, ranges and limits, as field violations."""

from __future__ import annotations

import math
from datetime import date

from optix_server.infra.errors import ViolationCollector


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


def optional_positive(collector: ViolationCollector, field: str, value: float) -> float | None:
    """None for 0 (unset); a violation for negative or non-finite values."""
    if value == 0:
        return None
    if not math.isfinite(value) or value < 0:
        collector.add(field, "must be > 0 when set")
        return None
    return value
