"""Root revision: every slice's migration branch starts here.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Nothing: the root only anchors the per-slice branches."""


def downgrade() -> None:
    """Nothing to undo."""
