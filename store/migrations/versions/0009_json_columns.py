"""JSON columns: what was JSON in text (an alert state's counts, a notification's payload
and recipients, a market's stored order book) is stored as JSON (PostgreSQL's json type;
SQLite keeps the text), read and written as values by SQLAlchemy.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

# (table, column, the text type it had, nullable)
COLUMNS = [
    ("alert_states", "counts", lambda: sa.String(length=60), False),
    ("alert_notifications", "payload", lambda: sa.Text(), False),
    ("alert_notifications", "recipients", lambda: sa.Text(), False),
    ("market_stats", "order_book", lambda: sa.Text(), True),
]


def _change(to_json: bool) -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    for table, column, text, nullable in COLUMNS:
        new, old = (sa.JSON(), text()) if to_json else (text(), sa.JSON())
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.alter_column(
                column,
                existing_type=old,
                type_=new,
                existing_nullable=nullable,
                postgresql_using=f"{column}::{'json' if to_json else 'text'}" if postgres else None,
            )


def upgrade() -> None:
    _change(to_json=True)


def downgrade() -> None:
    _change(to_json=False)
