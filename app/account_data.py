"""What the account page reads from the store: the account, its latest positions (with
each market's amount step from the snapshot document) and its downsampled history."""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import datetime, timedelta

import pandas as pd
from sqlalchemy.orm import Session

from store import repo
from store.history import history
from store.schema import Account, AccountSnapshot

WINDOWS = {"6 h": timedelta(hours=6), "24 h": timedelta(days=1), "7 d": timedelta(days=7),
           "30 d": timedelta(days=30), "90 d": timedelta(days=90)}
POSITION_COLUMNS = ["symbol", "side", "margin_mode", "contracts", "entry_price", "mark_price",
                    "liquidation_price", "exchange_liquidation_price", "disagrees", "distance",
                    "distance_sigma", "maintenance_margin", "unrealized_pnl", "notional", "leverage",
                    "isolated_margin", "health", "amount_step"]


def stored_accounts(session: Session) -> list[Account]:
    return repo.accounts(session)


def latest(session: Session, account: Account) -> AccountSnapshot | None:
    if account.latest_snapshot_id is None:
        return None
    return session.get(AccountSnapshot, account.latest_snapshot_id)


def _amount_steps(document: str | None) -> list[float | None]:
    if not document:
        return []
    try:
        return [p.get("amount_step") for p in json.loads(document).get("positions", [])]
    except (ValueError, AttributeError):
        return []


def positions_frame(session: Session, account: Account) -> pd.DataFrame:
    """The latest snapshot's positions, in the order the exchange listed them."""
    if account.latest_snapshot_id is None:
        return pd.DataFrame(columns=POSITION_COLUMNS)
    rows = repo.latest_positions(session, account.latest_snapshot_id)
    steps = _amount_steps(account.latest_document)
    records = []
    for i, row in enumerate(rows):
        record = {c: getattr(row, c, None) for c in POSITION_COLUMNS}
        # positions are stored in document order, so the i-th row is the i-th position
        record["amount_step"] = steps[i] if i < len(steps) else None
        records.append(record)
    return pd.DataFrame(records, columns=POSITION_COLUMNS)


def history_frame(session: Session, account_id: int, window: timedelta, now: datetime,
                  buckets: int = 600) -> pd.DataFrame:
    rows = history(session, account_id, now - window, now, buckets)
    columns = ["at", "min_health", "max_margin_ratio", "equity", "maintenance_margin", "samples", "source"]
    return pd.DataFrame([asdict(r) for r in rows], columns=columns)
