"""Storage of firings: the conditional write that decides whether an alert fires (state,
cooldown, trading date, expiry and the evaluated condition checked in the same UPDATE, so two
replicas seeing the same tick fire it once), the event and outbox rows written with it, and the
reads of event history."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta

from sqlalchemy import (
    Connection,
    CursorResult,
    Update,
    bindparam,
    delete,
    insert,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from optix_server.alert.conditions import AlertState, Frequency
from optix_server.alert.domain import ARMED_STATES, Alert, AlertEvent, DeliveryState
from optix_server.alert.models import AlertEventRow, AlertRow, AlertUserRow, WebhookDeliveryRow
from optix_server.alert.repository import alert_from_row, cooldown_seconds, next_fire_time
from optix_server.alert.storage_codec import condition_from_json, condition_json
from optix_server.infra.db import Database, UtcDateTime

# Webhook retries stop this long after the firing (by default; AlertSettings.webhook.max_age).
DELIVERY_WINDOW = timedelta(hours=24)


@dataclass(frozen=True)
class Firing:
    """What the monitor asks to record: the alert as it evaluated it, and the event's values."""

    alert: Alert
    fire_time: datetime
    trading_date: date
    trigger_values: bytes
    message: str
    # The webhook to deliver to (URL and sealed secret), None when none applies.
    webhook: tuple[str, str] | None


def event_from_row(row: AlertEventRow) -> AlertEvent:
    """The domain event of a stored row."""
    return AlertEvent(
        user_id=row.user_id,
        event_id=row.event_id,
        alert_id=row.alert_id,
        alert_display_name=row.alert_display_name,
        symbol=row.symbol,
        condition=condition_from_json(row.condition),
        fire_time=row.fire_time,
        trigger_values=row.trigger_values,
        message=row.message,
        alert_state=AlertState(row.alert_state),
        webhook_delivery=DeliveryState(row.webhook_delivery),
    )


def _firing_update(frequency: Frequency) -> Update:
    """The conditional write of a firing of an alert of `frequency`, parameterised (built once:
    building a statement costs more than running it)."""
    now = bindparam("fire_time", type_=UtcDateTime())
    if frequency is Frequency.EVERY_TIME:
        may_fire_again = or_(AlertRow.next_fire_time.is_(None), AlertRow.next_fire_time <= now)
    elif frequency is Frequency.ONCE_PER_TRADING_DAY:
        may_fire_again = or_(
            AlertRow.last_fire_date.is_(None), AlertRow.last_fire_date < bindparam("fire_date")
        )
    else:
        may_fire_again = true()  # ONCE: the ACTIVE state check is enough
    return (
        update(AlertRow)
        .where(
            AlertRow.id == bindparam("alert_id"),
            AlertRow.user_id == bindparam("owner"),
            AlertRow.state == AlertState.ACTIVE.value,
            AlertRow.condition == bindparam("evaluated_condition"),
            AlertRow.frequency == frequency.value,
            AlertRow.cooldown_seconds == bindparam("evaluated_cooldown"),
            or_(AlertRow.expire_time.is_(None), AlertRow.expire_time > now),
            may_fire_again,
        )
        .values(
            state=bindparam("new_state"),
            fire_count=AlertRow.fire_count + 1,
            last_fire_time=now,
            last_fire_date=bindparam("fire_date"),
            next_fire_time=bindparam("new_next_fire_time", type_=UtcDateTime()),
            revision=AlertRow.revision + 1,
            update_time=now,
        )
        # RETURNING: the fired row comes back with the write (one statement, not two).
        .returning(*AlertRow.__table__.columns)
    )


