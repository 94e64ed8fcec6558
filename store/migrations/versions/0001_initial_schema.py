"""Initial schema: accounts, snapshots (raw and hourly), positions, poll errors, key checks.

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "accounts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("exchange", sa.String(length=40), nullable=False),
        sa.Column("sub_account", sa.String(length=120), nullable=True),
        sa.Column("collateral", sa.String(length=20), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("state_reason", sa.Text(), nullable=True),
        sa.Column("state_since", sa.BigInteger(), nullable=True),
        sa.Column("last_attempt_at", sa.BigInteger(), nullable=True),
        sa.Column("last_success_at", sa.BigInteger(), nullable=True),
        sa.Column("consecutive_failures", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("latest_snapshot_id", sa.BigInteger(), nullable=True),
        sa.Column("latest_document", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "account_snapshots",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("taken_at", sa.BigInteger(), nullable=False),
        sa.Column("exchange_time", sa.BigInteger(), nullable=True),
        sa.Column("wallet_balance", sa.Float(), nullable=False),
        sa.Column("equity", sa.Float(), nullable=False),
        sa.Column("maintenance_margin", sa.Float(), nullable=False),
        sa.Column("health", sa.Float(), nullable=True),
        sa.Column("margin_ratio", sa.Float(), nullable=True),
        sa.Column("worst_health", sa.Float(), nullable=True),
        sa.Column("deficit", sa.Float(), nullable=False),
        sa.Column("topup_to_target", sa.Float(), nullable=False),
        sa.Column("target_health", sa.Float(), nullable=False),
        sa.Column("nearest_distance", sa.Float(), nullable=True),
        sa.Column("positions", sa.Integer(), nullable=False),
        sa.Column("latency_ms", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("account_snapshots", schema=None) as batch_op:
        batch_op.create_index("ix_account_snapshots_account_time", ["account_id", "taken_at"], unique=False)

    op.create_table(
        "account_snapshots_hourly",
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("hour", sa.BigInteger(), nullable=False),
        sa.Column("last_equity", sa.Float(), nullable=False),
        sa.Column("last_maintenance_margin", sa.Float(), nullable=False),
        sa.Column("min_health", sa.Float(), nullable=True),
        sa.Column("max_margin_ratio", sa.Float(), nullable=True),
        sa.Column("samples", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("account_id", "hour"),
    )
    op.create_table(
        "key_checks",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("checked_at", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("can_trade", sa.Boolean(), nullable=False),
        sa.Column("can_withdraw", sa.Boolean(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("key_checks", schema=None) as batch_op:
        batch_op.create_index("ix_key_checks_account_time", ["account_id", "checked_at"], unique=False)

    op.create_table(
        "poll_errors",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("occurred_at", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("error_class", sa.String(length=80), nullable=True),
        sa.Column("message", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("poll_errors", schema=None) as batch_op:
        batch_op.create_index("ix_poll_errors_account_time", ["account_id", "occurred_at"], unique=False)

    op.create_table(
        "position_snapshots",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("snapshot_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("symbol", sa.String(length=60), nullable=False),
        sa.Column("side", sa.String(length=5), nullable=False),
        sa.Column("margin_mode", sa.String(length=8), nullable=False),
        sa.Column("contracts", sa.Float(), nullable=False),
        sa.Column("contract_size", sa.Float(), nullable=False),
        sa.Column("entry_price", sa.Float(), nullable=False),
        sa.Column("mark_price", sa.Float(), nullable=False),
        sa.Column("notional", sa.Float(), nullable=False),
        sa.Column("unrealized_pnl", sa.Float(), nullable=False),
        sa.Column("maintenance_margin", sa.Float(), nullable=False),
        sa.Column("leverage", sa.Float(), nullable=True),
        sa.Column("isolated_margin", sa.Float(), nullable=True),
        sa.Column("liquidation_price", sa.Float(), nullable=True),
        sa.Column("exchange_liquidation_price", sa.Float(), nullable=True),
        sa.Column("disagrees", sa.Boolean(), nullable=False),
        sa.Column("distance", sa.Float(), nullable=True),
        sa.Column("distance_sigma", sa.Float(), nullable=True),
        sa.Column("health", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(["snapshot_id"], ["account_snapshots.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("position_snapshots", schema=None) as batch_op:
        batch_op.create_index("ix_position_snapshots_snapshot", ["snapshot_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("position_snapshots", schema=None) as batch_op:
        batch_op.drop_index("ix_position_snapshots_snapshot")

    op.drop_table("position_snapshots")
    with op.batch_alter_table("poll_errors", schema=None) as batch_op:
        batch_op.drop_index("ix_poll_errors_account_time")

    op.drop_table("poll_errors")
    with op.batch_alter_table("key_checks", schema=None) as batch_op:
        batch_op.drop_index("ix_key_checks_account_time")

    op.drop_table("key_checks")
    op.drop_table("account_snapshots_hourly")
    with op.batch_alter_table("account_snapshots", schema=None) as batch_op:
        batch_op.drop_index("ix_account_snapshots_account_time")

    op.drop_table("account_snapshots")
    op.drop_table("accounts")
