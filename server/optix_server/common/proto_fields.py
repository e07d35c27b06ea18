"""Checks of the well-known protobuf types in requests (Timestamp, Duration), as every slice
reads them: out-of-range values are field violations, never exceptions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp

from optix_server.infra.errors import ViolationCollector


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


def bounded_duration(
    collector: ViolationCollector, field: str, value: Duration, low: timedelta, high: timedelta
) -> timedelta | None:
    """A Duration in [low, high] as a timedelta; a violation (and None) otherwise."""
    seconds = duration_seconds(value)
    if not low.total_seconds() <= seconds <= high.total_seconds():
        collector.add(field, f"must be between {_human(low)} and {_human(high)}")
        return None
    return timedelta(seconds=seconds)


def _human(value: timedelta) -> str:
    seconds = int(value.total_seconds())
    for unit, size in (("days", 86400), ("hours", 3600), ("minutes", 60)):
        if seconds % size == 0 and seconds >= size:
            count = seconds // size
            return f"{count} {unit if count != 1 else unit[:-1]}"
    return f"{seconds} seconds"
