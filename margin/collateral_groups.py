"""Multi-collateral accounts' hedge groups as flat arrays: what margin.collateral_prices
needs to evaluate the gap (equity − health x level x maintenance) of many accounts, each
with one symbol moved, in one pass; and the accounts' figures at shocked prices.

A hedge group is one symbol in a multi-collateral account's cross pool. Its legs are the
positions of that symbol; the assets it touches are the legs' settle assets and the assets
whose price moves with the symbol. Everything else of the account is held at mark, once.
Money in the valuation currency; a leg's PnL and requirement in its settle asset.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from margin.collateral_vectorised import CollateralBatch, CollateralFigures, collateral_figures, haircut_values
from margin.vectorised import Batch, FloatArray, IntArray, requirement_lines


@dataclass(frozen=True)
class Legs:
    """The groups' positions (batch rows, grouped), with what a gap evaluation needs of
    each at hand: sign x size, entry, size, and per tier column its floor (notional) and
    requirement line (margin.pools.requirement_line: slope x price + intercept). An entry-
    basis leg's line is its entry tier's in every column. Linear contracts only: coin-
    margined ones are single-asset (margin.snapshot)."""

    rows: IntArray
    signed_size: FloatArray
    entry: FloatArray
    mark: FloatArray
    size: FloatArray
    border: FloatArray  # legs x (T - 1): the prices of the tier floors above the first
    floor: FloatArray  # legs x T (padding +inf)
    slope: FloatArray  # legs x T
    intercept: FloatArray  # legs x T

    @classmethod
    def of(cls, batch: Batch, rows: IntArray) -> Legs:
        size, entry, table = batch.size[rows], batch.entry[rows], batch.table[rows]
        floor = batch.table_floor[table]
        # every column's line (margin.vectorised.requirement_lines); an entry-basis leg's
        # is its entry tier's in every column, and its floors leave it in column 0
        n_columns = floor.shape[1]
        column = np.zeros(rows.shape[0], dtype=np.int64)
        on_entry = np.flatnonzero(batch.basis_entry[rows])
        if on_entry.size:
            at_entry = floor[on_entry] <= (size[on_entry] * entry[on_entry])[:, None]
            column[on_entry] = np.maximum(at_entry.sum(axis=1) - 1, 0)
            floor = floor.copy()
            floor[on_entry] = np.where(np.arange(n_columns) == 0, 0.0, np.inf)
        lines = [requirement_lines(batch, rows, np.where(batch.basis_entry[rows], column, c)) for c in range(n_columns)]
        slope = np.column_stack([line[0] for line in lines])
        intercept = np.column_stack([line[1] for line in lines])
        border = batch.table_floor[table, 1:] / size[:, None]
        return cls(rows, batch.sign[rows] * size, entry, batch.mark[rows], size, border, floor, slope, intercept)

    def terms(self, legs: IntArray, price: FloatArray) -> tuple[FloatArray, FloatArray]:
        """Unrealized PnL and maintenance requirement of `legs` at `price` (quote currency):
        margin.pools.unrealized_pnl and maintenance_requirement."""
        notional = self.size[legs] * np.maximum(price, 0.0)
        column = np.maximum((self.floor[legs] <= notional[:, None]).sum(axis=1) - 1, 0)
        slope, intercept = self.slope[legs, column], self.intercept[legs, column]
        return self.signed_size[legs] * (price - self.entry[legs]), slope * price + intercept


def shocked_figures(
    cb: CollateralBatch, batch: Batch, marks: FloatArray, asset_factor: FloatArray
) -> CollateralFigures:
    """margin.collateral.account_figures of every multi-collateral cross pool with each
    position at `marks` (quote currency) and each asset's price times `asset_factor` (a
    stress shock: BTC collateral falls with BTC even where no BTC position is held)."""
    n = batch.size.shape[0]
    rows = np.flatnonzero(cb.settle >= 0)
    pnl, owed = Legs.of(batch, rows).terms(np.arange(rows.shape[0]), marks[rows])
    upnl, requirement = np.zeros(n), np.zeros(n)
    upnl[rows], requirement[rows] = pnl, owed
    return collateral_figures(cb, upnl, requirement, asset_factor)


def _expand(counts: IntArray) -> tuple[IntArray, IntArray]:
    """For items with `counts` members each: every member's item, and its index within."""
    item = np.repeat(np.arange(counts.shape[0]), counts)
    starts = np.cumsum(counts) - counts
    return item, np.arange(item.shape[0]) - starts[item]


def distinct(codes: IntArray) -> IntArray:
    """The distinct values, ascending (np.unique without its slow path for large ints)."""
    ordered = np.sort(codes)
    keep = np.ones(ordered.shape[0], dtype=bool)
    keep[1:] = ordered[1:] != ordered[:-1]
    return ordered[keep]


