"""The overview's numbers: one row per account, worst first, and the totals above them.
Everything comes from a handful of small queries (latest snapshot per account through
accounts.latest_snapshot_id, alert levels, silences), never from the history."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

import pandas as pd
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from alerts.silences import active_silences
from app.components import fmt
from app.components.context import DashboardContext
from app.components.levels import ALERT_NAMES, NOT_WATCHED, ORDER, STALE, data_label
from readmodels.accounts import account_views
from readmodels.actions import ActionCard, load_action_cards
from readmodels.positions import GridRow, position_grid
from store.freshness import staleness
from store.schema import AccountSnapshot, AlertState


@dataclass(frozen=True)
class Overview:
    frame: pd.DataFrame  # one row per account, worst first; numbers left numeric
    counts: dict[str, int]  # accounts per level
    equity: dict[str, float]  # total per collateral currency
    topup: dict[str, float]  # total top-up to target per collateral currency
    positions: list[GridRow]  # every open position, accounts worst first
    actions: list[ActionCard]  # one per account in danger, worst first


def alert_levels(session: Session) -> dict[int, int]:
    """The highest level firing for each account (0: none)."""
    rows = session.execute(select(AlertState.account_id, func.max(AlertState.level)).group_by(AlertState.account_id))
    return {account_id: int(top or 0) for account_id, top in rows}


def latest_risk(session: Session, snapshot_ids: list[int]) -> dict[int, tuple[float | None, float | None]]:
    """(24 h liquidation chance, funding breach hours) of each latest snapshot: one query
    by primary key, never the history."""
    if not snapshot_ids:
        return {}
    rows = session.execute(
        select(AccountSnapshot.id, AccountSnapshot.touch_probability, AccountSnapshot.funding_breach_hours).where(
            AccountSnapshot.id.in_(snapshot_ids)
        )
    )
    return {sid: (touch, breach) for sid, touch, breach in rows}


def funding_flag(breach_hours: float | None, warning: float) -> str:
    """The overview's short form of the account page's funding flag."""
    if fmt.funding_breach_text(breach_hours, warning) is None:
        return fmt.DASH
    return f"⚠ < {warning:g} in {fmt.hours(breach_hours)}"


def _alert_text(top: int | None, silenced: bool) -> str:
    if not top:
        return "—"
    return ALERT_NAMES.get(top, str(top)) + (" (silenced)" if silenced else "")


def load_overview(ctx: DashboardContext, now: datetime) -> Overview:
    with ctx.sessions() as session:
        views = account_views(session, now, staleness(ctx.config))
        alerts = alert_levels(session)
        risk = latest_risk(session, [v.snapshot_id for v in views if v.snapshot_id is not None])
        grid = position_grid(session, now, staleness(ctx.config), views)
        actions = load_action_cards(session, views, ctx.config)
    silences = active_silences(ctx.sessions, now)
    silence_all = any(s.account is None for s in silences)
    silenced = {s.account for s in silences}
    rows = []
    counts = dict.fromkeys(ORDER, 0)
    equity: dict[str, float] = defaultdict(float)
    topup: dict[str, float] = defaultdict(float)
    for v in views:
        rules = ctx.rules(v.name)
        lvl = v.level
        counts[lvl] += 1
        if v.equity is not None:
            equity[v.collateral] += v.equity
        if v.topup_to_target is not None and lvl not in (STALE, NOT_WATCHED):
            topup[v.collateral] += v.topup_to_target
        touch, breach = risk.get(v.snapshot_id, (None, None)) if v.snapshot_id is not None else (None, None)
        rows.append(
            {
                "account_id": v.account_id,
                "account": f"{v.exchange}/{v.name}",
                "name": v.name,
                "exchange": v.exchange,
                "collateral": v.collateral,
                "level": lvl,
                "health": v.worst_health,
                "cross_health": v.health,
                "critical_below": rules.critical_below,
                "warning_below": rules.warning_below,
                "equity": v.equity,
                "maintenance_margin": v.maintenance_margin,
                "margin_ratio": v.margin_ratio,
                "topup_to_target": v.topup_to_target,
                "nearest_distance": v.nearest.distance if v.nearest else None,
                "nearest_sigma": v.nearest.distance_sigma if v.nearest else None,
                "nearest_side": v.nearest.liquidation_side if v.nearest else None,
                "nearest_symbol": v.nearest.symbol if v.nearest else None,
                "touch_probability": touch,
                "funding": funding_flag(breach, rules.warning_below),
                "data": data_label(v, fmt.age(v.age_seconds)),
                "age_seconds": v.age_seconds,
                "alert": _alert_text(alerts.get(v.account_id), silence_all or v.name in silenced),
                "key": v.key_status or "not checked",
                "positions": v.positions,
                "problem": v.problem,
            }
        )
    frame = pd.DataFrame(rows, columns=COLUMNS)
    return Overview(frame, counts, dict(equity), dict(topup), grid, actions)


COLUMNS = [
    "account_id",
    "account",
    "name",
    "exchange",
    "collateral",
    "level",
    "health",
    "cross_health",
    "critical_below",
    "warning_below",
    "equity",
    "maintenance_margin",
    "margin_ratio",
    "topup_to_target",
    "nearest_distance",
    "nearest_sigma",
    "nearest_side",
    "nearest_symbol",
    "touch_probability",
    "funding",
    "data",
    "age_seconds",
    "alert",
    "key",
    "positions",
    "problem",
]
