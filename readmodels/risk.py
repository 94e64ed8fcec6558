"""Risk read models over the store, shared by the CLI and the dashboard: every account's
latest snapshot, the cross-account correlated stress, collateral rebalancing per owner,
and the deleverage plan priced against the stored order books. Pure once the rows are
read; nothing here calls an exchange."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from config.settings import Config
from margin.correlation import DEFAULT_BTC_SHOCKS, CorrelatedStress, correlated_stress
from margin.pools import pool_figures, pools
from margin.rebalance import AccountState, RebalancePlan, rebalance
from margin.remedies import DeleveragePlan, deleverage_plan
from margin.slippage import PricedPlan, price_plan
from margin.snapshot import Snapshot, SnapshotError, parse_snapshot
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


def cross_account_stress(
    session: Session, shocks: Sequence[float] = DEFAULT_BTC_SHOCKS, target_health: float | None = None
) -> CorrelatedStress:
    """Every account under BTC shocks, each symbol moved by its beta."""
    latest = latest_snapshots(session)
    result = correlated_stress([x.snapshot for x in latest], betas(session), shocks, target_health)
    return CorrelatedStress(
        tuple(x.name for x in latest),
        result.scenarios,
        result.liquidating_shock,
        result.search_limit,
        result.search_limit_up,
    )


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
        target = config.target_for(account)
        groups[(account.owner, snapshot.collateral)].append(
            AccountState(account.name, cross.equity, cross.maintenance_margin, target)
        )
    return {
        f"{owner} ({collateral})": rebalance(states)
        for (owner, collateral), states in groups.items()
        if len(states) > 1
    }


@dataclass(frozen=True)
class StoredBook:
    """An order book the poller stored (ccxt's structure, amounts in contracts) and when."""

    book: dict
    at: datetime | None


def stored_books(session: Session, exchange: str) -> dict[str, StoredBook]:
    """The latest stored order book of each of the venue's symbols that has one."""
    books = {}
    for stat in repo.market_stats(session, exchange):
        if not isinstance(stat.order_book, dict):  # none stored, or not a book: priced at mark
            continue
        try:
            books[stat.symbol] = StoredBook(stat.order_book, stat.order_book_at)
        except ValueError:  # a damaged row prices nothing; the plan is still shown at mark
            continue
    return books


@dataclass(frozen=True)
class PricedRemedy:
    """The deleverage plan and, when every symbol it trades has a stored book, the plan
    filled against those books; else the symbols without one."""

    plan: DeleveragePlan
    priced: PricedPlan | None
    missing_books: tuple[str, ...]
    books_at: dict[str, datetime | None]


def priced_remedy(
    snapshot: Snapshot, books: Mapping[str, StoredBook], target_health: float, slippage: float = 0.0
) -> PricedRemedy:
    """The deleverage plan of `snapshot` priced against its venue's stored books, or why it
    is not priced (nothing to cut, or which books are missing)."""
    plan = deleverage_plan(snapshot, target_health, slippage)
    symbols = sorted({r.symbol for r in plan.reductions})
    missing = tuple(s for s in symbols if s not in books)
    priced = None
    if symbols and not missing and not any(p.inverse for p in snapshot.positions):
        priced = price_plan(snapshot, plan, {s: books[s].book for s in symbols})
    return PricedRemedy(plan, priced, missing, {s: books[s].at for s in symbols if s in books})
