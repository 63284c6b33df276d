"""A tap the door decided offline after the gateway had answered keeps the gateway's answer

Revision ID: a1c3e5f7b9d2
Revises: 2e865c98723e
Create Date: 2026-12-02 16:40:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "a1c3e5f7b9d2"
down_revision: str | Sequence[str] | None = "2e865c98723e"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("access_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("online_granted", sa.Boolean(), nullable=True))
        batch_op.add_column(sa.Column("online_reason", sa.String(length=32), nullable=True))


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("access_events", schema=None) as batch_op:
        batch_op.drop_column("online_reason")
        batch_op.drop_column("online_granted")
