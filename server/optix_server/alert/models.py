"""Tables of the alert slice: alerts (their condition kept with them as JSON), the events their
firings wrote, each user's event counter, and the webhook outbox."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from optix_server.infra.db import Base, UtcDateTime


class AlertRow(Base):
    """An alert. Every change is one UPDATE conditional on `revision`, so firing, editing and
    state changes never overwrite each other."""

    __tablename__ = "alert_alerts"
    __table_args__ = (
        # ListAlerts' order (newest first) and its per-user filters.
        Index("alert_list_order", "user_id", "create_time", "id"),
        # The monitor's start-up read: every alert that may fire.
        Index("alert_by_state", "state"),
        # The expiry sweep (every second): armed alerts whose expire time has come.
        Index("alert_expiry", "state", "expire_time"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(32))
    display_name: Mapped[str] = mapped_column(String(100))
    symbol: Mapped[str] = mapped_column(String(32))
    condition: Mapped[str] = mapped_column(Text)
    frequency: Mapped[str] = mapped_column(String(32))
    cooldown_seconds: Mapped[int] = mapped_column(Integer)
    expire_time: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    state: Mapped[str] = mapped_column(String(16))
    webhook_url: Mapped[str] = mapped_column(Text)
    webhook_disabled: Mapped[bool] = mapped_column(Boolean)
    sealed_webhook_secret: Mapped[str | None] = mapped_column(Text, nullable=True)
    webhook_secret_create_time: Mapped[datetime | None] = mapped_column(
        UtcDateTime(), nullable=True
    )
    note: Mapped[str] = mapped_column(Text)
    last_fire_time: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    # The New York trading date of the last firing (ONCE_PER_TRADING_DAY checks it in SQL).
    last_fire_date: Mapped[str | None] = mapped_column(String(10), nullable=True)
    # last_fire_time + cooldown for EVERY_TIME alerts: the firing UPDATE compares it with now.
    next_fire_time: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    fire_count: Mapped[int] = mapped_column(Integer)
    revision: Mapped[int] = mapped_column(Integer)
    create_time: Mapped[datetime] = mapped_column(UtcDateTime())
    update_time: Mapped[datetime] = mapped_column(UtcDateTime())


class AlertUserRow(Base):
    """A user's newest event id. Firing takes this row's lock to number its event, so a user's
    events commit in id order across replicas (a stream resuming after an id misses none)."""

    __tablename__ = "alert_users"

    user_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    last_event_id: Mapped[int] = mapped_column(BigInteger)


class AlertEventRow(Base):
    """One firing of an alert, written in the transaction that changed the alert's state."""

    __tablename__ = "alert_events"
    __table_args__ = (
        Index("alert_events_by_alert", "user_id", "alert_id", "event_id"),
        Index("alert_events_by_time", "fire_time"),
    )

    user_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    event_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    alert_id: Mapped[str] = mapped_column(String(32))
    alert_display_name: Mapped[str] = mapped_column(String(100))
    symbol: Mapped[str] = mapped_column(String(32))
    condition: Mapped[str] = mapped_column(Text)
    fire_time: Mapped[datetime] = mapped_column(UtcDateTime())
    # optix.alert.v1.AlertTriggerValues, serialised: the quote and values that fired it.
    trigger_values: Mapped[bytes] = mapped_column(LargeBinary)
    message: Mapped[str] = mapped_column(Text)
    alert_state: Mapped[str] = mapped_column(String(16))
    webhook_delivery: Mapped[str] = mapped_column(String(16))


class WebhookDeliveryRow(Base):
    """The outbox: an event to POST to a webhook, written with the event, so a crash or restart
    loses no delivery. Senders on any replica claim due rows with a lease."""

    __tablename__ = "alert_webhook_deliveries"
    __table_args__ = (
        Index("alert_webhook_due", "state", "next_attempt_time"),
        # Pruning finished deliveries with their events.
        Index("alert_webhook_by_time", "create_time"),
    )

    user_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    event_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    alert_id: Mapped[str] = mapped_column(String(32))
    url: Mapped[str] = mapped_column(Text)
    # The signing secret when the event fired, sealed; the alert's current one wins while the
    # alert exists (a rotation takes effect at once).
    sealed_secret: Mapped[str] = mapped_column(Text)
    # "pending", "delivered" or "failed" (as WebhookDeliveryState).
    state: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer)
    next_attempt_time: Mapped[datetime] = mapped_column(UtcDateTime())
    # Retries stop after this (the first attempt + 24 hours).
    give_up_time: Mapped[datetime] = mapped_column(UtcDateTime())
    lease_owner: Mapped[str | None] = mapped_column(String(32), nullable=True)
    lease_until: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    last_status: Mapped[int | None] = mapped_column(Integer, nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    last_attempt_time: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    create_time: Mapped[datetime] = mapped_column(UtcDateTime())


class WebhookAttemptRow(Base):
    """One attempt to deliver an outbox row and what came back, recorded with its outcome."""

    __tablename__ = "alert_webhook_attempts"

    user_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    event_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    # 1 for the first attempt: the delivery's `attempts` after this one.
    attempt: Mapped[int] = mapped_column(Integer, primary_key=True)
    attempt_time: Mapped[datetime] = mapped_column(UtcDateTime())
    # The HTTP status; None when no response came (refused, unreachable, timed out).
    status: Mapped[int | None] = mapped_column(Integer, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    duration_ms: Mapped[int] = mapped_column(Integer)
    # The delivery's state after it ("pending", "delivered", "failed"), and when the next
    # attempt was due if still pending.
    outcome: Mapped[str] = mapped_column(String(16))
    next_attempt_time: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    # The sender (lease owner) that made it.
    sender: Mapped[str] = mapped_column(String(32))
