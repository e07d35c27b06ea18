"""Storage of the alert slice. Each method is one transaction; races are settled in SQL: every
change is an UPDATE conditional on the revision it was computed from, request ids are a primary
key, and a user's creates and enables queue behind each other so the limit cannot be raced."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import replace
from datetime import date, datetime, timedelta

from sqlalchemy import CursorResult, and_, delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from optix.alert.v1 import alert_service_pb2
from optix_server.alert.conditions import AlertState, Frequency
from optix_server.alert.domain import ARMED_STATES, Alert, AlertPage
from optix_server.alert.models import AlertRow
from optix_server.alert.storage_codec import condition_from_json, condition_json
from optix_server.infra import errors
from optix_server.infra.aip import request_ids
from optix_server.infra.db import Database

CREATE_METHOD = (
    alert_service_pb2.DESCRIPTOR.services_by_name["AlertService"]
    .methods_by_name["CreateAlert"]
    .full_name
)
# The position of an alert in ListAlerts' order (newest first): (create time, id).
Cursor = tuple[str, str]


def alert_from_row(row: AlertRow) -> Alert:
    """The domain alert of a stored row."""
    return Alert(
        id=row.id,
        user_id=row.user_id,
        display_name=row.display_name,
        symbol=row.symbol,
        condition=condition_from_json(row.condition),
        frequency=Frequency(row.frequency),
        cooldown=timedelta(seconds=row.cooldown_seconds),
        expire_time=row.expire_time,
        state=AlertState(row.state),
        webhook_url=row.webhook_url,
        webhook_disabled=row.webhook_disabled,
        sealed_webhook_secret=row.sealed_webhook_secret,
        webhook_secret_create_time=row.webhook_secret_create_time,
        note=row.note,
        last_fire_time=row.last_fire_time,
        fire_count=row.fire_count,
        revision=row.revision,
        create_time=row.create_time,
        update_time=row.update_time,
        last_fire_date=date.fromisoformat(row.last_fire_date) if row.last_fire_date else None,
    )


def cooldown_seconds(alert: Alert) -> int:
    """The stored form of the alert's cooldown."""
    return int(alert.cooldown.total_seconds())


def next_fire_time(alert: Alert) -> datetime | None:
    """When an EVERY_TIME alert that has fired may fire again (None: whenever it holds)."""
    if alert.frequency is not Frequency.EVERY_TIME or alert.last_fire_time is None:
        return None
    return alert.last_fire_time + alert.cooldown


def _values(alert: Alert) -> dict[str, object]:
    """Every column but the id and owner (what an update writes)."""
    return {
        "display_name": alert.display_name,
        "symbol": alert.symbol,
        "condition": condition_json(alert.condition),
        "frequency": alert.frequency.value,
        "cooldown_seconds": cooldown_seconds(alert),
        # Derived, so a changed cooldown moves it too; the firing UPDATE compares it in SQL.
        "next_fire_time": next_fire_time(alert),
        "expire_time": alert.expire_time,
        "state": alert.state.value,
        "webhook_url": alert.webhook_url,
        "webhook_disabled": alert.webhook_disabled,
        "sealed_webhook_secret": alert.sealed_webhook_secret,
        "webhook_secret_create_time": alert.webhook_secret_create_time,
        "note": alert.note,
        "last_fire_time": alert.last_fire_time,
        "last_fire_date": alert.last_fire_date.isoformat() if alert.last_fire_date else None,
        "fire_count": alert.fire_count,
        "revision": alert.revision,
        "create_time": alert.create_time,
        "update_time": alert.update_time,
    }


def cursor_of(alert: Alert) -> Cursor:
    """Where `alert` stands in the list order, for the page token after it."""
    return (alert.create_time.isoformat(), alert.id)


