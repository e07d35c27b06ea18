"""Shared auth storage: the durable record of ended sign-in sessions.

Revision ID: auth_0001
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "auth_0001"
down_revision = "0001"
branch_labels = ("auth",)
depends_on = None


def upgrade() -> None:
    """Create the session-endings table."""
    op.create_table(
        "auth_session_endings",
        sa.Column("session_id", sa.String(64), primary_key=True),
        sa.Column("revoke_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expire_time", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_auth_session_endings_revoke_time", "auth_session_endings", ["revoke_time"])
    op.create_index("ix_auth_session_endings_expire_time", "auth_session_endings", ["expire_time"])


def downgrade() -> None:
    """Drop the session-endings table."""
    op.drop_table("auth_session_endings")
