"""User slice: the default webhook's signing secret (sealed) and when it was generated.

Revision ID: user_0002
Revises: user_0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "user_0002"
down_revision = "user_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add the sealed secret and its creation time (both empty for existing accounts)."""
    with op.batch_alter_table("user_users") as batch:
        batch.add_column(sa.Column("webhook_signing_secret", sa.Text(), nullable=True))
        batch.add_column(
            sa.Column("webhook_secret_create_time", sa.DateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    """Drop the secret columns."""
    with op.batch_alter_table("user_users") as batch:
        batch.drop_column("webhook_secret_create_time")
        batch.drop_column("webhook_signing_secret")
