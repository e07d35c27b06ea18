"""Alert slice: users' alerts with their conditions.

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
    """Create the alerts table and its indexes."""
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
        sa.Column("fire_count", sa.Integer(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("update_time", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("alert_list_order", "alert_alerts", ["user_id", "create_time", "id"])
    op.create_index("alert_by_state", "alert_alerts", ["state"])


def downgrade() -> None:
    """Drop the alerts table."""
    op.drop_table("alert_alerts")
