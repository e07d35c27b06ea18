"""The US options exchange calendar (common/exchange_calendar.py) on the NYSE's real dates:
holidays, early closes, where a holiday Friday's expiration is listed, when an expiration stops
trading, and which session an instant counts toward."""

from __future__ import annotations

from datetime import UTC, date, datetime, time

import pytest

from optix_server.common.exchange_calendar import (
    CalendarRangeError,
    ExchangeCalendar,
    us_options_calendar,
)
from optix_server.common.market_time import NEW_YORK

GOOD_FRIDAY_2027 = date(2027, 3, 26)
CHRISTMAS_2026 = date(2026, 12, 25)
NEW_YEAR_2027 = date(2027, 1, 1)
JUNETEENTH_2026 = date(2026, 6, 19)
DAY_AFTER_THANKSGIVING_2026 = date(2026, 11, 27)
CHRISTMAS_EVE_2026 = date(2026, 12, 24)


@pytest.fixture(scope="module")
def nyse() -> ExchangeCalendar:
    """The process's US options calendar."""
    return us_options_calendar()


def new_york(day: date, hour: int, minute: int = 0, second: int = 0) -> datetime:
    """A New York wall-clock instant."""
    return datetime.combine(day, time(hour, minute, second), NEW_YORK)


def test_exchange_holidays_are_not_sessions(nyse: ExchangeCalendar) -> None:
    for holiday in (GOOD_FRIDAY_2027, CHRISTMAS_2026, NEW_YEAR_2027, JUNETEENTH_2026):
        assert holiday.weekday() == 4 and not nyse.is_session(holiday)
    assert not nyse.is_session(date(2026, 11, 26))  # Thanksgiving, a Thursday
    assert not nyse.is_session(date(2026, 12, 5))  # a Saturday
    assert nyse.is_session(date(2027, 3, 25)) and nyse.is_session(date(2026, 12, 4))


def test_early_closes_are_known(nyse: ExchangeCalendar) -> None:
    for day in (DAY_AFTER_THANKSGIVING_2026, CHRISTMAS_EVE_2026, date(2025, 7, 3)):
        assert nyse.close_time(day) == time(13, 0)
    assert nyse.close_time(date(2026, 12, 23)) == time(16, 0)
    assert nyse.session_close(CHRISTMAS_EVE_2026) == datetime(2026, 12, 24, 18, 0, tzinfo=UTC)
    # Summer time: 16:00 New York is 20:00 UTC.
    assert nyse.session_close(date(2027, 3, 25)) == datetime(2027, 3, 25, 20, 0, tzinfo=UTC)
    with pytest.raises(ValueError, match="not a XNYS session"):
        nyse.close_time(CHRISTMAS_2026)


def test_a_holiday_fridays_expiration_is_listed_the_session_before(
    nyse: ExchangeCalendar,
) -> None:
    assert nyse.listed_expiration(GOOD_FRIDAY_2027) == date(2027, 3, 25)
    assert nyse.listed_expiration(CHRISTMAS_2026) == CHRISTMAS_EVE_2026
    assert nyse.listed_expiration(NEW_YEAR_2027) == date(2026, 12, 31)
    assert nyse.listed_expiration(JUNETEENTH_2026) == date(2026, 6, 18)
    assert nyse.listed_expiration(date(2026, 12, 18)) == date(2026, 12, 18)


def test_an_expiration_trades_until_its_last_sessions_close(nyse: ExchangeCalendar) -> None:
    thursday = date(2027, 3, 25)
    assert nyse.is_listed(thursday, new_york(thursday, 15, 59, 59))
    assert not nyse.is_listed(thursday, new_york(thursday, 16, 0, 0))
    assert not nyse.is_listed(thursday, new_york(thursday, 16, 0, 1))
    assert nyse.is_listed(thursday, new_york(date(2027, 3, 24), 23, 0))
    # Early close: gone at 13:00, though the chain's time convention still counts to 16:00.
    for day in (DAY_AFTER_THANKSGIVING_2026, CHRISTMAS_EVE_2026):
        assert nyse.is_listed(day, new_york(day, 12, 59, 59))
        assert not nyse.is_listed(day, new_york(day, 13, 0, 1))
        assert not nyse.is_listed(day, new_york(day, 15, 0))
    # A recorded expiration dated on a holiday last trades the session before.
    assert not nyse.is_listed(GOOD_FRIDAY_2027, new_york(thursday, 16, 0, 1))


def test_an_instant_counts_toward_its_session(nyse: ExchangeCalendar) -> None:
    friday = date(2026, 3, 6)
    assert nyse.session_date(new_york(friday, 23, 59)) == friday
    assert nyse.session_date(new_york(date(2026, 3, 7), 12)) == friday  # Saturday
    assert nyse.session_date(new_york(date(2026, 3, 9), 0)) == date(2026, 3, 9)  # Monday
    # The New York date, not the UTC one: 01:00 UTC on Saturday is Friday evening there.
    assert nyse.session_date(datetime(2026, 3, 7, 1, 0, tzinfo=UTC)) == friday
    assert nyse.session_date(new_york(GOOD_FRIDAY_2027, 10)) == date(2027, 3, 25)
    assert nyse.next_session(date(2027, 3, 25)) == date(2027, 3, 29)
    assert nyse.previous_session(date(2027, 3, 29)) == date(2027, 3, 25)
    assert nyse.session_on_or_before(date(2027, 3, 29)) == date(2027, 3, 29)


def test_dates_outside_the_loaded_range_are_refused(nyse: ExchangeCalendar) -> None:
    with pytest.raises(CalendarRangeError):
        nyse.is_session(date(1980, 1, 2))
    with pytest.raises(CalendarRangeError):
        nyse.session_date(datetime(2090, 1, 2, tzinfo=UTC))


def test_a_calendar_of_given_sessions() -> None:
    # The API on hand-made sessions: a three-day week with an early close.
    mon, tue, thu = date(2030, 1, 7), date(2030, 1, 8), date(2030, 1, 10)
    week = ExchangeCalendar(
        "TEST", date(2030, 1, 6), date(2030, 1, 12), [mon, tue, thu], {tue: time(12, 30)}
    )
    assert [week.is_session(date(2030, 1, d)) for d in range(6, 13)] == [
        False,
        True,
        True,
        False,
        True,
        False,
        False,
    ]
    assert week.listed_expiration(date(2030, 1, 11)) == thu
    assert week.listed_expiration(date(2030, 1, 9)) == tue
    assert week.close_time(tue) == time(12, 30) and week.close_time(thu) == time(16, 0)
    assert week.next_session(tue) == thu and week.previous_session(thu) == tue
    with pytest.raises(CalendarRangeError, match="no TEST session"):
        week.previous_session(mon)
    with pytest.raises(CalendarRangeError, match="no TEST session"):
        week.next_session(thu)
    with pytest.raises(ValueError, match="within"):
        ExchangeCalendar("TEST", mon, tue, [thu], {})
