"""Event records the store cannot write are set aside, with their reason

Revision ID: 6809474ccbf8
Revises: 21263daeb5ec
Create Date: 2026-12-02 12:54:56.135251
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "6809474ccbf8"
down_revision: str | Sequence[str] | None = "21263daeb5ec"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "set_aside_records",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("event_id", sa.String(length=64), nullable=True),
        sa.Column("row", sa.JSON(), nullable=False),
        sa.Column("reason", sa.String(length=1000), nullable=False),
        sa.Column("set_aside_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("set_aside_records", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_set_aside_records_set_aside_at"), ["set_aside_at"], unique=False
        )


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("set_aside_records", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_set_aside_records_set_aside_at"))

    op.drop_table("set_aside_records")
