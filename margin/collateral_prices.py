"""Liquidation (and alert) prices of multi-collateral accounts, vectorised: margin.
collateral_liquidation for every hedge group (one symbol in a multi-collateral cross pool)
of a batch at once, with the collateral moving.

The steps are the scalar solver's (its docstring gives the why): the gap at the mark, the
candidate points, the first sign change per side, false position with the Illinois step
inside it, the upward extension of the last piece. Only the bookkeeping differs: every
group's candidates are one flat array (sorted by group, then outward from the mark), and a
gap evaluation takes a flat list of (group, price) queries.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from margin.collateral_liquidation import GRID_HIGHEST, GRID_LOWEST, GRID_STEP
from margin.collateral_vectorised import CollateralBatch, CollateralFigures, collateral_figures, haircut_values
from margin.vectorised import Batch, FloatArray, IntArray


@dataclass(frozen=True)
class _Legs:
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
    def of(cls, batch: Batch, rows: IntArray) -> _Legs:
        size, entry, table = batch.size[rows], batch.entry[rows], batch.table[rows]
        rate, amount, floor = batch.table_rate[table], batch.table_amount[table], batch.table_floor[table]
        # as margin.pools.requirement_line, in its order of operations
        slope = size[:, None] * rate
        fee_in = batch.fee_in_requirement[rows]
        if fee_in.any():
            slope += np.where(fee_in, size * batch.fee[rows], 0.0)[:, None]
        intercept = -np.where(batch.uses_amount[rows][:, None], amount, 0.0) + batch.fee_to_close[rows][:, None]
        border = floor[:, 1:] / size[:, None]
        on_entry = np.flatnonzero(batch.basis_entry[rows])
        if on_entry.size:  # the tier of the entry value, whatever the price: one line
            e_size, e_entry = size[on_entry], entry[on_entry]
            column = np.maximum((floor[on_entry] <= (e_size * e_entry)[:, None]).sum(axis=1) - 1, 0)
            e_rate = rate[on_entry, column]
            e_intercept = e_size * e_entry * e_rate
            e_intercept -= np.where(batch.uses_amount[rows][on_entry], amount[on_entry, column], 0.0)
            e_intercept += batch.fee_to_close[rows][on_entry]
            slope[on_entry] = np.where(fee_in[on_entry], e_size * batch.fee[rows][on_entry], 0.0)[:, None]
            intercept[on_entry] = e_intercept[:, None]
            floor = floor.copy()
            floor[on_entry] = np.where(np.arange(floor.shape[1]) == 0, 0.0, np.inf)
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
    pnl, owed = _Legs.of(batch, rows).terms(np.arange(rows.shape[0]), marks[rows])
    upnl, requirement = np.zeros(n), np.zeros(n)
    upnl[rows], requirement[rows] = pnl, owed
    return collateral_figures(cb, upnl, requirement, asset_factor)


def _expand(counts: IntArray) -> tuple[IntArray, IntArray]:
    """For items with `counts` members each: every member's item, and its index within."""
    item = np.repeat(np.arange(counts.shape[0]), counts)
    starts = np.cumsum(counts) - counts
    return item, np.arange(item.shape[0]) - starts[item]


def _distinct(codes: IntArray) -> IntArray:
    """The distinct values, ascending (np.unique without its slow path for large ints)."""
    ordered = np.sort(codes)
    keep = np.ones(ordered.shape[0], dtype=bool)
    keep[1:] = ordered[1:] != ordered[:-1]
    return ordered[keep]


@dataclass(frozen=True)
class _Groups:
    """The hedge groups of the multi-collateral cross pools (G), their legs (grouped:
    `leg_start`/`leg_count` index `legs`) and the assets each touches (pairs, grouped
    likewise: the legs' settle assets and the assets moving with the symbol), with what the
    rest of the account contributes held at mark."""

    cb: CollateralBatch
    mark: FloatArray  # per group
    level: FloatArray  # per group: health x the venue's liquidation level
    fixed: FloatArray  # per group: the gap of the assets it does not touch, − open-order loss
    at_mark: FloatArray  # per group: the account's gap at mark
    legs: _Legs
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


