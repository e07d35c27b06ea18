"""Alert slice: users' alerts with their conditions, their events and the webhook outbox.

Revision ID: alert_0001
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "alert_0001"
down_revision = "0001"
branch_labels = ("alert",)
depends_on = None


def upgrade() -> None:
    """Create the alert tables and their indexes."""
    op.create_table(
        "alert_alerts",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("user_id", sa.String(32), nullable=False),
        sa.Column("display_name", sa.String(100), nullable=False),
        sa.Column("symbol", sa.String(32), nullable=False),
        sa.Column("condition", sa.Text(), nullable=False),
        sa.Column("frequency", sa.String(32), nullable=False),
        sa.Column("cooldown_seconds", sa.Integer(), nullable=False),
        sa.Column("expire_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("webhook_url", sa.Text(), nullable=False),
        sa.Column("webhook_disabled", sa.Boolean(), nullable=False),
        sa.Column("sealed_webhook_secret", sa.Text(), nullable=True),
        sa.Column("webhook_secret_create_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("last_fire_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_fire_date", sa.String(10), nullable=True),
        sa.Column("next_fire_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("fire_count", sa.Integer(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("update_time", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("alert_list_order", "alert_alerts", ["user_id", "create_time", "id"])
    op.create_index("alert_by_state", "alert_alerts", ["state"])
    op.create_table(
        "alert_users",
        sa.Column("user_id", sa.String(32), primary_key=True),
        sa.Column("last_event_id", sa.BigInteger(), nullable=False),
    )
    op.create_table(
        "alert_events",
        sa.Column("user_id", sa.String(32), primary_key=True),
        sa.Column("event_id", sa.BigInteger(), primary_key=True),
        sa.Column("alert_id", sa.String(32), nullable=False),
        sa.Column("alert_display_name", sa.String(100), nullable=False),
        sa.Column("symbol", sa.String(32), nullable=False),
        sa.Column("condition", sa.Text(), nullable=False),
        sa.Column("fire_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("trigger_values", sa.LargeBinary(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("alert_state", sa.String(16), nullable=False),
        sa.Column("webhook_delivery", sa.String(16), nullable=False),
    )
    op.create_index("alert_events_by_alert", "alert_events", ["user_id", "alert_id", "event_id"])
    op.create_index("alert_events_by_time", "alert_events", ["fire_time"])
    op.create_table(
        "alert_webhook_deliveries",
        sa.Column("user_id", sa.String(32), primary_key=True),
        sa.Column("event_id", sa.BigInteger(), primary_key=True),
        sa.Column("alert_id", sa.String(32), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("sealed_secret", sa.Text(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("give_up_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lease_owner", sa.String(32), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_status", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_attempt_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("alert_webhook_due", "alert_webhook_deliveries", ["state", "next_attempt_time"])
    op.create_index("alert_webhook_by_time", "alert_webhook_deliveries", ["create_time"])
    op.create_table(
        "alert_webhook_attempts",
        sa.Column("user_id", sa.String(32), primary_key=True),
        sa.Column("event_id", sa.BigInteger(), primary_key=True),
        sa.Column("attempt", sa.Integer(), primary_key=True),
        sa.Column("attempt_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("next_attempt_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("sender", sa.String(32), nullable=False),
    )


def downgrade() -> None:
    """Drop the alert tables."""
    for table in (
        "alert_webhook_attempts",
        "alert_webhook_deliveries",
        "alert_events",
        "alert_users",
        "alert_alerts",
    ):
        op.drop_table(table)
