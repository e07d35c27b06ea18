"""User slice: accounts, refresh-token families and tokens, MFA challenges, recovery codes.

Revision ID: user_0001
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "user_0001"
down_revision = "0001"
branch_labels = ("user",)
depends_on = None


def _ts(name: str, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    """Create the user slice's tables."""
    op.create_table(
        "user_users",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("email", sa.String(254), nullable=False),
        sa.Column("email_key", sa.String(254), nullable=False, unique=True),
        sa.Column("password_hash", sa.String(128), nullable=False),
        sa.Column("display_name", sa.String(100), nullable=False),
        sa.Column("time_zone", sa.String(64), nullable=False),
        sa.Column("push_enabled", sa.Boolean(), nullable=False),
        sa.Column("email_enabled", sa.Boolean(), nullable=False),
        sa.Column("webhook_url", sa.String(2048), nullable=False),
        sa.Column("mfa_enabled", sa.Boolean(), nullable=False),
        sa.Column("mfa_secret", sa.Text(), nullable=True),
        sa.Column("mfa_pending_secret", sa.Text(), nullable=True),
        sa.Column("mfa_last_step", sa.BigInteger(), nullable=True),
        _ts("create_time"),
        _ts("update_time"),
    )
    op.create_table(
        "user_refresh_families",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column(
            "user_id",
            sa.String(32),
            sa.ForeignKey("user_users.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        _ts("create_time"),
        _ts("expire_time"),
        _ts("revoke_time", nullable=True),
        sa.Column("revoke_reason", sa.String(32), nullable=True),
    )
    op.create_table(
        "user_refresh_tokens",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column(
            "family_id",
            sa.String(32),
            sa.ForeignKey("user_refresh_families.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        _ts("create_time"),
        _ts("use_time", nullable=True),
    )
    op.create_table(
        "user_mfa_challenges",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("challenge_hash", sa.String(64), nullable=False, unique=True),
        sa.Column(
            "user_id",
            sa.String(32),
            sa.ForeignKey("user_users.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        _ts("create_time"),
        _ts("expire_time"),
        _ts("use_time", nullable=True),
        sa.Column("failed_attempts", sa.Integer(), nullable=False),
    )
    op.create_table(
        "user_recovery_codes",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column(
            "user_id",
            sa.String(32),
            sa.ForeignKey("user_users.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("code_hash", sa.String(64), nullable=False),
        _ts("use_time", nullable=True),
        sa.UniqueConstraint("user_id", "code_hash"),
    )


def downgrade() -> None:
    """Drop the user slice's tables."""
    for table in (
        "user_recovery_codes",
        "user_mfa_challenges",
        "user_refresh_tokens",
        "user_refresh_families",
        "user_users",
    ):
        op.drop_table(table)