class AlertRepository:
    """Reads and writes alerts as domain values."""

    def __init__(self, database: Database) -> None:
        self._db = database

    async def get(self, user_id: str, alert_id: str) -> Alert | None:
        """One of the user's alerts (None when absent or another user's)."""
        async with self._db.session() as session:
            row = await session.scalar(
                select(AlertRow).where(AlertRow.id == alert_id, AlertRow.user_id == user_id)
            )
            return None if row is None else alert_from_row(row)

    async def page(
        self,
        user_id: str,
        after: Cursor | None,
        limit: int,
        *,
        states: Collection[AlertState],
        symbol: str,
    ) -> AlertPage:
        """Up to `limit` alerts after `after`, newest first (create time, then id, descending),
        of the given states (empty: all) and symbol (empty: all). Keyset paging: alerts created
        or deleted meanwhile never shift the ones that stay."""
        query = select(AlertRow).where(AlertRow.user_id == user_id)
        if states:
            query = query.where(AlertRow.state.in_([s.value for s in states]))
        if symbol:
            query = query.where(AlertRow.symbol == symbol)
        if after is not None:
            created, last_id = after
            at = datetime.fromisoformat(created)
            query = query.where(
                or_(
                    AlertRow.create_time < at,
                    and_(AlertRow.create_time == at, AlertRow.id < last_id),
                )
            )
        query = query.order_by(AlertRow.create_time.desc(), AlertRow.id.desc()).limit(limit + 1)
        async with self._db.session() as session:
            rows = (await session.scalars(query)).all()
        alerts = [alert_from_row(row) for row in rows[:limit]]
        more = len(rows) > limit
        return AlertPage(alerts, cursor_of(alerts[-1]) if more and alerts else None)

    async def active_alerts(self) -> list[Alert]:
        """Every ACTIVE alert: what the monitor evaluates (its start-up read; DISABLED ones
        expire through the sweep, which reads the database itself)."""
        async with self._db.session() as session:
            rows = (
                await session.scalars(
                    select(AlertRow).where(AlertRow.state == AlertState.ACTIVE.value)
                )
            ).all()
        return [alert_from_row(row) for row in rows]

    async def _queue_user(self, session: AsyncSession, user_id: str) -> None:
        # A no-op write to the user's rows takes their locks (PostgreSQL) or the database's
        # write lock (SQLite): a user's creates and enables run one at a time, so the count
        # each one checks cannot be raced past the limit.
        await session.execute(
            update(AlertRow).where(AlertRow.user_id == user_id).values(revision=AlertRow.revision)
        )

    async def _check_limit(
        self, session: AsyncSession, user_id: str, max_alerts: int, *, adding: str | None
    ) -> None:
        query = (
            select(func.count())
            .select_from(AlertRow)
            .where(
                AlertRow.user_id == user_id,
                AlertRow.state.in_([s.value for s in ARMED_STATES]),
            )
        )
        if adding is not None:
            query = query.where(AlertRow.id != adding)
        if (await session.scalar(query) or 0) >= max_alerts:
            raise errors.ResourceExhausted(
                f"a user may keep at most {max_alerts} active or disabled alerts",
                reason="ALERT_LIMIT",
            )

    async def create(
        self, alert: Alert, *, request_id: str, max_alerts: int, now: datetime
    ) -> tuple[Alert, bool]:
        """Insert a new alert, and True; with a `request_id` used before (or concurrently) by
        this user, the alert that first create made instead, and False. RESOURCE_EXHAUSTED at
        `max_alerts` armed alerts."""
        try:
            async with self._db.session() as session:
                await self._queue_user(session, alert.user_id)
                if request_id:
                    request_ids.remember(
                        session,
                        owner=alert.user_id,
                        method=CREATE_METHOD,
                        request_id=request_id,
                        resource_id=alert.id,
                        now=now,
                    )
                    await session.flush()
                await self._check_limit(session, alert.user_id, max_alerts, adding=None)
                session.add(AlertRow(id=alert.id, user_id=alert.user_id, **_values(alert)))
            return alert, True
        except IntegrityError:
            if not request_id:
                raise
        first = await request_ids.created_by(
            self._db,
            owner=alert.user_id,
            method=CREATE_METHOD,
            request_id=request_id,
            fetch=lambda resource_id: self.get(alert.user_id, resource_id),
            what="alert",
        )
        return first, False

    async def save(
        self, alert: Alert, expected_revision: int, *, max_alerts: int | None = None
    ) -> Alert | None:
        """Write `alert` as the next revision, only if the stored one is still
        `expected_revision` (None: it changed meanwhile, or is gone). With `max_alerts`, the
        change arms the alert (EnableAlert) and is refused at the limit."""
        saved = replace(alert, revision=expected_revision + 1)
        async with self._db.session() as session:
            if max_alerts is not None:
                await self._queue_user(session, alert.user_id)
                await self._check_limit(session, alert.user_id, max_alerts, adding=alert.id)
            result = await session.execute(
                update(AlertRow)
                .where(
                    AlertRow.id == alert.id,
                    AlertRow.user_id == alert.user_id,
                    AlertRow.revision == expected_revision,
                )
                .values(**_values(saved))
            )
        assert isinstance(result, CursorResult)
        return saved if result.rowcount == 1 else None

    async def delete(self, user_id: str, alert_id: str, expected_revision: int | None) -> bool:
        """Delete an alert (still at `expected_revision` when given); False when none matched."""
        conditions = [AlertRow.id == alert_id, AlertRow.user_id == user_id]
        if expected_revision is not None:
            conditions.append(AlertRow.revision == expected_revision)
        async with self._db.session() as session:
            result = await session.execute(delete(AlertRow).where(*conditions))
        assert isinstance(result, CursorResult)
        return result.rowcount == 1
