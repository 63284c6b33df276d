"""Desks say which device reports them; existing desks take the device that last did

Revision ID: 758f284c612d
Revises: 6809474ccbf8
Create Date: 2026-12-02 12:57:51.060957
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "758f284c612d"
down_revision: str | Sequence[str] | None = "6809474ccbf8"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("desks", schema=None) as batch_op:
        batch_op.add_column(sa.Column("device_id", sa.String(length=64), nullable=True))
        batch_op.create_foreign_key(
            "fk_desks_device_id_devices", "devices", ["device_id"], ["id"], ondelete="SET NULL"
        )
    # A space that upgrades keeps its desks reporting: each belongs to the registered device
    # that reported it last.
    op.execute(
        "UPDATE desks SET device_id = ("
        " SELECT e.device_id FROM desk_events e JOIN devices d ON d.id = e.device_id"
        " WHERE e.desk_id = desks.id ORDER BY e.at DESC LIMIT 1)"
    )


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("desks", schema=None) as batch_op:
        batch_op.drop_constraint("fk_desks_device_id_devices", type_="foreignkey")
        batch_op.drop_column("device_id")
