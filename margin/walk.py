"""The side walks of the vectorised engine: margin.liquidation._walk for every hedge group at
once (margin.vectorised._liquidation_prices prepares the per-group constants).

Layout: the positions of the hedge groups with the same number of legs k (1 to 8, then
padded to powers of two) form one class, a k x groups matrix of row indices, so a group's
border is a reduction down a column and its line a sum of k rows in the positions' order
(the additions of a bincount over the rows: the same numbers). A step keeps every leg's
border and requirement line and recomputes them only for the legs that cross a border.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

FloatArray = np.ndarray
IntArray = np.ndarray


@dataclass(frozen=True)
class Legs:
    """What the walks need per position (n): offset of its tier table in the flattened
    tables (table x T + column), the same into the amounts (past the end, into zeros, where
    the venue does not count the amount), size (base units), whether the tier is on entry
    value, the fee's slope (size x fee where counted, else 0) and the fee to close (quote);
    the flattened floor and rate (tables x T) and amounts (then as many zeros); T; and
    `classes`, per class the group ids (w) and the k x w matrix of their rows (n pads a
    shorter group)."""

    base: IntArray
    amount_base: IntArray
    size: FloatArray
    basis_entry: np.ndarray
    fee_slope: FloatArray
    fee_to_close: FloatArray
    floor: FloatArray
    rate: FloatArray
    amount: FloatArray
    n_columns: int
    classes: list[tuple[IntArray, IntArray]]


def _width(legs: int) -> int:
    """The class of a group of `legs` positions: its own count up to 8, then the next power
    of two (few classes however many legs a group has)."""
    return legs if legs <= 8 else 1 << (legs - 1).bit_length()


def layout(group: IntArray, n_groups: int) -> list[tuple[IntArray, IntArray]]:
    """The classes of `Legs`: every group's rows in their order, padded with n."""
    n = group.shape[0]
    counts = np.bincount(group, minlength=n_groups)
    order = np.argsort(group, kind="stable")  # by group, then row (fast: mostly in order)
    width_of = counts.copy()
    big = counts > 8
    if big.any():
        width_of[big] = [_width(int(c)) for c in counts[big]]
    width_in_order = width_of[group[order]]
    classes = []
    widths = np.flatnonzero(np.bincount(width_of[counts > 0])).tolist()
    for k in widths:
        ids = np.flatnonzero(width_of == k)
        mine = order if len(widths) == 1 else order[width_in_order == k]
        if k <= 8:  # every group of the class has k legs
            rows = np.ascontiguousarray(mine.reshape(ids.size, k).T)
        else:
            legs = counts[ids]
            slot = np.arange(mine.size) - np.repeat(np.cumsum(legs) - legs, legs)
            rows = np.full((k, ids.size), n, dtype=np.int64)
            rows[slot, np.repeat(np.arange(ids.size), legs)] = mine
        classes.append((ids, rows))
    return classes


def leg_borders(legs: Legs, rows: IntArray | slice, column: IntArray, up: bool) -> FloatArray:
    """Price at which each position leaves its tier (margin.liquidation.leg_border): the
    next floor going up (+inf if none), this tier's floor going down (-inf if none)."""
    last = legs.n_columns - 1
    target = column + 1 if up else column
    exists = (target <= last if up else column > 0) & ~legs.basis_entry[rows]
    floor = legs.floor[legs.base[rows] + np.minimum(target, last)]
    return np.where(exists, floor / legs.size[rows], np.inf if up else -np.inf)


def _crossed(legs: Legs, rows: IntArray, column: IntArray, up: bool, health: float) -> tuple[FloatArray, ...]:
    """Requirement line (slope, intercept; x health) and next border of positions that have
    just crossed into tiers `column`: always on mark value (an entry-value tier has no
    border). The additions of margin.vectorised._requirement_line and leg_borders."""
    at = legs.base[rows] + column
    size = legs.size[rows]
    slope = size * legs.rate[at] + legs.fee_slope[rows]
    intercept = (0.0 - legs.amount[legs.amount_base[rows] + column]) + legs.fee_to_close[rows]
    if health != 1.0:
        slope, intercept = slope * health, intercept * health
    if up:
        last = legs.n_columns - 1
        border = np.where(column < last, legs.floor[np.minimum(at + 1, at - column + last)] / size, np.inf)
    else:
        border = np.where(column > 0, legs.floor[at] / size, -np.inf)
    return slope, intercept, border


@dataclass(frozen=True)
class Start:
    """Where one side's walk starts, per position (n + 1, the last a pad): tier column, the
    requirement line there (x health) and the border to the next segment."""

    column: IntArray
    slope: FloatArray
    intercept: FloatArray
    border: FloatArray


def start(legs: Legs, column: IntArray, slope: FloatArray, intercept: FloatArray, up: bool) -> Start:
    """A side's `Start` from every position's column and line (the pad: no line, no border)."""
    border = leg_borders(legs, slice(None), column, up)
    return Start(
        np.append(column, 0),
        np.append(slope, 0.0),
        np.append(intercept, 0.0),
        np.append(border, np.inf if up else -np.inf),
    )


@dataclass(frozen=True)
class Groups:
    """Per hedge group (g): the pool's gap without the group + -side x size x entry, the sum
    of side x size, the mark and the gap at the mark (equity - health x requirement)."""

    fixed: FloatArray
    side_term: FloatArray
    mark: FloatArray
    gap_at_mark: FloatArray
    health: float = 1.0


def _sum(rows: FloatArray) -> FloatArray:
    """Sum down the k rows in order (a bincount's additions)."""
    total = rows[0].copy()
    for i in range(1, rows.shape[0]):
        total += rows[i]
    return total


