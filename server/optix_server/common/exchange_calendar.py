"""The US listed-options market's exchange calendar: sessions, holidays and early closes.

US equity and equity-option exchanges keep the NYSE's holidays and early closes (13:00 New York
on the day after Thanksgiving, Christmas Eve and the eve of Independence Day). The dates come
from the `exchange-calendars` package's XNYS calendar; this module turns them into plain dates
and times once, so that a lookup is a binary search and pandas stays out of every hot path.
"""

from __future__ import annotations

import functools
import warnings
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, time

from optix_server.common.market_time import NEW_YORK

REGULAR_CLOSE = time(16, 0)
# The exchange-calendars name of the calendar US equity options follow.
EXCHANGE = "XNYS"
# The range loaded: ample for replayed history and for expirations listed years ahead; fixed, so
# every process (and every replica) knows the same days whatever its clock says.
FIRST_DAY = date(1990, 1, 1)
LAST_DAY = date(2075, 12, 31)


class CalendarRangeError(ValueError):
    """A date outside the range the calendar was loaded for."""


class ExchangeCalendar:
    """An exchange's sessions in [first, last] with the New York time each one closes."""

    def __init__(
        self,
        name: str,
        first: date,
        last: date,
        sessions: Iterable[date],
        early_closes: Mapping[date, time],
    ) -> None:
        self.name = name
        self.first = first
        self.last = last
        self._sessions = array("l", sorted({d.toordinal() for d in sessions}))
        if not self._sessions:
            raise ValueError("a calendar needs at least one session")
        if self._sessions[0] < first.toordinal() or self._sessions[-1] > last.toordinal():
            raise ValueError("sessions must lie within [first, last]")
        self._early_closes = dict(early_closes)

    def _check(self, day: date) -> int:
        if not self.first <= day <= self.last:
            raise CalendarRangeError(
                f"{day} is outside the {self.name} calendar ({self.first} to {self.last})"
            )
        return day.toordinal()

    def _at(self, index: int, day: date) -> date:
        if not 0 <= index < len(self._sessions):
            raise CalendarRangeError(f"no {self.name} session near {day} within the calendar")
        return date.fromordinal(self._sessions[index])

    def is_session(self, day: date) -> bool:
        """Whether the exchange trades on `day` (False on weekends and holidays)."""
        ordinal = self._check(day)
        i = bisect_left(self._sessions, ordinal)
        return i < len(self._sessions) and self._sessions[i] == ordinal

    def session_on_or_before(self, day: date) -> date:
        """`day` if it is a session, else the latest session before it."""
        return self._at(bisect_right(self._sessions, self._check(day)) - 1, day)

    def previous_session(self, day: date) -> date:
        """The latest session strictly before `day`."""
        return self._at(bisect_left(self._sessions, self._check(day)) - 1, day)

    def next_session(self, day: date) -> date:
        """The earliest session strictly after `day`."""
        return self._at(bisect_right(self._sessions, self._check(day)), day)

    def close_time(self, session: date) -> time:
        """The New York wall-clock time `session` closes (13:00 on early-close days)."""
        if not self.is_session(session):
            raise ValueError(f"{session} is not a {self.name} session")
        return self._early_closes.get(session, REGULAR_CLOSE)

    def session_close(self, session: date) -> datetime:
        """The instant (UTC) the session `session` closes."""
        return datetime.combine(session, self.close_time(session), NEW_YORK).astimezone(UTC)

    def session_date(self, moment: datetime) -> date:
        """The session an instant counts toward: its New York date if that is a session, else the
        latest session before (a weekend or holiday is not a trading day of its own)."""
        return self.session_on_or_before(moment.astimezone(NEW_YORK).date())

    def listed_expiration(self, nominal: date) -> date:
        """Where an expiration scheduled for `nominal` (a Friday) is listed: that day, or the
        session before when the exchange is closed (Good Friday's monthly expires on Thursday)."""
        return self.session_on_or_before(nominal)

    def expiration_close(self, expiration: date) -> datetime:
        """When a contract expiring on `expiration` last trades: its last session's close."""
        return self.session_close(self.session_on_or_before(expiration))

    def is_listed(self, expiration: date, now: datetime) -> bool:
        """Whether an expiration still trades at `now` (until its last session's close)."""
        return now < self.expiration_close(expiration)


def load_exchange_calendar(
    exchange: str = EXCHANGE, first: date = FIRST_DAY, last: date = LAST_DAY
) -> ExchangeCalendar:
    """The named exchange-calendars calendar over [first, last] (imports pandas: ~1.5 s)."""
    # Imported here: pandas under it costs more than the rest of a server's imports.
    import exchange_calendars
    from pandas.errors import Pandas4Warning

    with warnings.catch_warnings():
        # The library still reads Series.values, which pandas 3.1 deprecates; the numbers are
        # unaffected (the tests check known holidays and early closes).
        warnings.simplefilter("ignore", Pandas4Warning)
        source = exchange_calendars.get_calendar(exchange, start=first, end=last)
        sessions = [stamp.date() for stamp in source.sessions]
        closes = source.closes[source.early_closes].dt.tz_convert(NEW_YORK)
    early = {stamp.date(): close.time() for stamp, close in closes.items()}
    return ExchangeCalendar(exchange, first, last, sessions, early)


@functools.cache
def us_options_calendar() -> ExchangeCalendar:
    """The US options market's calendar, loaded on first use and shared: it is reference data,
    like the time zone database, and never changes while a process runs."""
    return load_exchange_calendar()
