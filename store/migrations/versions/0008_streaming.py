"""Streaming: each position's alert prices (warning and critical on both sides; the
liquidation prices are there already), where a stored account snapshot came from (a poll,
or a streamed mark applied to the last polled positions, and when those were taken), and
the state of every stream for the dashboard.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

PRICE_COLUMNS = ("warning_price_down", "warning_price_up", "critical_price_down", "critical_price_up")


def upgrade() -> None:
    with op.batch_alter_table("position_snapshots", schema=None) as batch_op:
        for name in PRICE_COLUMNS:
            batch_op.add_column(sa.Column(name, sa.Float(), nullable=True))
    with op.batch_alter_table("account_snapshots", schema=None) as batch_op:
        batch_op.add_column(sa.Column("source", sa.String(length=12), nullable=True))
        batch_op.add_column(sa.Column("positions_as_of", sa.BigInteger(), nullable=True))
    op.create_table(
        "stream_states",
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=True),
        sa.Column("connected", sa.Boolean(), nullable=False),
        sa.Column("stale", sa.Boolean(), nullable=False),
        sa.Column("last_message_at", sa.BigInteger(), nullable=True),
        sa.Column("connected_at", sa.BigInteger(), nullable=True),
        sa.Column("reconnects", sa.Integer(), nullable=False),
        sa.Column("messages", sa.Integer(), nullable=False),
        sa.Column("dropped", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("name"),
    )


def downgrade() -> None:
    op.drop_table("stream_states")
    with op.batch_alter_table("account_snapshots", schema=None) as batch_op:
        batch_op.drop_column("positions_as_of")
        batch_op.drop_column("source")
    with op.batch_alter_table("position_snapshots", schema=None) as batch_op:
        for name in reversed(PRICE_COLUMNS):
            batch_op.drop_column(name)
