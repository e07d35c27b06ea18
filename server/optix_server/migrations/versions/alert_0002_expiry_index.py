"""Alert slice: an index for the expiry sweep (armed alerts by expire time).

Revision ID: alert_0002
Revises: alert_0001
"""

from __future__ import annotations

from alembic import op

revision = "alert_0002"
down_revision = "alert_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """The sweep runs every second: without this it reads every armed alert each time."""
    op.create_index("alert_expiry", "alert_alerts", ["state", "expire_time"])


def downgrade() -> None:
    """Drop the expiry index."""
    op.drop_index("alert_expiry", table_name="alert_alerts")
