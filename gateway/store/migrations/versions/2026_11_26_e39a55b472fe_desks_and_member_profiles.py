"""Desks and rooms in areas, and members' opt-in profiles for the "who's in" board

Revision ID: e39a55b472fe
Revises: 9fff89edce71
Create Date: 2026-11-26 22:03:50.399971
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "e39a55b472fe"
down_revision: str | Sequence[str] | None = "9fff89edce71"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "desks",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("zone_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.ForeignKeyConstraint(["zone_id"], ["zones.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("members", schema=None) as batch_op:
        # Off by default: nobody appears on the board without saying so.
        batch_op.add_column(
            sa.Column("board_opt_in", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.add_column(sa.Column("display_name", sa.String(length=120), nullable=True))
        batch_op.add_column(sa.Column("profession", sa.String(length=120), nullable=True))
        batch_op.add_column(
            sa.Column("skills", sa.JSON(), nullable=False, server_default=sa.text("'[]'"))
        )
        batch_op.add_column(sa.Column("ask_me_about", sa.String(length=280), nullable=True))


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("members", schema=None) as batch_op:
        batch_op.drop_column("ask_me_about")
        batch_op.drop_column("skills")
        batch_op.drop_column("profession")
        batch_op.drop_column("display_name")
        batch_op.drop_column("board_opt_in")

    op.drop_table("desks")
