"""Shared AIP storage: request ids of idempotent creates.

Revision ID: aip_0001
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "aip_0001"
down_revision = "0001"
branch_labels = ("aip",)
depends_on = None


def upgrade() -> None:
    """Create the request-id table."""
    op.create_table(
        "aip_request_ids",
        sa.Column("owner", sa.String(64), primary_key=True),
        sa.Column("method", sa.String(128), primary_key=True),
        sa.Column("request_id", sa.String(64), primary_key=True),
        sa.Column("resource_id", sa.String(64), nullable=False),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    """Drop the request-id table."""
    op.drop_table("aip_request_ids")
