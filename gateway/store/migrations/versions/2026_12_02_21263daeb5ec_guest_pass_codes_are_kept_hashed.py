"""Guest pass codes are kept hashed (varco.protocol.pass_code_hash), never in clear

The downgrade cannot bring the codes back: it leaves each pass its hash as its code, so no
pass opens a door until it is issued again.

Revision ID: 21263daeb5ec
Revises: 01b7971d2776
Create Date: 2026-12-02 13:18:52.119566
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "21263daeb5ec"
down_revision: str | Sequence[str] | None = "01b7971d2776"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("guest_passes", schema=None) as batch_op:
        batch_op.add_column(sa.Column("code_hash", sa.String(length=64), nullable=True))
    passes = sa.table(
        "guest_passes",
        sa.column("id", sa.Integer()),
        sa.column("code", sa.String()),
        sa.column("code_hash", sa.String()),
    )
    connection = op.get_bind()
    for pass_id, code in connection.execute(sa.select(passes.c.id, passes.c.code)).all():
        # varco.protocol.pass_code_hash, spelled here so that this revision never changes.
        code_hash = hashlib.sha256(code.encode()).hexdigest()
        connection.execute(
            passes.update().where(passes.c.id == pass_id).values(code_hash=code_hash)
        )
    with op.batch_alter_table("guest_passes", schema=None) as batch_op:
        batch_op.alter_column("code_hash", existing_type=sa.String(length=64), nullable=False)
        batch_op.create_unique_constraint("guest_passes_code_hash_key", ["code_hash"])
        batch_op.drop_column("code")


def downgrade() -> None:
    """Revert this revision; the codes are gone, each pass gets its hash as its code."""
    with op.batch_alter_table("guest_passes", schema=None) as batch_op:
        batch_op.add_column(sa.Column("code", sa.String(length=64), nullable=True))
    op.execute("UPDATE guest_passes SET code = code_hash")
    with op.batch_alter_table("guest_passes", schema=None) as batch_op:
        batch_op.alter_column("code", existing_type=sa.String(length=64), nullable=False)
        batch_op.create_unique_constraint("guest_passes_code_key", ["code"])
        batch_op.drop_constraint("guest_passes_code_hash_key", type_="unique")
        batch_op.drop_column("code_hash")
