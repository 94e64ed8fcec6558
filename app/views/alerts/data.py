"""The alerts page's data: the transition history and, from it, the intervals during
which each rule of each account was above OK (for the timeline)."""

from __future__ import annotations

from datetime import datetime

import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from store.schema import Account, AlertTransition

TRANSITION_COLUMNS = ["account", "subject", "kind", "from_level", "to_level", "value", "at", "muted"]


def transitions_frame(session: Session, since: datetime, limit: int = 5000) -> pd.DataFrame:
    """Every level change (and repeat) since `since`, oldest first."""
    rows = session.execute(
        select(Account.exchange, Account.name, AlertTransition)
        .outerjoin(Account, Account.id == AlertTransition.account_id)  # the monitor's own: no account
        .where(AlertTransition.at >= since)
        .order_by(AlertTransition.at.desc(), AlertTransition.id.desc())
        .limit(limit)
    )
    records = [
        {
            "account": f"{exchange}/{name}" if name is not None else "marginwatch",
            "subject": t.subject,
            "kind": t.kind,
            "from_level": t.from_level,
            "to_level": t.to_level,
            "value": t.value,
            "at": t.at,
            "muted": t.muted,
        }
        for exchange, name, t in rows
    ]
    frame = pd.DataFrame(records, columns=TRANSITION_COLUMNS)
    return frame.iloc[::-1].reset_index(drop=True)


def timeline_intervals(transitions: pd.DataFrame, since: datetime, now: datetime) -> pd.DataFrame:
    """(row, level, start, end) for each stretch above OK; a rule already firing when the
    window opens starts at `since` (its first transition's from_level says so)."""
    intervals = []
    for (account, subject), part in transitions.groupby(["account", "subject"], sort=True):
        level = int(part.iloc[0]["from_level"])
        start = since
        for t in part.itertuples():
            if int(t.to_level) != level:
                if level > 0:
                    intervals.append((f"{account} · {subject}", level, start, t.at))
                level, start = int(t.to_level), t.at
        if level > 0:
            intervals.append((f"{account} · {subject}", level, start, now))
    return pd.DataFrame(intervals, columns=["row", "level", "start", "end"])
