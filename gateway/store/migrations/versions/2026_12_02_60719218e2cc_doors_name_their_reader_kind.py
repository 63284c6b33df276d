"""Doors say which kind of reader they have, so badge UIDs it never sends are warned about

Revision ID: 60719218e2cc
Revises: 758f284c612d
Create Date: 2026-12-02 15:31:14.466662
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "60719218e2cc"
down_revision: str | Sequence[str] | None = "758f284c612d"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("doors", schema=None) as batch_op:
        batch_op.add_column(sa.Column("reader_kind", sa.String(length=16), nullable=True))


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("doors", schema=None) as batch_op:
        batch_op.drop_column("reader_kind")
