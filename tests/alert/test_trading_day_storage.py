"""ONCE_PER_TRADING_DAY in the database (SQLite and PostgreSQL): the firing's trading date is the
exchange session it counts toward (what the monitor stores), so the conditional write refuses a
second firing over a weekend or an exchange holiday and accepts the next session's."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import pytest_asyncio

from optix_server.alert.conditions import AlertState, Condition, ConditionKind, Frequency
from optix_server.alert.domain import Alert
from optix_server.alert.events import EventRepository, Firing
from optix_server.alert.repository import AlertRepository
from optix_server.common.exchange_calendar import us_options_calendar
from optix_server.infra.db import Database, migrate
from tests.support.backends import fresh_database_url

pytestmark = pytest.mark.asyncio(loop_scope="package")

CREATED = datetime(2027, 3, 22, 14, 0, tzinfo=UTC)


@pytest_asyncio.fixture(loop_scope="package")
async def database(db_kind: str, tmp_path: Path) -> AsyncIterator[Database]:
    """A fresh migrated database of the package's kind."""
    async with fresh_database_url(db_kind, tmp_path) as url:
        db = Database(url)
        try:
            await migrate(db)
            yield db
        finally:
            await db.dispose()


def daily_alert() -> Alert:
    """An ACTIVE once-per-trading-day alert that has not fired."""
    return Alert(
        id=uuid.uuid4().hex,
        user_id=uuid.uuid4().hex,
        display_name="AAPL above 100",
        symbol="AAPL",
        condition=Condition(ConditionKind.PRICE_ABOVE, 100.0),
        frequency=Frequency.ONCE_PER_TRADING_DAY,
        cooldown=timedelta(0),
        expire_time=None,
        state=AlertState.ACTIVE,
        webhook_url="",
        webhook_disabled=False,
        sealed_webhook_secret=None,
        webhook_secret_create_time=None,
        note="",
        last_fire_time=None,
        fire_count=0,
        revision=1,
        create_time=CREATED,
        update_time=CREATED,
    )


async def test_a_weekend_or_holiday_firing_counts_toward_the_session_before(
    database: Database,
) -> None:
    alerts, events = AlertRepository(database), EventRepository(database)
    alert, _ = await alerts.create(daily_alert(), request_id="", max_alerts=10, now=CREATED)
    calendar = us_options_calendar()

    async def fire(now: datetime) -> bool:
        """Whether the database records a firing at `now`, as the monitor asks for it."""
        firing = Firing(alert, now, calendar.session_date(now), b"", "AAPL above 100", None)
        return await events.fire(firing) is not None

    # Thursday 2027-03-25 (EDT), then Good Friday, Saturday and Sunday: all Thursday's day.
    assert await fire(datetime(2027, 3, 25, 15, 0, tzinfo=UTC))
    for day in (26, 27, 28):
        assert not await fire(datetime(2027, 3, day, 15, 0, tzinfo=UTC)), day
    assert not await fire(datetime(2027, 3, 29, 3, 59, tzinfo=UTC))  # Sunday 23:59
    assert await fire(datetime(2027, 3, 29, 4, 0, tzinfo=UTC))  # Monday 00:00
    stored = await alerts.get(alert.user_id, alert.id)
    assert stored is not None and stored.fire_count == 2
    assert stored.state is AlertState.ACTIVE
    assert stored.last_fire_date is not None and stored.last_fire_date.isoformat() == "2027-03-29"
