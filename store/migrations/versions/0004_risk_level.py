"""The risk level: liquidation prices on both sides, each snapshot's level and nearest
liquidation.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

Column = tuple[str, Callable[[], sa.types.TypeEngine[Any]]]  # (name, a maker of its type)
ACCOUNT_COLUMNS: list[Column] = [  # (name, type): all nullable
    ("level", sa.Integer),  # 0 ok, 1 warning, 2 critical (margin.danger)
    ("danger_chance", sa.Float),  # over the configured horizon
    ("nearest_symbol", lambda: sa.String(length=60)),
    ("nearest_side", lambda: sa.String(length=5)),  # long | short
    ("nearest_liquidation_side", lambda: sa.String(length=4)),  # down | up
    ("nearest_liquidation_price", sa.Float),
    ("nearest_sigma", sa.Float),
]
POSITION_COLUMNS: list[Column] = [
    ("liquidation_price_down", sa.Float),
    ("liquidation_price_up", sa.Float),
    ("liquidation_side", lambda: sa.String(length=4)),
    ("level", sa.Integer),
]


def upgrade() -> None:
    with op.batch_alter_table("account_snapshots", schema=None) as batch_op:
        for name, kind in ACCOUNT_COLUMNS:
            batch_op.add_column(sa.Column(name, kind(), nullable=True))
    with op.batch_alter_table("position_snapshots", schema=None) as batch_op:
        for name, kind in POSITION_COLUMNS:
            batch_op.add_column(sa.Column(name, kind(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("position_snapshots", schema=None) as batch_op:
        for name, _ in reversed(POSITION_COLUMNS):
            batch_op.drop_column(name)
    with op.batch_alter_table("account_snapshots", schema=None) as batch_op:
        for name, _ in reversed(ACCOUNT_COLUMNS):
            batch_op.drop_column(name)
