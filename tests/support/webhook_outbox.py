"""Outbox rows for webhook tests, written directly the way the firing transaction writes them
(an event, its pending delivery and optionally its alert), and readers of what came of them."""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select

from optix.alert.v1 import alert_event_pb2
from optix_server.alert.conditions import Condition, ConditionKind
from optix_server.alert.models import AlertEventRow, AlertRow, WebhookDeliveryRow
from optix_server.alert.storage_codec import condition_json
from optix_server.infra.crypto import SecretBox
from optix_server.infra.db import Database

SECRET_KEY = b"k" * 32
CONDITION = Condition(kind=ConditionKind.PRICE_ABOVE, level=190.0)


@dataclass(frozen=True)
class Key:
    """An outbox row's primary key, and the alert it belongs to."""

    user_id: str
    event_id: int
    alert_id: str


@dataclass
class OutboxRows:
    """Writes events with pending deliveries, as firing would."""

    database: Database
    secrets: SecretBox = field(default_factory=lambda: SecretBox(SECRET_KEY))
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    async def add(
        self,
        url: str,
        secret: str,
        fire_time: datetime,
        *,
        max_age: timedelta = timedelta(hours=24),
        alert_secret: str | None = None,
        user_id: str | None = None,
    ) -> Key:
        """An event fired at `fire_time` whose delivery to `url` is signed with `secret` (the
        snapshot); with `alert_secret`, its alert exists holding that secret now."""
        key = Key(user_id or uuid.uuid4().hex, next(self._ids), uuid.uuid4().hex)
        context = f"{key.user_id}/{key.alert_id}"
        trigger = alert_event_pb2.AlertTriggerValues(observed_value=190.5)
        async with self.database.session() as session:
            session.add(
                AlertEventRow(
                    user_id=key.user_id,
                    event_id=key.event_id,
                    alert_id=key.alert_id,
                    alert_display_name="AAPL above 190.00",
                    symbol="AAPL",
                    condition=condition_json(CONDITION),
                    fire_time=fire_time,
                    trigger_values=trigger.SerializeToString(),
                    message="AAPL rose above 190.00 (last 190.50) — trim the position",
                    alert_state="active",
                    webhook_delivery="pending",
                )
            )
            session.add(
                WebhookDeliveryRow(
                    user_id=key.user_id,
                    event_id=key.event_id,
                    alert_id=key.alert_id,
                    url=url,
                    sealed_secret=self.secrets.seal(secret, context),
                    state="pending",
                    attempts=0,
                    next_attempt_time=fire_time,
                    give_up_time=fire_time + max_age,
                    create_time=fire_time,
                )
            )
            if alert_secret is not None:
                session.add(_alert(key, url, self.secrets.seal(alert_secret, context), fire_time))
        return key

    async def delivery(self, key: Key) -> WebhookDeliveryRow:
        """The delivery row as stored now."""
        async with self.database.session() as session:
            row = await session.get(WebhookDeliveryRow, (key.user_id, key.event_id))
            assert row is not None
            return row

    async def event_delivery_state(self, key: Key) -> str:
        """The event row's `webhook_delivery`."""
        async with self.database.session() as session:
            state = await session.scalar(
                select(AlertEventRow.webhook_delivery).where(
                    AlertEventRow.user_id == key.user_id, AlertEventRow.event_id == key.event_id
                )
            )
            assert state is not None
            return state

    async def rotate(self, key: Key, secret: str) -> None:
        """Give the event's alert a new signing secret, as UpdateAlert's rotation does."""
        async with self.database.session() as session:
            alert = await session.get(AlertRow, key.alert_id)
            assert alert is not None
            alert.sealed_webhook_secret = self.secrets.seal(secret, f"{key.user_id}/{key.alert_id}")

    async def move_alert_url(self, key: Key, url: str, secret: str) -> None:
        """Give the event's alert another URL of its own with a new secret (UpdateAlert)."""
        async with self.database.session() as session:
            alert = await session.get(AlertRow, key.alert_id)
            assert alert is not None
            alert.webhook_url = url
            alert.sealed_webhook_secret = self.secrets.seal(secret, f"{key.user_id}/{key.alert_id}")

    async def delete_alert(self, key: Key) -> None:
        """Delete the event's alert (its events and deliveries stay)."""
        async with self.database.session() as session:
            alert = await session.get(AlertRow, key.alert_id)
            assert alert is not None
            await session.delete(alert)


def _alert(key: Key, url: str, sealed: str, now: datetime) -> AlertRow:
    return AlertRow(
        id=key.alert_id,
        user_id=key.user_id,
        display_name="AAPL above 190.00",
        symbol="AAPL",
        condition=condition_json(CONDITION),
        frequency="every_time",
        cooldown_seconds=60,
        expire_time=None,
        state="active",
        webhook_url=url,
        webhook_disabled=False,
        sealed_webhook_secret=sealed,
        webhook_secret_create_time=now,
        note="trim the position",
        last_fire_time=now,
        last_fire_date=None,
        fire_count=1,
        revision=2,
        create_time=now,
        update_time=now,
    )