class EventRepository:
    """Firings and the event history."""

    def __init__(self, database: Database, delivery_window: timedelta = DELIVERY_WINDOW) -> None:
        self._db = database
        self._delivery_window = delivery_window
        self._updates = {frequency: _firing_update(frequency) for frequency in Frequency}
        # An upsert that increments the user's counter: it takes the row's lock until commit,
        # so a user's events commit in id order even across replicas.
        upsert = (
            postgresql.insert if database.engine.dialect.name == "postgresql" else sqlite.insert
        )
        self._next_event_id = (
            upsert(AlertUserRow)
            .values(user_id=bindparam("owner"), last_event_id=1)
            .on_conflict_do_update(
                index_elements=[AlertUserRow.user_id],
                set_={"last_event_id": AlertUserRow.last_event_id + 1},
            )
            .returning(AlertUserRow.last_event_id)
        )
        self._insert_event = insert(AlertEventRow)
        self._insert_delivery = insert(WebhookDeliveryRow)

    async def fire(self, firing: Firing) -> tuple[Alert, AlertEvent] | None:
        """Record a firing if the database agrees it may happen now: the alert is still ACTIVE
        with the evaluated condition, not expired, and outside its cooldown (EVERY_TIME) or not
        yet fired this trading date (ONCE_PER_TRADING_DAY). Then, in the same transaction, the
        alert moves on (COMPLETED for ONCE), the event gets the user's next id and the webhook
        outbox its row. None when the database refused (another replica fired it first, or it
        changed)."""
        # One synchronous unit of work: on SQLite it is a single hop to the writer thread.
        return await self._db.run_transaction(lambda connection: self._fire(connection, firing))

    def _fire(self, connection: Connection, firing: Firing) -> tuple[Alert, AlertEvent] | None:
        alert, now = firing.alert, firing.fire_time
        new_state = AlertState.COMPLETED if alert.frequency is Frequency.ONCE else AlertState.ACTIVE
        row = connection.execute(
            self._updates[alert.frequency],
            {
                "alert_id": alert.id,
                "owner": alert.user_id,
                "evaluated_condition": condition_json(alert.condition),
                "evaluated_cooldown": cooldown_seconds(alert),
                "fire_time": now,
                "fire_date": firing.trading_date.isoformat(),
                "new_state": new_state.value,
                "new_next_fire_time": next_fire_time(replace(alert, last_fire_time=now)),
            },
        ).one_or_none()
        if row is None:
            return None
        fired = alert_from_row(row)  # type: ignore[arg-type]  # a Row with the same columns
        event_id = int(
            connection.execute(self._next_event_id, {"owner": alert.user_id}).scalar_one()
        )
        event = AlertEvent(
            user_id=alert.user_id,
            event_id=event_id,
            alert_id=alert.id,
            alert_display_name=fired.display_name,
            symbol=fired.symbol,
            condition=fired.condition,
            fire_time=now,
            trigger_values=firing.trigger_values,
            message=firing.message,
            alert_state=new_state,
            webhook_delivery=DeliveryState.PENDING
            if firing.webhook
            else DeliveryState.NOT_CONFIGURED,
        )
        connection.execute(self._insert_event, _event_values(event))
        if firing.webhook is not None:
            url, sealed = firing.webhook
            connection.execute(
                self._insert_delivery,
                {
                    "user_id": alert.user_id,
                    "event_id": event_id,
                    "alert_id": alert.id,
                    "url": url,
                    "sealed_secret": sealed,
                    "state": DeliveryState.PENDING.value,
                    "attempts": 0,
                    "next_attempt_time": now,
                    "give_up_time": now + self._delivery_window,
                    "create_time": now,
                },
            )
        return fired, event

    async def expire_due(self, now: datetime) -> list[Alert]:
        """Move every armed alert whose expire time has passed to EXPIRED; the alerts moved."""
        async with self._db.session() as session:
            rows = (
                await session.scalars(
                    select(AlertRow).where(
                        AlertRow.state.in_([s.value for s in ARMED_STATES]),
                        AlertRow.expire_time.is_not(None),
                        AlertRow.expire_time <= now,
                    )
                )
            ).all()
            expired = []
            for row in rows:
                result = await session.execute(
                    update(AlertRow)
                    .where(AlertRow.id == row.id, AlertRow.revision == row.revision)
                    .values(
                        state=AlertState.EXPIRED.value,
                        revision=row.revision + 1,
                        update_time=now,
                    )
                )
                assert isinstance(result, CursorResult)
                if result.rowcount == 1:
                    expired.append(
                        replace(
                            alert_from_row(row),
                            state=AlertState.EXPIRED,
                            revision=row.revision + 1,
                            update_time=now,
                        )
                    )
        return expired

    async def history(
        self,
        user_id: str,
        alert_id: str | None,
        *,
        before_event_id: int | None,
        limit: int,
        start: datetime | None,
        end: datetime | None,
    ) -> list[AlertEvent]:
        """Up to `limit` events, newest first, below `before_event_id`, fired in [start, end)."""
        query = select(AlertEventRow).where(AlertEventRow.user_id == user_id)
        if alert_id is not None:
            query = query.where(AlertEventRow.alert_id == alert_id)
        if before_event_id is not None:
            query = query.where(AlertEventRow.event_id < before_event_id)
        if start is not None:
            query = query.where(AlertEventRow.fire_time >= start)
        if end is not None:
            query = query.where(AlertEventRow.fire_time < end)
        query = query.order_by(AlertEventRow.event_id.desc()).limit(limit)
        async with self._db.session() as session:
            rows = (await session.scalars(query)).all()
        return [event_from_row(row) for row in rows]

    async def after(self, user_id: str, after_event_id: int, limit: int) -> list[AlertEvent]:
        """Up to `limit` of the user's events with ids above `after_event_id`, oldest first
        (stream replay: all alerts, so the replay's last id is the user's)."""
        query = (
            select(AlertEventRow)
            .where(AlertEventRow.user_id == user_id, AlertEventRow.event_id > after_event_id)
            .order_by(AlertEventRow.event_id)
            .limit(limit)
        )
        async with self._db.session() as session:
            rows = (await session.scalars(query)).all()
        return [event_from_row(row) for row in rows]

    async def between(self, user_id: str, after_id: int, before_id: int) -> list[AlertEvent]:
        """The user's events with ids strictly between the two, oldest first (a stream's gap)."""
        async with self._db.session() as session:
            rows = (
                await session.scalars(
                    select(AlertEventRow)
                    .where(
                        AlertEventRow.user_id == user_id,
                        AlertEventRow.event_id > after_id,
                        AlertEventRow.event_id < before_id,
                    )
                    .order_by(AlertEventRow.event_id)
                )
            ).all()
        return [event_from_row(row) for row in rows]

    async def last_event_id(self, user_id: str) -> int:
        """The user's newest event id (0 before their first event)."""
        async with self._db.session() as session:
            value = await session.scalar(
                select(AlertUserRow.last_event_id).where(AlertUserRow.user_id == user_id)
            )
        return int(value or 0)

    async def alert_known(self, user_id: str, alert_id: str) -> bool:
        """Whether the user has (or had, with events still kept) an alert with this id."""
        async with self._db.session() as session:
            alive = await session.scalar(
                select(AlertRow.id).where(AlertRow.id == alert_id, AlertRow.user_id == user_id)
            )
            if alive is not None:
                return True
            kept = await session.scalar(
                select(AlertEventRow.event_id)
                .where(AlertEventRow.user_id == user_id, AlertEventRow.alert_id == alert_id)
                .limit(1)
            )
        return kept is not None

    async def prune(self, older_than: datetime) -> int:
        """Delete events fired before `older_than` (their deliveries: WebhookOutbox.prune)."""
        async with self._db.session() as session:
            result = await session.execute(
                delete(AlertEventRow).where(AlertEventRow.fire_time < older_than)
            )
        assert isinstance(result, CursorResult)
        return int(result.rowcount)


def _event_values(event: AlertEvent) -> dict[str, object]:
    return {
        "user_id": event.user_id,
        "event_id": event.event_id,
        "alert_id": event.alert_id,
        "alert_display_name": event.alert_display_name,
        "symbol": event.symbol,
        "condition": condition_json(event.condition),
        "fire_time": event.fire_time,
        "trigger_values": event.trigger_values,
        "message": event.message,
        "alert_state": event.alert_state.value,
        "webhook_delivery": event.webhook_delivery.value,
    }
