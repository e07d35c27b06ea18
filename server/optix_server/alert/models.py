"""Tables of the alert slice: one row per alert, its condition kept with it as JSON."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Index, Integer, String, Text
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
    fire_count: Mapped[int] = mapped_column(Integer)
    revision: Mapped[int] = mapped_column(Integer)
    create_time: Mapped[datetime] = mapped_column(UtcDateTime())
    update_time: Mapped[datetime] = mapped_column(UtcDateTime())
