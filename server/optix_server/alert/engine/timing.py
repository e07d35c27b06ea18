"""Engine time: integer microseconds since the Unix epoch, so that both engines compare exactly
the same numbers (no float rounding at cooldown or window edges), and the trading-day boundary
of ONCE_PER_TRADING_DAY alerts: exchange sessions, so a weekend or holiday is not a new day."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from optix_server.alert.conditions import Frequency
from optix_server.common.exchange_calendar import ExchangeCalendar
from optix_server.common.market_time import NEW_YORK

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


def trading_date(micros: int, calendar: ExchangeCalendar) -> date:
    """The exchange session the instant `micros` counts toward (ExchangeCalendar.session_date)."""
    return calendar.session_date(from_micros(micros))


def next_trading_date_start(micros: int, calendar: ExchangeCalendar) -> int:
    """The first instant (New York midnight) of the session after the one `micros` counts toward:
    from then on trading_date is later, and not a moment before."""
    # Midnight always exists and is unambiguous in New York: DST switches at 02:00.
    following = calendar.next_session(trading_date(micros, calendar))
    return to_micros(datetime.combine(following, time(0), tzinfo=NEW_YORK))


def next_eligible(
    frequency: Frequency, cooldown: int, last_fire: int | None, calendar: ExchangeCalendar
) -> int:
    """When an alert that last fired at `last_fire` may fire again (0: now). ONCE alerts are
    eligible while held (firing removes them); EVERY_TIME after the cooldown; ONCE_PER_TRADING_DAY
    from the next session's New York date."""
    if last_fire is None or frequency is Frequency.ONCE:
        return 0
    if frequency is Frequency.EVERY_TIME:
        return last_fire + cooldown
    return next_trading_date_start(last_fire, calendar)
