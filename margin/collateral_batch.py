"""The vectorised results (margin.vectorised) corrected for multi-collateral accounts.

The vectorised engine values a cross pool as wallet + PnL; a multi-collateral account's
cross pool is its assets after haircut, moving with their prices (margin.collateral). Such
accounts are few next to the positions a cycle evaluates, so their cross figures and the
liquidation prices of their cross positions are taken from the scalar engine and written
over the batch's: one source of truth for the poller, the report and the alerts.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import replace

import numpy as np

from margin.collateral import account_figures
from margin.liquidation import all_liquidations
from margin.pools import pool_figures, pools
from margin.snapshot import Snapshot
from margin.vectorised import Batch, BatchResult


def with_multi_collateral(batch: Batch, result: BatchResult, snapshots: Sequence[Snapshot]) -> BatchResult:
    """`result` with every multi-collateral account's cross pool and cross positions taken
    from margin.collateral (unchanged, the same object, when there is none)."""
    multi = [a for a, s in enumerate(snapshots) if s.multi_collateral]
    if not multi:
        return result
    arrays = {name: np.array(getattr(result, name), copy=True) for name in result.__dataclass_fields__}
    # one pass to group rows and pools by account (not a scan per account)
    wanted = set(multi)
    cross_of = {
        int(batch.pool_account[k]): int(k)
        for k in np.flatnonzero(batch.pool_is_cross)
        if batch.pool_account[k] in wanted
    }
    pools_of: dict[int, list[int]] = {}
    for k, owner in enumerate(batch.pool_account.tolist()):
        if owner in wanted:
            pools_of.setdefault(owner, []).append(k)
    rows_of: dict[int, list[int]] = {}
    for r, (owner, pool) in enumerate(zip(batch.account.tolist(), batch.pool.tolist(), strict=True)):
        if owner in wanted and pool == cross_of.get(owner):
            rows_of.setdefault(owner, []).append(r)
    for a in multi:
        snap = snapshots[a]
        if a not in cross_of:
            continue
        p = cross_of[a]
        figures = pool_figures(snap, pools(snap)[0])
        arrays["pool_equity"][p] = figures.equity
        arrays["pool_maintenance"][p] = figures.maintenance_margin
        health = figures.health
        arrays["pool_health"][p] = math.nan if health is None else health
        arrays["account_health"][a] = arrays["pool_health"][p]
        found = all_liquidations(snap)
        for r in rows_of.get(a, []):
            liquidation = found[int(batch.index[r])]
            arrays["liquidation_price_down"][r] = _nan(liquidation.down)
            arrays["liquidation_price_up"][r] = _nan(liquidation.up)
            arrays["liquidation_price"][r] = _nan(liquidation.nearest)
            arrays["liquidation_side"][r] = {"down": -1, "up": 1, None: 0}[liquidation.side]
            arrays["distance"][r] = _nan(liquidation.distance)
        own = arrays["pool_health"][pools_of[a]]
        known = own[~np.isnan(own)]
        arrays["account_worst_health"][a] = known.min() if known.size else math.nan
    return replace(result, **arrays)


def _nan(value: float | None) -> float:
    return math.nan if value is None else value


def with_shocked_collateral(
    batch: Batch,
    result: BatchResult,
    snapshots: Sequence[Snapshot],
    factor_of: Callable[[int], Callable[[str], float]],
) -> BatchResult:
    """`result` at shocked prices with every multi-collateral account's cross pool valued by
    margin.collateral, each symbol and each collateral asset moved by `factor_of(pool)`
    (margin.correlation's BTC shock with betas: BTC collateral falls with BTC even where the
    account holds no BTC position)."""
    multi = [a for a, s in enumerate(snapshots) if s.multi_collateral]
    if not multi:
        return result
    equity = np.array(result.pool_equity, copy=True)
    requirement = np.array(result.pool_maintenance, copy=True)
    health = np.array(result.pool_health, copy=True)
    account_health = np.array(result.account_health, copy=True)
    worst = np.array(result.account_worst_health, copy=True)
    wanted = set(multi)
    cross_of = {
        int(batch.pool_account[k]): int(k)
        for k in np.flatnonzero(batch.pool_is_cross)
        if batch.pool_account[k] in wanted
    }
    for a in multi:
        if a not in cross_of:
            continue
        p = cross_of[a]
        snap = snapshots[a]
        figures = account_figures(snap, pools(snap)[0], factor=factor_of(p))
        equity[p], requirement[p] = figures.equity, figures.maintenance_margin
        has = bool(np.any(batch.pool == p)) and figures.maintenance_margin > 0
        health[p] = figures.equity / figures.maintenance_margin if has else math.nan
        account_health[a] = health[p]
        own = health[batch.pool_account == a]
        known = own[~np.isnan(own)]
        worst[a] = known.min() if known.size else math.nan
    return replace(
        result,
        pool_equity=equity,
        pool_maintenance=requirement,
        pool_health=health,
        account_health=account_health,
        account_worst_health=worst,
    )
