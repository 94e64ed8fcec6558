"""Liquidation (and alert) prices of multi-collateral accounts, vectorised: margin.
collateral_liquidation for every hedge group (one symbol in a multi-collateral cross pool)
of a batch at once, with the collateral moving.

The steps are the scalar solver's (its docstring gives the why): the gap at the mark, the
candidate points, the first sign change per side, false position with the Illinois step
inside it, the upward extension of the last piece. Only the bookkeeping differs: every
group's candidates are one flat array (any order: the first change per group is the one
nearest the mark), a gap evaluation takes a flat list of (group, price) queries
(margin.collateral_groups), and where the gap is one line between two candidates that line
is found from two evaluations rather than searched.
"""

from __future__ import annotations

import math

import numpy as np

from margin.collateral_groups import HedgeGroups, hedge_groups
from margin.collateral_liquidation import GRID_HIGHEST, GRID_LOWEST, GRID_STEP
from margin.collateral_vectorised import CollateralBatch
from margin.vectorised import Batch, FloatArray, IntArray


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
    groups, of_row = hedge_groups(cb, batch, mine, upnl, requirement, health)
    g_down, g_up = _solve(groups)
    down[mine], up[mine] = g_down[of_row], g_up[of_row]
    return down, up


def _candidates(groups: HedgeGroups) -> tuple[IntArray, FloatArray, np.ndarray]:
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


def _solve(groups: HedgeGroups) -> tuple[FloatArray, FloatArray]:
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
    groups: HedgeGroups, group: IntArray, point: FloatArray, value: FloatArray, curved: np.ndarray, direction: int
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
    groups: HedgeGroups,
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
        )
    return result


def _illinois(
    groups: HedgeGroups,
    group: IntArray,
    inside: FloatArray,
    outside: FloatArray,
    g_in: FloatArray,
    g_out: FloatArray,
) -> FloatArray:
    """margin.collateral_liquidation._bisect for many brackets at once: false position with
    the Illinois step, each bracket stopping where the scalar loop would."""
    positive = groups.at_mark[group] > 0
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
