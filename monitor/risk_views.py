"""Risk read models over the store, shared by the CLI and the dashboard: every account's
latest snapshot, the cross-account correlated stress, collateral rebalancing per owner,
and the deleverage plan priced against the stored order books. Pure once the rows are
read; nothing here calls an exchange."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.orm import Session

from margin.correlation import DEFAULT_BTC_SHOCKS, CorrelatedStress, correlated_stress
from margin.pools import pool_figures, pools
from margin.rebalance import AccountState, RebalancePlan, rebalance
from margin.remedies import deleverage_plan
from margin.slippage import PricedPlan, price_plan
from margin.snapshot import Snapshot, SnapshotError, parse_snapshot
from monitor.config import Config
from store import repo


@dataclass(frozen=True)
class Latest:
    name: str
    exchange: str
    snapshot: Snapshot


def latest_snapshots(session: Session, names: Sequence[str] | None = None) -> list[Latest]:
    """Each account's latest snapshot document, parsed (accounts without one are left out)."""
    result = []
    for account in repo.accounts(session):
        if not account.latest_document or (names is not None and account.name not in names):
            continue
        try:
            snapshot = parse_snapshot(json.loads(account.latest_document))
        except (SnapshotError, ValueError):
            continue
        result.append(Latest(account.name, account.exchange, snapshot))
    return result


def betas(session: Session) -> dict[str, float]:
    """Each symbol's beta to BTC, averaged over the venues that quote it."""
    values: dict[str, list[float]] = defaultdict(list)
    for stat in repo.market_stats(session):
        if stat.beta is not None:
            values[stat.symbol].append(stat.beta)
    return {symbol: sum(v) / len(v) for symbol, v in values.items()}


def cross_account_stress(session: Session, shocks: Sequence[float] = DEFAULT_BTC_SHOCKS,
                         target_health: float | None = None) -> CorrelatedStress:
    """Every account under BTC shocks, each symbol moved by its beta."""
    latest = latest_snapshots(session)
    result = correlated_stress([x.snapshot for x in latest], betas(session), shocks, target_health)
    return CorrelatedStress(tuple(x.name for x in latest), result.scenarios, result.liquidating_shock,
                            result.search_limit)


def rebalance_plans(session: Session, config: Config) -> dict[str, RebalancePlan]:
    """For every owner with two or more accounts of one collateral: the fewest transfers
    that bring each to its target health (or the shortfall)."""
    groups: dict[tuple[str, str], list[AccountState]] = defaultdict(list)
    latest = {x.name: x.snapshot for x in latest_snapshots(session)}
    for account in config.accounts:
        if account.owner is None or account.name not in latest:
            continue
        snapshot = latest[account.name]
        cross = pool_figures(snapshot, pools(snapshot)[0])
        target = account.target_health or config.target_health
        groups[(account.owner, snapshot.collateral)].append(
            AccountState(account.name, cross.equity, cross.maintenance_margin, target))
    return {f"{owner} ({collateral})": rebalance(states)
            for (owner, collateral), states in groups.items() if len(states) > 1}


def priced_deleverage(session: Session, name: str, target_health: float,
                      slippage: float = 0.0) -> PricedPlan | None:
    """The account's deleverage plan priced against the latest stored order books."""
    found = latest_snapshots(session, [name])
    if not found:
        return None
    snapshot = found[0].snapshot
    books = {}
    for stat in repo.market_stats(session, found[0].exchange):
        if stat.order_book:
            books[stat.symbol] = json.loads(stat.order_book)
    plan = deleverage_plan(snapshot, target_health, slippage)
    if not plan.reductions or not all(r.symbol in books for r in plan.reductions):
        return None
    return price_plan(snapshot, plan, books)
