"""The vectorised results (margin.vectorised) corrected for multi-collateral accounts.

The vectorised engine values a cross pool as wallet + PnL; a multi-collateral account's
cross pool is its assets after haircut, moving with their prices (margin.collateral). Their
cross figures and the liquidation prices of their cross positions come from the vectorised
collateral engine (margin.collateral_vectorised, margin.collateral_prices: the scalar
engine's numbers, all accounts at once) and are written over the batch's: one source of
truth for the poller, the report and the alerts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from margin.collateral_prices import collateral_health_prices
from margin.collateral_vectorised import CollateralBatch, collateral_batch, collateral_figures
from margin.snapshot import Snapshot
from margin.vectorised import Batch, BatchResult, nearest_side


def with_multi_collateral(
    batch: Batch, result: BatchResult, snapshots: Sequence[Snapshot], collateral: CollateralBatch | None = None
) -> BatchResult:
    """`result` with every multi-collateral account's cross pool valued by its assets and
    its cross positions' liquidation prices moving the collateral (margin.
    collateral_vectorised, margin.collateral_prices); unchanged, the same object, when there
    is none. `collateral`: the batch's asset rows when the caller has built them."""
    cb = collateral if collateral is not None else collateral_batch(batch, snapshots)
    if cb is None:
        return result
    figures = collateral_figures(cb, result.unrealized_pnl, result.maintenance_margin)
    multi = cb.pool_multi
    n_pools = multi.shape[0]
    held = np.bincount(batch.pool, minlength=n_pools) > 0
    equity = np.where(multi, figures.equity, result.pool_equity)
    maintenance = np.where(multi, figures.maintenance_margin, result.pool_maintenance)
    with np.errstate(divide="ignore", invalid="ignore"):
        own_health = np.where(held & (maintenance > 0), equity / maintenance, np.nan)
    health = np.where(multi, own_health, result.pool_health)
    account_health = result.account_health.copy()
    account_health[batch.pool_account[multi]] = health[multi]
    # the worst pool of each multi-collateral account, again with its cross pool's new health
    accounts = np.unique(batch.pool_account[multi])
    mine = np.isin(batch.pool_account, accounts)
    worst = result.account_worst_health.copy()
    lowest = np.full(batch.n_accounts, np.inf)
    np.minimum.at(lowest, batch.pool_account[mine], np.where(np.isnan(health[mine]), np.inf, health[mine]))
    worst[accounts] = np.where(np.isinf(lowest[accounts]), np.nan, lowest[accounts])

    rows = cb.settle >= 0
    down, up = collateral_health_prices(cb, batch, result.unrealized_pnl, result.maintenance_margin)
    nearest, side, distance = nearest_side(batch.mark, down, up, (equity >= maintenance)[batch.pool])
    return replace(
        result,
        pool_equity=equity,
        pool_maintenance=maintenance,
        pool_health=health,
        account_health=account_health,
        account_worst_health=worst,
        liquidation_price_down=np.where(rows, down, result.liquidation_price_down),
        liquidation_price_up=np.where(rows, up, result.liquidation_price_up),
        liquidation_price=np.where(rows, nearest, result.liquidation_price),
        liquidation_side=np.where(rows, side, result.liquidation_side),
        distance=np.where(rows, distance, result.distance),
    )
