"""Brokerage slice: OAuth starts, connections with their sync lease, sealed tokens, and the
synced accounts, positions and transactions.

Revision ID: brokerage_0001
Revises: 0001
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "brokerage_0001"
down_revision = "0001"
branch_labels = ("brokerage",)
depends_on = None


def _when(name: str, nullable: bool = True) -> sa.Column[Any]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _amount(name: str, nullable: bool = False) -> sa.Column[Any]:
    return sa.Column(name, sa.String(64), nullable=nullable)


def upgrade() -> None:
    """Create the brokerage tables and their indexes."""
    op.create_table(
        "brokerage_starts",
        sa.Column("state_hash", sa.String(64), primary_key=True),
        sa.Column("user_id", sa.String(32), nullable=False),
        sa.Column("provider", sa.String(32), nullable=False),
        sa.Column("connection_id", sa.String(32), nullable=True),
        sa.Column("redirect_uri", sa.Text(), nullable=False),
        sa.Column("sealed_verifier", sa.Text(), nullable=False),
        sa.Column("display_name", sa.String(64), nullable=False),
        _when("expire_time", nullable=False),
    )
    op.create_index("ix_brokerage_starts_expire_time", "brokerage_starts", ["expire_time"])
    op.create_table(
        "brokerage_connections",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("user_id", sa.String(32), nullable=False),
        sa.Column("provider", sa.String(32), nullable=False),
        sa.Column("display_name", sa.String(64), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("status_message", sa.Text(), nullable=False),
        _when("reauth_required_time"),
        _when("last_sync_time"),
        sa.Column("last_sync_result", sa.Integer(), nullable=False),
        sa.Column("last_sync_error", sa.Text(), nullable=False),
        _when("last_successful_sync_time"),
        sa.Column("account_count", sa.Integer(), nullable=False),
        sa.Column("sync_state", sa.Integer(), nullable=False),
        _when("sync_create_time"),
        _when("sync_start_time"),
        _when("next_sync_time"),
        sa.Column("lease_owner", sa.String(32), nullable=True),
        _when("lease_until"),
        _when("create_time", nullable=False),
        _when("update_time", nullable=False),
    )
    op.create_index(
        "brokerage_connection_order", "brokerage_connections", ["user_id", "create_time", "id"]
    )
    op.create_index("brokerage_connection_due", "brokerage_connections", ["next_sync_time"])
    op.create_table(
        "brokerage_tokens",
        sa.Column(
            "connection_id",
            sa.String(32),
            sa.ForeignKey("brokerage_connections.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("sealed_access", sa.Text(), nullable=False),
        sa.Column("sealed_refresh", sa.Text(), nullable=False),
        _when("access_expire_time"),
        _when("refresh_expire_time"),
    )
    op.create_table(
        "brokerage_accounts",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column(
            "connection_id",
            sa.String(32),
            sa.ForeignKey("brokerage_connections.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("user_id", sa.String(32), nullable=False),
        sa.Column("provider_account_id", sa.String(128), nullable=False),
        sa.Column("display_name", sa.String(128), nullable=False),
        sa.Column("number_last4", sa.String(4), nullable=False),
        sa.Column("type", sa.Integer(), nullable=False),
        sa.Column("currency_code", sa.String(3), nullable=False),
        _amount("cash"),
        _amount("buying_power", nullable=True),
        _amount("liquidation_value", nullable=True),
        _when("create_time", nullable=False),
        _when("update_time", nullable=False),
        sa.UniqueConstraint("connection_id", "provider_account_id"),
    )
    op.create_index(
        "brokerage_account_order",
        "brokerage_accounts",
        ["user_id", "connection_id", "display_name", "id"],
    )
    op.create_table(
        "brokerage_positions",
        sa.Column(
            "account_id",
            sa.String(32),
            sa.ForeignKey("brokerage_accounts.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("symbol", sa.String(32), primary_key=True),
        sa.Column("user_id", sa.String(32), nullable=False),
        sa.Column("connection_id", sa.String(32), nullable=False),
        _amount("quantity"),
        _amount("average_cost", nullable=True),
        _amount("price", nullable=True),
        _amount("previous_close", nullable=True),
        _when("update_time", nullable=False),
    )
    op.create_index("ix_brokerage_positions_user_id", "brokerage_positions", ["user_id"])
    op.create_table(
        "brokerage_transactions",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column(
            "account_id",
            sa.String(32),
            sa.ForeignKey("brokerage_accounts.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("user_id", sa.String(32), nullable=False),
        sa.Column("connection_id", sa.String(32), nullable=False),
        sa.Column("provider_transaction_id", sa.String(128), nullable=False),
        sa.Column("type", sa.Integer(), nullable=False),
        _when("transaction_time", nullable=False),
        sa.Column("symbol", sa.String(32), nullable=False),
        sa.Column("underlying", sa.String(32), nullable=False),
        _amount("quantity", nullable=True),
        _amount("price", nullable=True),
        _amount("amount"),
        _amount("fees"),
        sa.Column("position_effect", sa.Integer(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.UniqueConstraint("account_id", "provider_transaction_id"),
    )
    op.create_index(
        "brokerage_transaction_order",
        "brokerage_transactions",
        ["user_id", "transaction_time", "id"],
    )


def downgrade() -> None:
    """Drop the brokerage tables."""
    for table in (
        "brokerage_transactions",
        "brokerage_positions",
        "brokerage_accounts",
        "brokerage_tokens",
        "brokerage_connections",
        "brokerage_starts",
    ):
        op.drop_table(table)
