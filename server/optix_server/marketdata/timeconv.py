"""The chain's time convention: ACT/365 from the pricing instant to 16:00 New York on expiry."""

from __future__ import annotations

from datetime import UTC, date, datetime, time

from optix_server.common.market_time import NEW_YORK
from optix_server.common.market_time import trading_date as trading_date

SECONDS_PER_YEAR = 365.0 * 86400.0
TIME_CONVENTION = (
    "ACT/365: (expiration 16:00 America/New_York - pricing_time) in seconds / (365 * 86400)"
)


def expiration_instant(expiration: date) -> datetime:
    """When a contract expiring on `expiration` stops trading (16:00 New York), in UTC."""
    return datetime.combine(expiration, time(16, 0), NEW_YORK).astimezone(UTC)


def years_to_expiration(expiration: date, now: datetime) -> float:
    """Time to expiration in years under TIME_CONVENTION (<= 0 once expired)."""
    return (expiration_instant(expiration) - now).total_seconds() / SECONDS_PER_YEAR
