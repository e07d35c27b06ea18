"""The US equity market's clock, as every slice reads it: New York time and its calendar date."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

NEW_YORK = ZoneInfo("America/New_York")


def trading_date(now: datetime) -> date:
    """The calendar date in New York: 'today' for days-to-expiration. (The trading day an instant
    counts toward, weekends and holidays aside, is ExchangeCalendar.session_date.)"""
    return now.astimezone(NEW_YORK).date()
