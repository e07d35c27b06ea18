"""Watchlist slice: users' lists with their ordered symbols.

Revision ID: watchlist_0001
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "watchlist_0001"
down_revision = "0001"
branch_labels = ("watchlist",)
depends_on = None


def upgrade() -> None:
    """Create the watchlist table and its indexes."""
    op.create_table(
        "watchlist_lists",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("user_id", sa.String(32), nullable=False),
        sa.Column("display_name", sa.String(64), nullable=False),
        sa.Column("is_default", sa.Boolean(), nullable=False),
        sa.Column("items", sa.Text(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("update_time", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index(
        "watchlist_one_default_per_user",
        "watchlist_lists",
        ["user_id"],
        unique=True,
        sqlite_where=sa.text("is_default"),
        postgresql_where=sa.text("is_default"),
    )
    op.create_index(
        "watchlist_list_order",
        "watchlist_lists",
        ["user_id", "is_default", "create_time", "id"],
    )


def downgrade() -> None:
    """Drop the watchlist table."""
    op.drop_table("watchlist_lists")
