"""Multi-collateral accounts, vectorised: margin.collateral's figures and
margin.collateral_liquidation's prices for every such account of a batch at once.

The batch (margin.vectorised) holds the positions; this module adds the accounts' assets as
rows of their own: per asset, its units (amount plus the wallet change on the collateral
asset), price in the valuation currency, haircut bands, loan and the symbol whose mark moves
it. Each multi-collateral account also gets one row for its valuation currency itself
(price 1, counted in full), which holds the PnL and maintenance that settle in it when it
is not a listed asset (margin.collateral's "loose" money): one code path for both.

Liquidation prices follow margin.collateral_liquidation step for step, per hedge group (one
symbol in the account's cross pool), all groups at once: the gap (equity − health x level
x maintenance) at the mark; the same candidate points (the legs' tier floors, band edges,
1e-6 x mark below, a 25 % grid where a piece is quadratic); the first sign change on each
side; the same false-position search (Illinois) inside it; the same extension of the last
piece upward. The results equal the scalar engine's to rounding (tests/test_collateral_
vectorised.py).

Units: asset amounts in asset units, prices and money in the valuation currency; a
position's PnL and requirement in its settle asset (quote currency, or the coin of an
inverse contract), as in margin.pools.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from margin.collateral import account_rule
from margin.pools import pools
from margin.snapshot import Snapshot
from margin.vectorised import Batch, FloatArray, IntArray


@dataclass(frozen=True)
class CollateralBatch:
    """The assets of a batch's multi-collateral accounts (A rows, bands padded to B).

    Per asset row: its cross pool (batch pool index), units (amount + the wallet change on
    the collateral asset), price, borrowed (units), loan maintenance (units: loan x rate),
    the symbol code moving its price (-1: none), whether it names a listed asset (False for
    the valuation-currency row), bands (low, high, ratio; A x B, padded with empty bands at
    +inf), whether they are in value and whether the ratio is flat. Per batch row (n): its settle asset row (-1: not in
    a multi-collateral cross pool) and symbol code. Per batch pool: the venue's liquidation
    level and open-order loss (1 and 0 where not multi-collateral)."""

    pool: IntArray
    units: FloatArray
    price: FloatArray
    borrowed: FloatArray
    loan_maintenance: FloatArray
    moves: IntArray
    listed: np.ndarray
    band_low: FloatArray
    band_high: FloatArray
    band_ratio: FloatArray
    by_value: np.ndarray
    flat: np.ndarray  # one band from 0 without end, in amount: value = units x ratio x price
    settle: IntArray
    symbol: IntArray
    pool_level: FloatArray
    pool_order_loss: FloatArray
    pool_multi: np.ndarray
    symbol_names: tuple[str, ...] = ()  # the symbol of each code in `moves` and `symbol`


def collateral_batch(batch: Batch, snapshots: Sequence[Snapshot]) -> CollateralBatch | None:
    """The asset rows of `snapshots` (the batch's accounts, in its order); None when no
    account is multi-collateral."""
    if not any(s.multi_collateral for s in snapshots):
        return None
    n_pools = batch.pool_balance.shape[0]
    cross_of = {int(batch.pool_account[k]): int(k) for k in np.flatnonzero(batch.pool_is_cross)}
    symbols: dict[str, int] = {}
    pool_level = np.ones(n_pools)
    pool_order_loss = np.zeros(n_pools)
    pool_multi = np.zeros(n_pools, dtype=bool)
    cols: dict[str, list] = {k: [] for k in ("pool", "units", "price", "borrowed", "loan", "moves", "listed")}
    bands: list[list[tuple[float, float, float]]] = []
    by_value: list[bool] = []
    row_of: dict[tuple[int, str], int] = {}  # (account, asset) -> asset row
    for a, snap in enumerate(snapshots):
        if not snap.multi_collateral or a not in cross_of:
            continue
        p = cross_of[a]
        pool_multi[p] = True
        pool_level[p] = account_rule(snap).level
        pool_order_loss[p] = snap.open_order_loss
        balance = pools(snap)[0].balance
        listed = {x.asset for x in snap.assets}
        for x in snap.assets:
            row_of[(a, x.asset)] = len(cols["pool"])
            cols["pool"].append(p)
            cols["units"].append(x.amount + (balance if x.asset == snap.collateral else 0.0))
            cols["price"].append(x.price)
            cols["borrowed"].append(x.borrowed)
            cols["loan"].append((x.borrowed + max(0.0, -x.amount)) * x.borrow_maintenance_rate)
            cols["moves"].append(-1 if x.price_symbol is None else symbols.setdefault(x.price_symbol, len(symbols)))
            cols["listed"].append(True)
            bands.append([(b.low, b.high, b.ratio) for b in x.bands])
            by_value.append(x.bands[0].unit == "value")
        # the valuation currency: what settles in a currency the account does not list
        # (and the wallet change when its collateral is not listed) counts in full
        row_of[(a, "")] = len(cols["pool"])
        cols["pool"].append(p)
        cols["units"].append(0.0 if snap.collateral in listed else balance)
        cols["price"].append(1.0)
        cols["borrowed"].append(0.0)
        cols["loan"].append(0.0)
        cols["moves"].append(-1)
        cols["listed"].append(False)
        bands.append([(0.0, math.inf, 1.0)])
        by_value.append(False)
    width = max(len(b) for b in bands)
    low = np.full((len(bands), width), np.inf)
    high = np.full((len(bands), width), np.inf)
    ratio = np.zeros((len(bands), width))
    for r, row in enumerate(bands):
        for c, (lo, hi, ra) in enumerate(row):
            low[r, c], high[r, c], ratio[r, c] = lo, hi, ra
    n = batch.size.shape[0]
    settle = np.full(n, -1, dtype=np.int64)
    symbol = np.full(n, -1, dtype=np.int64)
    for r, (a, i, p) in enumerate(zip(batch.account.tolist(), batch.index.tolist(), batch.pool.tolist(), strict=True)):
        if not pool_multi[p]:
            continue
        snap = snapshots[a]
        pos = snap.positions[i]
        if pos.inverse:  # margin.snapshot refuses these: the engine here is linear
            raise ValueError(
                f"{snap.exchange}/{snap.account}: {pos.symbol} is coin-margined in a multi-collateral account"
            )
        name = pos.settle or snap.collateral
        settle[r] = row_of.get((a, name), row_of[(a, "")])
        symbol[r] = symbols.setdefault(pos.symbol, len(symbols))
    return CollateralBatch(
        pool=np.asarray(cols["pool"], dtype=np.int64),
        units=np.asarray(cols["units"], dtype=float),
        price=np.asarray(cols["price"], dtype=float),
        borrowed=np.asarray(cols["borrowed"], dtype=float),
        loan_maintenance=np.asarray(cols["loan"], dtype=float),
        moves=np.asarray(cols["moves"], dtype=np.int64),
        listed=np.asarray(cols["listed"], dtype=bool),
        band_low=low,
        band_high=high,
        band_ratio=ratio,
        by_value=np.asarray(by_value, dtype=bool),
        flat=~np.asarray(by_value, dtype=bool) & (low[:, 0] == 0.0) & np.isinf(high[:, 0]),
        settle=settle,
        symbol=symbol,
        pool_level=pool_level,
        pool_order_loss=pool_order_loss,
        pool_multi=pool_multi,
        symbol_names=tuple(symbols),
    )


def haircut_values(cb: CollateralBatch, rows: IntArray, units: FloatArray, price: FloatArray) -> FloatArray:
    """margin.collateral.haircut_value of asset rows `rows` holding `units` at `price`
    (arrays of one shape): band by band for a positive holding, full value for a debt."""
    ratio = cb.band_ratio[rows, 0]
    value = np.where(units <= 0, units * price, units * ratio * price)  # right for a flat ratio
    banded = np.flatnonzero(~cb.flat[rows])
    if banded.size == 0:
        return value
    rows, units, price = rows[banded], units[banded], price[banded]
    by_value = cb.by_value[rows]
    size = np.where(by_value, units * price, units)
    total = np.zeros(units.shape)
    for c in range(cb.band_low.shape[1]):
        part = np.minimum(size, cb.band_high[rows, c]) - cb.band_low[rows, c]
        # bands rise: an empty band ends the sum (the scalar loop's break); padding is empty
        part = np.where(part > 0, part, 0.0)
        total += part * cb.band_ratio[rows, c] * np.where(by_value, 1.0, price)
    value[banded] = np.where(units <= 0, units * price, total)
    return value


@dataclass(frozen=True)
class CollateralFigures:
    """Per batch pool (nan where not multi-collateral): equity and the requirement at the
    venue's liquidation level (valuation currency); per asset row: units and value after
    haircut less the loan."""

    equity: FloatArray
    maintenance_margin: FloatArray
    units: FloatArray
    adjusted: FloatArray


def collateral_figures(
    cb: CollateralBatch, upnl: FloatArray, requirement: FloatArray, asset_factor: FloatArray | None = None
) -> CollateralFigures:
    """margin.collateral.account_figures for every multi-collateral cross pool: each batch
    row's PnL and requirement (`upnl`, `requirement`, in its settle asset) are added to its
    asset; `asset_factor` (per asset row) moves the asset prices (a stress shock)."""
    n_assets, n_pools = cb.units.shape[0], cb.pool_level.shape[0]
    mine = cb.settle >= 0
    units = cb.units + np.bincount(cb.settle[mine], upnl[mine], n_assets)
    owed = np.bincount(cb.settle[mine], requirement[mine], n_assets) + cb.loan_maintenance
    price = cb.price if asset_factor is None else cb.price * asset_factor
    rows = np.arange(n_assets)
    adjusted = haircut_values(cb, rows, units, price) - cb.borrowed * price
    equity = np.bincount(cb.pool, adjusted, n_pools) - cb.pool_order_loss
    venue = np.bincount(cb.pool, owed * price, n_pools)
    nan = np.full(n_pools, np.nan)
    return CollateralFigures(
        np.where(cb.pool_multi, equity, nan), np.where(cb.pool_multi, cb.pool_level * venue, nan), units, adjusted
    )
