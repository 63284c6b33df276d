"""Members set their own profile through a link an admin sends; their consent to the board is kept

Revision ID: 0c5ba34c175d
Revises: 60719218e2cc
Create Date: 2026-12-02 15:50:31.841739
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0c5ba34c175d"
down_revision: str | Sequence[str] | None = "60719218e2cc"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "profile_links",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["member_id"], ["members.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_hash"),
    )
    with op.batch_alter_table("members", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("board_consent_at", sa.DateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("board_consent_via", sa.String(length=160), nullable=True))
    # Who was on the board before consent was kept: say so, rather than claim a consent.
    op.execute(
        "UPDATE members SET board_consent_via = 'set by an admin before consent was recorded'"
        " WHERE board_opt_in"
    )


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("members", schema=None) as batch_op:
        batch_op.drop_column("board_consent_via")
        batch_op.drop_column("board_consent_at")

    op.drop_table("profile_links")
