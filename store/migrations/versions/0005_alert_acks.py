"""Alert acknowledgements: an alert state acknowledged at its level is not repeated.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("alert_states", schema=None) as batch_op:
        batch_op.add_column(sa.Column("acked_level", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("acked_at", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("acked_by", sa.String(length=120), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("alert_states", schema=None) as batch_op:
        batch_op.drop_column("acked_by")
        batch_op.drop_column("acked_at")
        batch_op.drop_column("acked_level")
