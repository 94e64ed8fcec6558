"""The Risk page's numbers: the cross-account correlated stress (readmodels.risk), the
betas it used, and the per-owner rebalancing plans, as tables. Read from the store and
recomputed with the engine; never from an exchange."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.components.context import DashboardContext
from margin.correlation import DEFAULT_BTC_SHOCKS, CorrelatedStress
from margin.rebalance import RebalancePlan
from readmodels.risk import cross_account_stress, rebalance_plans
from store import repo
from store.freshness import Staleness, is_stale, staleness
from store.schema import Account, MarketStat, PositionSnapshot

SHOCKS = (0.0, *DEFAULT_BTC_SHOCKS)  # "now" beside the shocks, for scale


@dataclass(frozen=True)
class RiskData:
    stress: CorrelatedStress | None  # None: no account has a snapshot document yet
    labels: dict[str, str]  # account name -> exchange/name
    collateral: dict[str, str]  # account name -> collateral currency
    stats: list[MarketStat]
    held: list[str]  # symbols of the latest positions
    plans: dict[str, RebalancePlan]
    target_health: float


def held_symbols(session: Session) -> list[str]:
    """The symbols of every account's latest positions (one join on latest_snapshot_id)."""
    query = (
        select(PositionSnapshot.symbol)
        .distinct()
        .join(Account, Account.latest_snapshot_id == PositionSnapshot.snapshot_id)
    )
    return sorted(session.scalars(query))


def load_risk(ctx: DashboardContext) -> RiskData:
    target = ctx.config.target_health
    with ctx.sessions() as session:
        accounts = repo.accounts(session)
        stress = (
            cross_account_stress(session, SHOCKS, target_health=target)
            if any(a.latest_document for a in accounts)
            else None
        )
        stats = repo.market_stats(session)
        held = held_symbols(session)
        plans = rebalance_plans(session, ctx.config)
    return RiskData(
        stress,
        {a.name: _label(a, staleness(ctx.config)) for a in accounts},
        {a.name: a.collateral for a in accounts},
        stats,
        held,
        plans,
        target,
    )


def _label(account: Account, stale: Staleness) -> str:
    """exchange/name, marked when its figures are not fresh: the stress uses its last snapshot."""
    label = f"{account.exchange}/{account.name}"
    if account.state != "active":
        return f"{label} ({account.state.upper()})"
    if is_stale(account.last_success_at, datetime.now(UTC), stale, account.consecutive_failures):
        return f"{label} (STALE)"
    return label


def shock_label(shock: float) -> str:
    return "now" if shock == 0 else f"BTC {shock * 100:+.0f} %"


def _number(value: float) -> float | None:
    return None if math.isnan(value) else float(value)


def stress_frame(stress: CorrelatedStress, labels: Mapping[str, str]) -> pd.DataFrame:
    """One row per account, those that liquidate first on top: the order, the BTC shock that
    liquidates it, and its worst pool's health under each shock (None: no position)."""
    order = {name: rank for rank, (name, _) in enumerate(stress.liquidation_order(), start=1)}
    rows = []
    for i, name in enumerate(stress.accounts):
        row: dict = {
            "order": order.get(name),
            "account": labels.get(name, name),
            "name": name,
            "liquidates_at": _number(stress.liquidating_shock[i]),
        }
        for scenario in stress.scenarios:
            row[shock_label(scenario.btc_shock)] = _number(scenario.worst_health[i])
        rows.append(row)
    frame = pd.DataFrame(
        rows,
        columns=["order", "account", "name", "liquidates_at", *(shock_label(s.btc_shock) for s in stress.scenarios)],
    )
    worst = frame.columns[-1] if len(stress.scenarios) else "account"
    # liquidation order first, then the weakest at the largest shock; no position last
    frame["_rank"] = frame["order"].fillna(math.inf)
    frame = frame.sort_values(["_rank", worst], na_position="last", kind="stable").drop(columns="_rank")
    return frame.reset_index(drop=True)


def shock_totals(stress: CorrelatedStress, collateral: Mapping[str, str], target_health: float) -> pd.DataFrame:
    """Per shock: accounts liquidated, and the collateral (per currency, summed over the
    accounts) that keeps every pool above its requirement, and that reaches the target."""
    currencies = [collateral.get(name, "?") for name in stress.accounts]
    rows = []
    for scenario in stress.scenarios:
        row: dict = {
            "shock": shock_label(scenario.btc_shock),
            "btc_shock": scenario.btc_shock,
            "liquidated": scenario.n_liquidated,
        }
        survive: dict[str, float] = defaultdict(float)
        target: dict[str, float] = defaultdict(float)
        for i, currency in enumerate(currencies):
            survive[currency] += float(scenario.collateral_to_survive[i])
            if scenario.collateral_to_target is not None:
                target[currency] += float(scenario.collateral_to_target[i])
        for currency in sorted(set(currencies)):
            row[f"to survive ({currency})"] = survive[currency]
            row[f"to health {target_health:g} ({currency})"] = target[currency]
        rows.append(row)
    return pd.DataFrame(rows)


def betas_frame(stats: list[MarketStat], held: list[str]) -> pd.DataFrame:
    """The beta used per symbol (the average over the venues that quote it, as
    readmodels.risk.betas does) and each venue's, with held symbols lacking one at 1."""
    per_symbol: dict[str, list[MarketStat]] = defaultdict(list)
    for stat in stats:
        if stat.beta is not None:
            per_symbol[stat.symbol].append(stat)
    rows = [
        {
            "symbol": symbol,
            "beta": float(np.mean([s.beta for s in found])),
            "venues": ", ".join(f"{s.exchange} {s.beta:.2f}" for s in found),
            "updated_at": max(s.updated_at for s in found),
        }
        for symbol, found in sorted(per_symbol.items())
    ]
    rows += [
        {"symbol": symbol, "beta": 1.0, "venues": "no beta stored: 1 assumed", "updated_at": None}
        for symbol in held
        if symbol not in per_symbol
    ]
    return pd.DataFrame(rows, columns=["symbol", "beta", "venues", "updated_at"])


def rebalance_frames(plans: Mapping[str, RebalancePlan]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(one row per owner group, one row per transfer)."""
    summary = [
        {
            "owner": owner,
            "transfers": len(p.transfers),
            "method": p.method,
            "moved": p.total_moved,
            "deficit": p.total_deficit,
            "surplus": p.total_surplus,
            "shortfall": p.shortfall,
        }
        for owner, p in plans.items()
    ]
    transfers = [
        {"owner": owner, "from": t.source, "to": t.destination, "amount": t.amount}
        for owner, p in plans.items()
        for t in p.transfers
    ]
    return (
        pd.DataFrame(summary, columns=["owner", "transfers", "method", "moved", "deficit", "surplus", "shortfall"]),
        pd.DataFrame(transfers, columns=["owner", "from", "to", "amount"]),
    )
