"""The watcher is watched: pollers (the watchdog's record of each poller's last cycle),
account leases (several pollers on PostgreSQL), daily digests, and monitor alerts that
belong to no account (alert_transitions and alert_notifications.account_id nullable).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pollers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.BigInteger(), nullable=False),
        sa.Column("seen_at", sa.BigInteger(), nullable=False),
        sa.Column("last_cycle_at", sa.BigInteger(), nullable=True),
        sa.Column("stopped_at", sa.BigInteger(), nullable=True),
        sa.Column("interval_seconds", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "account_leases",
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("poller_id", sa.Integer(), nullable=True),
        sa.Column("interval_no", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("account_id"),
    )
    op.create_table(
        "alert_digests",
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("notification_id", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("day"),
    )
    for table in ("alert_transitions", "alert_notifications"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.alter_column("account_id", existing_type=sa.Integer(), nullable=True)


def downgrade() -> None:
    # the monitor's own alerts have no account: they cannot be kept under the old schema
    op.execute(
        "DELETE FROM alert_deliveries WHERE notification_id IN "
        "(SELECT id FROM alert_notifications WHERE account_id IS NULL)"
    )
    op.execute("DELETE FROM alert_notifications WHERE account_id IS NULL")
    op.execute("DELETE FROM alert_transitions WHERE account_id IS NULL")
    for table in ("alert_notifications", "alert_transitions"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.alter_column("account_id", existing_type=sa.Integer(), nullable=False)
    op.drop_table("alert_digests")
    op.drop_table("account_leases")
    op.drop_table("pollers")