def run(legs: Legs, groups: Groups, begin: Start, direction: int, skip: np.ndarray) -> FloatArray:
    """The first root in `direction` per group (nan: none); groups in `skip` are known to
    have none, groups with a gap of 0 at the mark are left to the caller."""
    result = np.full(groups.mark.shape[0], np.nan)
    walks = (groups.gap_at_mark != 0.0) & ~skip
    for ids, rows in legs.classes:
        chosen = walks[ids]
        walk = _run_single if rows.shape[0] == 1 else _run_class
        walk(legs, groups, begin, direction, ids[chosen], rows[:, chosen], result)
    return result


def _first_step(
    groups: Groups, begin: Start, ids: IntArray, rows: IntArray, result: FloatArray
) -> tuple[FloatArray, ...]:
    """The walk's start for groups `ids` (rows k x w): each leg's column, line and border,
    the groups' line, and which go on. A leg exactly on a tier floor: where the requirement
    jumps there, the gap crosses 0 at the mark itself (margin.liquidation._walk)."""
    column, slope, intercept, leg = begin.column[rows], begin.slope[rows], begin.intercept[rows], begin.border[rows]
    constant = groups.fixed[ids] - _sum(intercept)
    coefficient = groups.side_term[ids] - _sum(slope)
    price = groups.mark[ids]
    alive = ~((constant + coefficient * price) * groups.gap_at_mark[ids] <= 0)
    result[ids[~alive]] = price[~alive]
    return column, slope, intercept, leg, constant, coefficient, price, alive


def _roots(
    direction: int, constant: FloatArray, coefficient: FloatArray, price: FloatArray, border: FloatArray
) -> tuple[FloatArray, np.ndarray]:
    """Each group's root and whether it lies on its segment from `price` to `border`."""
    with np.errstate(divide="ignore", invalid="ignore"):
        root = -constant / coefficient
    inside = (
        (coefficient != 0.0)
        & ((root - price) * direction >= 0)
        & (np.isinf(border) | ((border - root) * direction >= 0))
    )
    return root, inside


def _run_single(
    legs: Legs, groups: Groups, begin: Start, direction: int, ids: IntArray, rows: IntArray, result: FloatArray
) -> None:
    """`run` for single-leg groups: every step, every group still walking crosses."""
    if ids.size == 0:
        return
    up = direction > 0
    column, _, _, leg, constant, coefficient, price, alive = _first_step(groups, begin, ids, rows, result)
    column, row, border, gap_at_mark = column[0], rows[0], leg[0], groups.gap_at_mark[ids]
    for _ in range(legs.n_columns + 2):  # as many borders as there are
        if not up:
            border = np.maximum(border, 0.0)
        root, inside = _roots(direction, constant, coefficient, price, border)
        inside &= alive
        found = root[inside]
        result[ids[inside]] = np.where(found > 0.0, found, np.nan)
        going_on = np.flatnonzero(alive & ~inside & np.isfinite(border) & (border > 0.0))
        if going_on.size == 0:
            return
        ids, row, border, gap_at_mark = ids[going_on], row[going_on], border[going_on], gap_at_mark[going_on]
        column = column[going_on] + direction
        slope, intercept, next_border = _crossed(legs, row, column, up, groups.health)
        constant = groups.fixed[ids] - intercept
        coefficient = groups.side_term[ids] - slope
        jump = (constant + coefficient * border) * gap_at_mark <= 0
        result[ids[jump]] = border[jump]
        price, border, alive = border, next_border, ~jump


def _run_class(
    legs: Legs, groups: Groups, begin: Start, direction: int, ids: IntArray, rows: IntArray, result: FloatArray
) -> None:
    """`run` for the groups `ids` of one class (their rows: k x w). Groups that stop stay in
    the arrays (their border nan: nothing crosses) until they are a good share of them."""
    if ids.size == 0:
        return
    up = direction > 0
    column, slope, intercept, leg, constant, coefficient, price, alive = _first_step(groups, begin, ids, rows, result)
    gap_at_mark, fixed, side_term = groups.gap_at_mark[ids], groups.fixed[ids], groups.side_term[ids]
    for _ in range(legs.n_columns * rows.shape[0] + 2):  # as many borders as there are
        border = leg.min(axis=0) if up else np.maximum(leg.max(axis=0), 0.0)  # up: +inf, no border
        root, inside = _roots(direction, constant, coefficient, price, border)
        inside &= alive
        found = root[inside]
        result[ids[inside]] = np.where(found > 0.0, found, np.nan)
        going_on = alive & ~inside & np.isfinite(border) & (border > 0.0)
        count = np.count_nonzero(going_on)
        if count == 0:
            return
        if count < 0.6 * ids.size:
            keep = np.flatnonzero(going_on)
            ids, rows, border, gap_at_mark = ids[keep], rows[:, keep], border[keep], gap_at_mark[keep]
            fixed, side_term = fixed[keep], side_term[keep]
            column, slope, intercept, leg = column[:, keep], slope[:, keep], intercept[:, keep], leg[:, keep]
            going_on = np.ones(keep.size, dtype=bool)
        else:
            border[~going_on] = np.nan

        # Step across the border; where the requirement jumps, the gap may cross 0 there.
        # The line of the new segment is also where the next step starts.
        crossing = np.nonzero(leg == border)
        to = column[crossing] + direction
        column[crossing] = to
        slope[crossing], intercept[crossing], leg[crossing] = _crossed(legs, rows[crossing], to, up, groups.health)
        constant = fixed - _sum(intercept)
        coefficient = side_term - _sum(slope)
        jump = (constant + coefficient * border) * gap_at_mark <= 0
        result[ids[jump]] = border[jump]
        price = border
        alive = going_on & ~jump
