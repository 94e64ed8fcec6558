"""Risk intelligence: market stats, liquidation events, volatility, touch probability and funding columns.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "market_stats",
        sa.Column("exchange", sa.String(length=40), nullable=False),
        sa.Column("symbol", sa.String(length=60), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.Column("volatility", sa.Float(), nullable=True),
        sa.Column("beta", sa.Float(), nullable=True),
        sa.Column("funding_rate", sa.Float(), nullable=True),
        sa.Column("predicted_funding_rate", sa.Float(), nullable=True),
        sa.Column("funding_interval_hours", sa.Float(), nullable=True),
        sa.Column("hours_to_funding", sa.Float(), nullable=True),
        sa.Column("order_book", sa.Text(), nullable=True),
        sa.Column("order_book_at", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("exchange", "symbol"),
    )
    op.create_table(
        "liquidation_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("symbol", sa.String(length=60), nullable=False),
        sa.Column("side", sa.String(length=5), nullable=False),
        sa.Column("occurred_at", sa.BigInteger(), nullable=False),
        sa.Column("detected_at", sa.BigInteger(), nullable=False),
        sa.Column("price", sa.Float(), nullable=True),
        sa.Column("contracts", sa.Float(), nullable=True),
        sa.Column("source", sa.String(length=40), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("liquidation_events", schema=None) as batch_op:
        batch_op.create_index("ix_liquidation_events_account_time", ["account_id", "occurred_at"], unique=False)

    with op.batch_alter_table("account_snapshots", schema=None) as batch_op:
        batch_op.add_column(sa.Column("touch_probability", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("funding_health_1d", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("funding_health_3d", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("funding_health_7d", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("funding_breach_hours", sa.Float(), nullable=True))

    with op.batch_alter_table("position_snapshots", schema=None) as batch_op:
        batch_op.add_column(sa.Column("volatility", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("touch_probability", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("position_snapshots", schema=None) as batch_op:
        batch_op.drop_column("touch_probability")
        batch_op.drop_column("volatility")

    with op.batch_alter_table("account_snapshots", schema=None) as batch_op:
        batch_op.drop_column("funding_breach_hours")
        batch_op.drop_column("funding_health_7d")
        batch_op.drop_column("funding_health_3d")
        batch_op.drop_column("funding_health_1d")
        batch_op.drop_column("touch_probability")

    with op.batch_alter_table("liquidation_events", schema=None) as batch_op:
        batch_op.drop_index("ix_liquidation_events_account_time")

    op.drop_table("liquidation_events")
    op.drop_table("market_stats")
