"""Alert identity and threads: each notification's stable Message-ID, the account incident it
belongs to (one thread from the first warning to the resolution), the rules' recovery dwell,
and each market's price tick (prices in messages at the market's precision).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05
"""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

NOTIFICATION_COLUMNS = [  # (name, type): nullable (rows written before this revision get ids below)
    ("uuid", lambda: sa.String(length=36)),  # the notification id given to webhooks
    ("message_id", lambda: sa.String(length=255)),  # "<...@domain>", the same on every resend
    ("incident_id", lambda: sa.String(length=36)),
    ("thread_id", lambda: sa.String(length=255)),  # the incident's first Message-ID
]


def upgrade() -> None:
    op.create_table(
        "alert_incidents",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("opened_at", sa.BigInteger(), nullable=False),
        sa.Column("closed_at", sa.BigInteger(), nullable=True),
        sa.Column("first_level", sa.Integer(), nullable=False),
        sa.Column("worst_level", sa.Integer(), nullable=False),
        sa.Column("worst_at", sa.BigInteger(), nullable=False),
        sa.Column("worst_distance", sa.Float(), nullable=True),
        sa.Column("worst_detail", sa.Text(), nullable=True),
        sa.Column("root_message_id", sa.String(length=255), nullable=True),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("alert_incidents", schema=None) as batch_op:
        batch_op.create_index("ix_alert_incidents_account_open", ["account_id", "closed_at"], unique=False)
    with op.batch_alter_table("alert_notifications", schema=None) as batch_op:
        for name, kind in NOTIFICATION_COLUMNS:
            batch_op.add_column(sa.Column(name, kind(), nullable=True))
    # Rows written before this revision: ids that no other database can hold
    notifications = sa.table(
        "alert_notifications", sa.column("id", sa.Integer), sa.column("uuid"), sa.column("message_id")
    )
    connection = op.get_bind()
    for (row_id,) in connection.execute(sa.select(notifications.c.id)).all():
        key = str(uuid.uuid4())
        connection.execute(
            notifications.update()
            .where(notifications.c.id == row_id)
            .values(uuid=key, message_id=f"<alert-{key}@marginwatch.invalid>")
        )
    with op.batch_alter_table("alert_notifications", schema=None) as batch_op:
        batch_op.create_index("ix_alert_notifications_uuid", ["uuid"], unique=True)
    with op.batch_alter_table("alert_states", schema=None) as batch_op:
        batch_op.add_column(sa.Column("calm_since", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("clear_since", sa.BigInteger(), nullable=True))
    with op.batch_alter_table("market_stats", schema=None) as batch_op:
        batch_op.add_column(sa.Column("price_tick", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("market_stats", schema=None) as batch_op:
        batch_op.drop_column("price_tick")
    with op.batch_alter_table("alert_states", schema=None) as batch_op:
        batch_op.drop_column("clear_since")
        batch_op.drop_column("calm_since")
    with op.batch_alter_table("alert_notifications", schema=None) as batch_op:
        batch_op.drop_index("ix_alert_notifications_uuid")
        for name, _ in reversed(NOTIFICATION_COLUMNS):
            batch_op.drop_column(name)
    with op.batch_alter_table("alert_incidents", schema=None) as batch_op:
        batch_op.drop_index("ix_alert_incidents_account_open")
    op.drop_table("alert_incidents")
