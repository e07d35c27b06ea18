"""The webhook outbox's storage: claiming due rows with a lease, recording attempts with their
outcome (and the event's delivery state) in one transaction, and pruning finished rows."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, delete, or_, select, tuple_, update
from sqlalchemy.engine import CursorResult

from optix_server.alert.domain import DeliveryState
from optix_server.alert.events import event_from_row
from optix_server.alert.models import (
    AlertEventRow,
    AlertRow,
    WebhookAttemptRow,
    WebhookDeliveryRow,
)
from optix_server.alert.webhooks.delivery import (
    AttemptRecord,
    AttemptResult,
    Delivery,
    Outcome,
)
from optix_server.infra.db import Database

_D = WebhookDeliveryRow
_PENDING = DeliveryState.PENDING.value
# Errors are stored for people to read; an endless exception text is cut.
_MAX_ERROR = 500
# The ORM must not try to mirror these bulk UPDATEs into the session: it holds no rows.
_NO_SYNC = {"synchronize_session": False}


def _due(now: datetime) -> list[ColumnElement[bool]]:
    # Repeated in the UPDATE itself, so a row another sender claimed meanwhile is not taken.
    return [
        _D.state == _PENDING,
        _D.next_attempt_time <= now,
        or_(_D.lease_until.is_(None), _D.lease_until <= now),
    ]


def _rowcount(result: Any) -> int:
    assert isinstance(result, CursorResult)
    return int(result.rowcount)


class WebhookOutbox:
    """Storage of the outbox rows (written by the firing transaction) and their attempts."""

    def __init__(self, database: Database) -> None:
        self._db = database

    async def claim(
        self, owner: str, now: datetime, limit: int, lease: timedelta
    ) -> list[Delivery]:
        """Lease up to `limit` due rows to `owner` until `now + lease`: pending, due, and not
        leased (or the lease expired). One conditional UPDATE, so no two senders hold a row at
        once."""
        keys = tuple_(_D.user_id, _D.event_id)
        due = select(_D.user_id, _D.event_id).where(*_due(now))
        due = due.order_by(_D.next_attempt_time).limit(limit)
        if not self._db.is_sqlite:
            # Concurrent claimers take different rows instead of queueing on the same locks
            # (SQLite has one writer at a time anyway).
            due = due.with_for_update(skip_locked=True)
        async with self._db.session() as session:
            claimed = await session.execute(
                update(_D)
                .where(keys.in_(due), *_due(now))
                .values(lease_owner=owner, lease_until=now + lease)
                .returning(_D.user_id, _D.event_id)
                .execution_options(**_NO_SYNC)
            )
            taken = [tuple(key) for key in claimed.all()]
            if not taken:
                return []
            rows = await session.execute(
                select(_D, AlertEventRow, AlertRow.sealed_webhook_secret, AlertRow.webhook_url)
                .outerjoin(
                    AlertEventRow,
                    and_(
                        AlertEventRow.user_id == _D.user_id,
                        AlertEventRow.event_id == _D.event_id,
                    ),
                )
                .outerjoin(
                    AlertRow, and_(AlertRow.user_id == _D.user_id, AlertRow.id == _D.alert_id)
                )
                .where(keys.in_(taken))
                .order_by(_D.next_attempt_time)
            )
            return [
                Delivery(
                    user_id=row.user_id,
                    event_id=row.event_id,
                    alert_id=row.alert_id,
                    url=row.url,
                    sealed_snapshot_secret=row.sealed_secret,
                    # The alert's current secret signs only deliveries to its own current URL
                    # (a rotation takes effect at once); a delivery to the user's default
                    # webhook, or to a URL since replaced, keeps the secret it fired with.
                    sealed_alert_secret=alert_secret if alert_url == row.url else None,
                    attempts=row.attempts,
                    give_up_time=row.give_up_time,
                    event=event_from_row(event) if event is not None else None,
                )
                for row, event, alert_secret, alert_url in rows
            ]

    async def record(
        self,
        delivery: Delivery,
        owner: str,
        attempt_time: datetime,
        result: AttemptResult,
        outcome: Outcome,
    ) -> AttemptRecord | None:
        """Record an attempt `owner` made under its lease, set the row's outcome and release
        the lease, and set the event's delivery state when it is final; all in one
        transaction. None when the lease was lost (it expired and another sender took the
        row): that sender's outcome counts, and this attempt is not recorded."""
        number = delivery.attempts + 1
        error = result.error[:_MAX_ERROR] if result.error is not None else None
        values: dict[str, Any] = {
            "state": outcome.state.value,
            "attempts": number,
            "last_status": result.status,
            "last_error": error,
            "last_attempt_time": attempt_time,
            "lease_owner": None,
            "lease_until": None,
        }
        if outcome.next_attempt_time is not None:
            values["next_attempt_time"] = outcome.next_attempt_time
        async with self._db.session() as session:
            changed = await session.execute(
                update(_D)
                .where(
                    _D.user_id == delivery.user_id,
                    _D.event_id == delivery.event_id,
                    _D.state == _PENDING,
                    _D.lease_owner == owner,
                )
                .values(**values)
                .execution_options(**_NO_SYNC)
            )
            if _rowcount(changed) != 1:
                return None
            session.add(
                WebhookAttemptRow(
                    user_id=delivery.user_id,
                    event_id=delivery.event_id,
                    attempt=number,
                    attempt_time=attempt_time,
                    status=result.status,
                    error=error,
                    duration_ms=round(result.duration.total_seconds() * 1000),
                    outcome=outcome.state.value,
                    next_attempt_time=outcome.next_attempt_time,
                    sender=owner,
                )
            )
            if outcome.state is not DeliveryState.PENDING:
                await session.execute(
                    update(AlertEventRow)
                    .where(
                        AlertEventRow.user_id == delivery.user_id,
                        AlertEventRow.event_id == delivery.event_id,
                    )
                    .values(webhook_delivery=outcome.state.value)
                    .execution_options(**_NO_SYNC)
                )
        return AttemptRecord(
            user_id=delivery.user_id,
            event_id=delivery.event_id,
            attempt=number,
            attempt_time=attempt_time,
            status=result.status,
            error=error,
            state=outcome.state,
            next_attempt_time=outcome.next_attempt_time,
        )

    async def history(self, user_id: str, event_id: int) -> list[AttemptRecord]:
        """The recorded attempts of one delivery, oldest first."""
        async with self._db.session() as session:
            rows = await session.scalars(
                select(WebhookAttemptRow)
                .where(WebhookAttemptRow.user_id == user_id, WebhookAttemptRow.event_id == event_id)
                .order_by(WebhookAttemptRow.attempt)
            )
            return [
                AttemptRecord(
                    user_id=row.user_id,
                    event_id=row.event_id,
                    attempt=row.attempt,
                    attempt_time=row.attempt_time,
                    status=row.status,
                    error=row.error,
                    state=DeliveryState(row.outcome),
                    next_attempt_time=row.next_attempt_time,
                )
                for row in rows
            ]

    async def prune(self, before: datetime) -> int:
        """Delete deliveries created before `before` (with their events' retention) and their
        attempts; how many deliveries went."""
        old = select(_D.user_id, _D.event_id).where(_D.create_time < before)
        async with self._db.session() as session:
            await session.execute(
                delete(WebhookAttemptRow)
                .where(tuple_(WebhookAttemptRow.user_id, WebhookAttemptRow.event_id).in_(old))
                .execution_options(**_NO_SYNC)
            )
            gone = await session.execute(
                delete(_D).where(_D.create_time < before).execution_options(**_NO_SYNC)
            )
            return _rowcount(gone)
