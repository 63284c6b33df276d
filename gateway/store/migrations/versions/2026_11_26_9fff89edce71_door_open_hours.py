"""Doors held unlocked in office hours, optionally after the first entry of the day

Revision ID: 9fff89edce71
Revises: c7417165b028
Create Date: 2026-11-26 21:54:51.360201
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "9fff89edce71"
down_revision: str | Sequence[str] | None = "c7417165b028"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "door_open_windows",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("door_id", sa.String(length=64), nullable=False),
        sa.Column("days", sa.Integer(), nullable=False),
        sa.Column("start_minute", sa.Integer(), nullable=False),
        sa.Column("end_minute", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["door_id"], ["doors.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("doors", schema=None) as batch_op:
        # Existing doors keep today's behaviour: no office hours.
        batch_op.add_column(
            sa.Column(
                "open_after_first_entry", sa.Boolean(), nullable=False, server_default=sa.false()
            )
        )


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("doors", schema=None) as batch_op:
        batch_op.drop_column("open_after_first_entry")

    op.drop_table("door_open_windows")