@dataclass(frozen=True)
class HedgeGroups:
    """The hedge groups of the multi-collateral cross pools (G), their legs (grouped:
    `leg_start`/`leg_count` index `legs`) and the assets each touches (pairs, grouped
    likewise: the legs' settle assets and the assets moving with the symbol), with what the
    rest of the account contributes held at mark."""

    cb: CollateralBatch
    mark: FloatArray  # per group
    level: FloatArray  # per group: health x the venue's liquidation level
    fixed: FloatArray  # per group: the gap of the assets it does not touch, − open-order loss
    at_mark: FloatArray  # per group: the account's gap at mark
    legs: Legs
    leg_start: IntArray
    leg_count: IntArray
    leg_pair: IntArray  # per leg: its settle asset's pair, relative to pair_start
    pair_asset: IntArray
    pair_moves: np.ndarray
    pair_units: FloatArray  # units of the asset without the group's legs' PnL
    pair_owed: FloatArray  # maintenance + loan of the asset (units) without the group's legs'
    pair_start: IntArray
    pair_count: IntArray

    def gap(self, group: IntArray, price: FloatArray) -> FloatArray:
        """equity − level x maintenance of each query's account with its group's symbol at
        `price` (every other symbol at mark)."""
        cb, queries = self.cb, group.shape[0]
        leg_query, within = _expand(self.leg_count[group])
        leg = self.leg_start[group][leg_query] + within
        pnl, owed = self.legs.terms(leg, price[leg_query])
        pair_query, pair_within = _expand(self.pair_count[group])
        pair = self.pair_start[group][pair_query] + pair_within
        expanded = np.cumsum(self.pair_count[group]) - self.pair_count[group]
        slot = expanded[leg_query] + self.leg_pair[leg]
        n = pair.shape[0]
        units = self.pair_units[pair] + np.bincount(slot, pnl, n)
        owed_all = self.pair_owed[pair] + np.bincount(slot, owed, n)
        asset = self.pair_asset[pair]
        g = group[pair_query]
        moved = np.where(self.pair_moves[pair], price[pair_query] / self.mark[g], 1.0)
        asset_price = cb.price[asset] * moved
        part = haircut_values(cb, asset, units, asset_price) - cb.borrowed[asset] * asset_price
        part -= self.level[g] * (owed_all * asset_price)
        return self.fixed[group] + np.bincount(pair_query, part, queries)


def hedge_groups(
    cb: CollateralBatch, batch: Batch, mine: IntArray, upnl: FloatArray, requirement: FloatArray, health: float
) -> tuple[HedgeGroups, IntArray]:
    """The groups of rows `mine`, and each row's group."""
    figures = collateral_figures(cb, upnl, requirement)
    n_assets = cb.units.shape[0]
    owed = np.bincount(cb.settle[mine], requirement[mine], n_assets) + cb.loan_maintenance
    group_ids = distinct(batch.group[mine])
    of_row = np.searchsorted(group_ids, batch.group[mine])
    n_groups = group_ids.shape[0]
    order = np.argsort(of_row, kind="stable")
    legs = mine[order]
    leg_group = of_row[order]
    leg_count = np.bincount(leg_group, minlength=n_groups)
    leg_start = np.cumsum(leg_count) - leg_count
    pool = np.zeros(n_groups, dtype=np.int64)
    pool[leg_group] = batch.pool[legs]
    symbol = np.zeros(n_groups, dtype=np.int64)
    symbol[leg_group] = cb.symbol[legs]
    mark = np.zeros(n_groups)
    mark[leg_group[::-1]] = batch.mark[legs[::-1]]  # the first leg's, as the scalar solver
    # touched assets: the legs' settle assets, and the assets whose price moves with the symbol
    n_symbols = int(max(cb.symbol.max(), cb.moves.max())) + 1
    key_of_group = pool * n_symbols + symbol
    by_key = np.argsort(key_of_group)
    moving = np.flatnonzero(cb.moves >= 0)
    wanted = cb.pool[moving] * n_symbols + cb.moves[moving]
    where = np.minimum(np.searchsorted(key_of_group[by_key], wanted), n_groups - 1)
    found = key_of_group[by_key][where] == wanted
    leg_codes = leg_group * n_assets + cb.settle[legs]
    codes = distinct(np.concatenate([leg_codes, by_key[where[found]] * n_assets + moving[found]]))
    pair_group, pair_asset = codes // n_assets, codes % n_assets
    pair_count = np.bincount(pair_group, minlength=n_groups)
    pair_start = np.cumsum(pair_count) - pair_count
    leg_pair = np.searchsorted(codes, leg_codes)
    n_pairs = codes.shape[0]
    level = health * cb.pool_level[pool]
    price = cb.price[pair_asset]
    at_mark = figures.adjusted[pair_asset] - level[pair_group] * (owed[pair_asset] * price)
    asset_gap = figures.adjusted - health * cb.pool_level[cb.pool] * (owed * cb.price)
    pool_gap = np.bincount(cb.pool, asset_gap, cb.pool_level.shape[0]) - cb.pool_order_loss
    groups = HedgeGroups(
        cb=cb,
        mark=mark,
        level=level,
        fixed=pool_gap[pool] - np.bincount(pair_group, at_mark, n_groups),
        at_mark=pool_gap[pool],
        legs=Legs.of(batch, legs),
        leg_start=leg_start,
        leg_count=leg_count,
        leg_pair=leg_pair - pair_start[leg_group],
        pair_asset=pair_asset,
        pair_moves=cb.moves[pair_asset] == symbol[pair_group],
        pair_units=figures.units[pair_asset] - np.bincount(leg_pair, upnl[legs], n_pairs),
        pair_owed=owed[pair_asset] - np.bincount(leg_pair, requirement[legs], n_pairs),
        pair_start=pair_start,
        pair_count=pair_count,
    )
    return groups, of_row