def collateral_health_prices(
    cb: CollateralBatch, batch: Batch, upnl: FloatArray, requirement: FloatArray, health: float = 1.0
) -> tuple[FloatArray, FloatArray]:
    """Per batch row of a multi-collateral cross pool, the prices of its symbol below and
    above the mark where the account's health is `health` (1: liquidation), nan where a side
    has none or the row is not in such a pool: margin.collateral_liquidation for every group.
    `upnl` and `requirement`: each row's at mark (margin.vectorised.evaluate's)."""
    n = batch.size.shape[0]
    down, up = np.full(n, np.nan), np.full(n, np.nan)
    mine = np.flatnonzero(cb.settle >= 0)
    if mine.size == 0:
        return down, up
    groups, of_row = _groups(cb, batch, mine, upnl, requirement, health)
    g_down, g_up = _solve(groups)
    down[mine], up[mine] = g_down[of_row], g_up[of_row]
    return down, up


def _groups(
    cb: CollateralBatch, batch: Batch, mine: IntArray, upnl: FloatArray, requirement: FloatArray, health: float
) -> tuple[_Groups, IntArray]:
    """The groups of rows `mine`, and each row's group."""
    figures = collateral_figures(cb, upnl, requirement)
    n_assets = cb.units.shape[0]
    owed = np.bincount(cb.settle[mine], requirement[mine], n_assets) + cb.loan_maintenance
    group_ids = _distinct(batch.group[mine])
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
    codes = _distinct(np.concatenate([leg_codes, by_key[where[found]] * n_assets + moving[found]]))
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
    groups = _Groups(
        cb=cb,
        mark=mark,
        level=level,
        fixed=pool_gap[pool] - np.bincount(pair_group, at_mark, n_groups),
        at_mark=pool_gap[pool],
        legs=_Legs.of(batch, legs),
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


def _candidates(groups: _Groups) -> tuple[IntArray, FloatArray, np.ndarray]:
    """margin.collateral_liquidation._borders plus its grid: every group's candidate points
    (group, price), unsorted, with duplicates; and which groups' gap is not one line between
    two consecutive candidates."""
    cb, legs = groups.cb, groups.legs
    n_groups = groups.mark.shape[0]
    leg_group = np.repeat(np.arange(n_groups), groups.leg_count)
    point_group = [np.repeat(leg_group, legs.border.shape[1])]
    points = [legs.border.ravel()]
    # band edges of the touched assets (the valuation-currency row has none: counted in full)
    pair_group = np.repeat(np.arange(n_groups), groups.pair_count)
    asset = groups.pair_asset
    n_pairs = asset.shape[0]
    pair_of_leg = groups.pair_start[leg_group] + groups.leg_pair
    everyone = np.arange(legs.rows.shape[0])
    pnl_at_mark, _ = legs.terms(everyone, legs.mark)
    held = groups.pair_units + np.bincount(pair_of_leg, pnl_at_mark, n_pairs)
    moving_units = np.bincount(pair_of_leg, legs.signed_size, n_pairs)
    listed = cb.listed[asset]
    moving_price = groups.pair_moves & listed
    units_move = (moving_units != 0) & listed
    mark = groups.mark[pair_group]
    by_value = cb.by_value[asset]
    with np.errstate(divide="ignore", invalid="ignore"):
        k = np.flatnonzero(moving_price & ~units_move & (held > 0) & by_value)
        at = mark[k, None] * cb.band_low[asset[k]] / (held[k] * cb.price[asset[k]])[:, None]
        point_group.append(np.repeat(pair_group[k], at.shape[1]))
        points.append(at.ravel())
        k = np.flatnonzero(units_move & ~moving_price)
        low = cb.band_low[asset[k]] / np.where(by_value[k], cb.price[asset[k]], 1.0)[:, None]
        edges = np.column_stack([np.zeros(k.shape[0]), low])
        at = mark[k, None] + (edges - held[k, None]) / moving_units[k, None]
        point_group.append(np.repeat(pair_group[k], at.shape[1]))
        points.append(at.ravel())
    quadratic = np.zeros(n_groups, dtype=bool)
    quadratic[pair_group[units_move & moving_price]] = True
    # not one line between candidates either: a requirement owed in an asset whose price
    # moves (maintenance x price), even where the legs' PnL cancels (no grid for it, as in
    # the scalar solver, whose search still follows the curve)
    curved = quadratic.copy()
    curved[pair_group[groups.pair_moves & (np.bincount(pair_of_leg, minlength=n_pairs) > 0)]] = True
    # the grid guards quadratic pieces; without one, the lowest point closes the downward scan
    steps_down = int(math.log(1 / GRID_LOWEST) / math.log(GRID_STEP)) + 1
    steps_up = int(math.log(GRID_HIGHEST) / math.log(GRID_STEP)) + 1
    exponents = np.concatenate([-np.arange(1, steps_down + 1), np.arange(1, steps_up + 1)]).astype(float)
    grid = GRID_STEP**exponents
    on_grid = np.flatnonzero(quadratic)
    point_group.append(np.repeat(on_grid, grid.shape[0]))
    points.append((groups.mark[on_grid][:, None] * grid).ravel())
    straight = np.flatnonzero(~quadratic)
    point_group.append(straight)
    points.append(groups.mark[straight] * GRID_LOWEST)
    return np.concatenate(point_group), np.concatenate(points), curved


def _solve(groups: _Groups) -> tuple[FloatArray, FloatArray]:
    """margin.collateral_liquidation._solve for every group: (down, up), nan for none."""
    group, point, curved = _candidates(groups)
    mark = groups.mark[group]
    keep = (point > 0) & np.isfinite(point) & (point != mark)
    group, point, mark = group[keep], point[keep], mark[keep]
    value = groups.gap(group, point)
    above = point > mark
    down = _first_roots(groups, group[~above], point[~above], value[~above], curved, -1)
    up = _first_roots(groups, group[above], point[above], value[above], curved, 1)
    zero = groups.at_mark == 0.0
    down[zero], up[zero] = groups.mark[zero], groups.mark[zero]
    for side in (down, up):
        side[~np.isfinite(side) | (side <= 0.0)] = np.nan
    return down, up


def _first_roots(
    groups: _Groups, group: IntArray, point: FloatArray, value: FloatArray, curved: np.ndarray, direction: int
) -> FloatArray:
    """margin.collateral_liquidation._first_root per group over its candidates on one side
    (any order): the nearest point where the gap is 0 or has left the mark's sign, then the
    search between it and the point before it (the nearest nearer the mark, or the mark);
    upward, past the last point, the last piece extended."""
    n_groups = groups.mark.shape[0]
    positive = groups.at_mark > 0
    reach = (point - groups.mark[group]) * direction
    changed = (value == 0.0) | ((value > 0) != positive[group])
    first_reach = np.full(n_groups, np.inf)
    np.minimum.at(first_reach, group[changed], reach[changed])
    first = np.full(n_groups, -1, dtype=np.int64)
    hit = changed & (reach == first_reach[group])
    first[group[hit]] = np.flatnonzero(hit)  # duplicates of a point share its value
    nearer = reach < first_reach[group]
    before_reach = np.full(n_groups, -np.inf)
    np.maximum.at(before_reach, group[nearer], reach[nearer])
    before = np.full(n_groups, -1, dtype=np.int64)
    hit = nearer & (reach == before_reach[group])
    before[group[hit]] = np.flatnonzero(hit)
    padded_point, padded_value = np.append(point, 0.0), np.append(value, 0.0)  # index -1: none
    seen = before >= 0
    inside = np.where(seen, padded_point[before], groups.mark)
    g_in = np.where(seen, padded_value[before], groups.at_mark)

    result = np.full(n_groups, np.nan)
    live = groups.at_mark != 0.0
    found = (first >= 0) & live
    exact = found & (padded_value[first] == 0.0)
    result[exact] = padded_point[first[exact]]
    bracketed = np.flatnonzero(found & ~exact)
    result[bracketed] = _crossing(
        groups,
        bracketed,
        inside[bracketed],
        point[first[bracketed]],
        g_in[bracketed],
        value[first[bracketed]],
        curved[bracketed],
    )
    if direction > 0:
        idle = np.flatnonzero(~found & live)
        last_point, last_value = inside[idle], g_in[idle]
        further = groups.gap(idle, last_point * 2)
        with np.errstate(divide="ignore", invalid="ignore"):
            slope = (further - last_value) / last_point
            ok = (slope != 0) & ((last_value > 0) == positive[idle]) & ((-last_value / slope) > 0)
            result[idle[ok]] = last_point[ok] - last_value[ok] / slope[ok]
    return result


def _crossing(
    groups: _Groups,
    group: IntArray,
    inside: FloatArray,
    outside: FloatArray,
    g_in: FloatArray,
    g_out: FloatArray,
    curved: np.ndarray,
) -> FloatArray:
    """Where the gap leaves the mark's sign between `inside` and `outside` (consecutive
    candidates): what margin.collateral_liquidation._bisect converges to. Between two
    candidates of a group whose gap is not curved there it is one line, which may jump at
    either end (a requirement step at a tier floor, the value at a floor being the upper
    tier's): two evaluations inside give that line, and its root is the answer, or the end
    where it jumps across 0 (the point the scalar search narrows to). Curved pieces, and
    brackets too narrow for two inner points, take the search itself (_illinois)."""
    result = np.full(group.shape[0], np.nan)
    width = outside - inside
    first, second = inside + 0.25 * width, inside + 0.75 * width
    straight = ~curved & (first != second) & (first != inside) & (second != outside)
    rows = np.flatnonzero(straight)
    if rows.size:
        g_first = groups.gap(group[rows], first[rows])
        g_second = groups.gap(group[rows], second[rows])
        slope = (g_second - g_first) / (second[rows] - first[rows])
        positive = groups.at_mark[group[rows]] > 0
        at_inside = g_first + slope * (inside[rows] - first[rows])
        at_outside = g_first + slope * (outside[rows] - first[rows])
        with np.errstate(divide="ignore", invalid="ignore"):
            root = first[rows] - g_first / slope
        low, high = np.minimum(inside[rows], outside[rows]), np.maximum(inside[rows], outside[rows])
        root = np.clip(np.where(np.isfinite(root), root, outside[rows]), low, high)
        jumps_in = (at_inside == 0.0) | ((at_inside > 0) != positive)
        jumps_out = (at_outside != 0.0) & ((at_outside > 0) == positive)
        result[rows] = np.where(jumps_in, inside[rows], np.where(jumps_out, outside[rows], root))
    searched = np.flatnonzero(~straight)
    if searched.size:
        result[searched] = _illinois(
            groups,
            group[searched],
            inside[searched],
            outside[searched],
            g_in[searched],
            g_out[searched],
            groups.at_mark[group[searched]] > 0,
        )
    return result


def _illinois(
    groups: _Groups,
    group: IntArray,
    inside: FloatArray,
    outside: FloatArray,
    g_in: FloatArray,
    g_out: FloatArray,
    positive: np.ndarray,
) -> FloatArray:
    """margin.collateral_liquidation._bisect for many brackets at once: false position with
    the Illinois step, each bracket stopping where the scalar loop would."""
    result = outside.copy()
    inside, outside, g_in, g_out = inside.copy(), outside.copy(), g_in.copy(), g_out.copy()
    side = np.zeros(group.shape[0], dtype=np.int8)
    active = np.arange(group.shape[0])
    for _ in range(200):
        if active.size == 0:
            break
        a, b, ga, gb = inside[active], outside[active], g_in[active], g_out[active]
        with np.errstate(divide="ignore", invalid="ignore"):
            middle = np.where(gb == ga, 0.5 * (a + b), b - gb * (b - a) / (gb - ga))
        strayed = (gb != ga) & ~((np.minimum(a, b) < middle) & (middle < np.maximum(a, b)))
        middle = np.where(strayed, 0.5 * (a + b), middle)
        stop = (middle == a) | (middle == b) | (np.abs(b - a) <= 1e-13 * np.abs(b))
        result[active[stop]] = b[stop]
        active, middle = active[~stop], middle[~stop]
        if active.size == 0:
            break
        value = groups.gap(group[active], middle)
        zero = value == 0
        result[active[zero]] = middle[zero]
        active, middle, value = active[~zero], middle[~zero], value[~zero]
        in_side = (value > 0) == positive[active]
        was = side[active]
        moving_in, moving_out = active[in_side], active[~in_side]
        inside[moving_in], g_in[moving_in] = middle[in_side], value[in_side]
        g_out[moving_in[was[in_side] == -1]] *= 0.5
        side[moving_in] = -1
        outside[moving_out], g_out[moving_out] = middle[~in_side], value[~in_side]
        g_in[moving_out[was[~in_side] == 1]] *= 0.5
        side[moving_out] = 1
        result[active] = outside[active]
    return result
