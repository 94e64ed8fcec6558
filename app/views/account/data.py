"""What the account page reads from the store: the account, its latest positions (with
each market's amount step from the snapshot document), its downsampled history, its
liquidations, and the funding rates of the symbols it holds."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime, timedelta

import pandas as pd
from sqlalchemy.orm import Session

from margin.funding import DEFAULT_INTERVAL_HOURS, funding_payment
from margin.snapshot import Snapshot
from readmodels.accounts import account_views
from store import repo
from store.freshness import Staleness
from store.history import history
from store.schema import Account, AccountSnapshot, MarketStat

WINDOWS = {
    "6 h": timedelta(hours=6),
    "24 h": timedelta(days=1),
    "7 d": timedelta(days=7),
    "30 d": timedelta(days=30),
    "90 d": timedelta(days=90),
}
POSITION_COLUMNS = [
    "symbol",
    "side",
    "margin_mode",
    "contracts",
    "entry_price",
    "mark_price",
    "liquidation_price",
    "liquidation_side",
    "liquidation_price_down",
    "liquidation_price_up",
    "exchange_liquidation_price",
    "disagrees",
    "distance",
    "distance_sigma",
    "touch_probability",
    "maintenance_margin",
    "unrealized_pnl",
    "notional",
    "leverage",
    "isolated_margin",
    "health",
    "volatility",
    "amount_step",
]
LIQUIDATION_COLUMNS = ["occurred_at", "symbol", "side", "contracts", "price", "source", "detected_at", "detail"]
FUNDING_COLUMNS = [
    "symbol",
    "side",
    "margin_mode",
    "funding_rate",
    "predicted_funding_rate",
    "funding_interval_hours",
    "next_funding_at",
    "per_day",
    "rates_at",
]


def stored_accounts(session: Session, now: datetime, stale: Staleness) -> list[Account]:
    """Every stored account in the overview's order (worst first): the account box opens on
    the account most in danger."""
    order = {v.account_id: i for i, v in enumerate(account_views(session, now, stale))}
    return sorted(repo.accounts(session), key=lambda a: order.get(a.id, len(order)))


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


def history_frame(
    session: Session, account_id: int, window: timedelta, now: datetime, buckets: int = 600
) -> pd.DataFrame:
    rows = history(session, account_id, now - window, now, buckets)
    columns = ["at", "min_health", "max_margin_ratio", "equity", "maintenance_margin", "samples", "source"]
    return pd.DataFrame([asdict(r) for r in rows], columns=columns)


def liquidations_frame(session: Session, account_id: int) -> pd.DataFrame:
    """Every liquidation the poller found in the venue's history for this account, oldest first."""
    rows = repo.liquidations(session, account_id)
    return pd.DataFrame([{c: getattr(r, c) for c in LIQUIDATION_COLUMNS} for r in rows], columns=LIQUIDATION_COLUMNS)


def funding_frame(snapshot: Snapshot, stats: Sequence[MarketStat]) -> pd.DataFrame:
    """Per position: its symbol's current and predicted funding rate (fractions per
    interval; positive: longs pay), the next settlement, and what the position receives
    per day at the current rate (negative: it pays). Symbols without a stored rate show
    blanks."""
    by_symbol = {s.symbol: s for s in stats}
    records = []
    for pos in snapshot.positions:
        stat = by_symbol.get(pos.symbol)
        rate = stat.funding_rate if stat else None
        interval = (stat.funding_interval_hours if stat else None) or DEFAULT_INTERVAL_HOURS
        next_at = None
        if stat is not None and stat.hours_to_funding is not None:
            next_at = stat.updated_at + timedelta(hours=stat.hours_to_funding)
        records.append(
            {
                "symbol": pos.symbol,
                "side": pos.side,
                "margin_mode": pos.margin_mode,
                "funding_rate": rate,
                "predicted_funding_rate": stat.predicted_funding_rate if stat else None,
                "funding_interval_hours": interval if rate is not None else None,
                "next_funding_at": next_at,
                "per_day": None if rate is None else funding_payment(pos, rate) * 24.0 / interval,
                "rates_at": stat.updated_at if stat and rate is not None else None,
            }
        )
    return pd.DataFrame(records, columns=FUNDING_COLUMNS)
