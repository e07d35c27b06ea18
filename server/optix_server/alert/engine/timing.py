"""Engine time: integer microseconds since the Unix epoch, so that both engines compare exactly
the same numbers (no float rounding at cooldown or window edges), and the trading-date boundary
of ONCE_PER_TRADING_DAY alerts."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from optix_server.alert.conditions import Frequency

# The US equity session's calendar (ALERT_FREQUENCY_ONCE_PER_TRADING_DAY).
MARKET_ZONE = ZoneInfo("America/New_York")
# A deadline that never comes (an alert without expiry); the largest int64, so it fits arrays.
NEVER = 2**63 - 1

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def to_micros(moment: datetime) -> int:
    """`moment` (timezone-aware) as microseconds since the Unix epoch."""
    return (moment - _EPOCH) // _MICROSECOND


def from_micros(micros: int) -> datetime:
    """The UTC datetime of `micros` microseconds since the Unix epoch."""
    return _EPOCH + timedelta(microseconds=micros)


def duration_micros(duration: timedelta) -> int:
    """`duration` in whole microseconds."""
    return duration // _MICROSECOND


def trading_date(micros: int) -> date:
    """The America/New_York calendar date of the instant `micros`."""
    return from_micros(micros).astimezone(MARKET_ZONE).date()


def next_trading_date_start(micros: int) -> int:
    """The first instant of the America/New_York date after the one containing `micros`."""
    # Midnight always exists and is unambiguous in New York: DST switches at 02:00.
    following = trading_date(micros) + timedelta(days=1)
    return to_micros(datetime.combine(following, time(0), tzinfo=MARKET_ZONE))


def next_eligible(frequency: Frequency, cooldown: int, last_fire: int | None) -> int:
    """When an alert that last fired at `last_fire` may fire again (0: now). ONCE alerts are
    eligible while held (firing removes them); EVERY_TIME after the cooldown; ONCE_PER_TRADING_DAY
    from the next New York date."""
    if last_fire is None or frequency is Frequency.ONCE:
        return 0
    if frequency is Frequency.EVERY_TIME:
        return last_fire + cooldown
    return next_trading_date_start(last_fire)
