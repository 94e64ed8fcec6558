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
    tables (`tables`), size (base units), whether its tier is on entry value, the fee's
    slope (size x fee where counted, else 0) and the fee to close (quote); T; the tables;
    and `classes`, per class the group ids (w) and the k x w matrix of their rows (n pads a
    shorter group)."""

    base: IntArray
    size: FloatArray
    basis_entry: np.ndarray
    fee_slope: FloatArray
    fee_to_close: FloatArray
    n_columns: int
    tables: Tables
    classes: list[tuple[IntArray, IntArray]]


@dataclass(frozen=True)
class Tables:
    """The tier tables flattened (table x T + column) for one gather per leg and quantity:
    the rate, the amount, the border up (the next tier's floor, +inf past the last) and the
    border down (the tier's own floor, -inf for the first); twice, the second copy with
    the amounts 0 for the positions whose venue does not count them."""

    rate: FloatArray
    amount: FloatArray
    border_up: FloatArray
    border_down: FloatArray


def legs(
    table: IntArray,
    uses_amount: np.ndarray,
    size: FloatArray,
    basis_entry: np.ndarray,
    fee_slope: FloatArray,
    fee_to_close: FloatArray,
    tier_tables: tuple[FloatArray, FloatArray, FloatArray],
    group: IntArray,
    n_groups: int,
) -> Legs:
    """`Legs` from per-position arrays and the tables' floor, rate and amount (tables x T)."""
    floor, rate, amount = tier_tables
    n_tables, n_columns = floor.shape
    up = np.full_like(floor, np.inf)
    up[:, :-1] = floor[:, 1:]
    down = floor.copy()
    down[:, 0] = -np.inf
    flat = Tables(
        np.tile(rate.ravel(), 2),
        np.concatenate([amount.ravel(), np.zeros(amount.size)]),
        np.tile(up.ravel(), 2),
        np.tile(down.ravel(), 2),
    )
    base = table * n_columns + np.where(uses_amount, 0, n_tables * n_columns)
    return Legs(base, size, basis_entry, fee_slope, fee_to_close, n_columns, flat, layout(group, n_groups))


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
    widths = np.flatnonzero(np.bincount(width_of[counts > 0]))
    if widths.size > 1:  # then by class (a radix sort on a small key)
        class_of = np.zeros(widths[-1] + 1, dtype=np.uint8 if widths.size < 256 else np.int64)
        class_of[widths] = np.arange(widths.size)
        order = order[np.argsort(class_of[width_of][group[order]], kind="stable")]
    classes = []
    end = 0
    for k in widths.tolist():
        ids = np.flatnonzero(width_of == k)
        begin, end = end, end + int(counts[ids].sum())
        mine = order[begin:end]
        if k <= 8:  # every group of the class has k legs
            rows = np.ascontiguousarray(mine.reshape(ids.size, k).T)
        else:
            sizes = counts[ids]
            slot = np.arange(mine.size) - np.repeat(np.cumsum(sizes) - sizes, sizes)  # place in its group
            rows = np.full((k, ids.size), n, dtype=np.int64)
            rows[slot, np.repeat(np.arange(ids.size), sizes)] = mine
        classes.append((ids, rows))
    return classes


def _crossed(legs: Legs, rows: IntArray, column: IntArray, up: bool, health: float) -> tuple[FloatArray, ...]:
    """Requirement line (slope, intercept; x health) and next border of positions that have
    just crossed into tiers `column`: always on mark value (an entry-value tier has no
    border). The additions of margin.vectorised.requirement_lines and leg_border."""
    at = legs.base[rows] + column
    size = legs.size[rows]
    slope = size * legs.tables.rate[at] + legs.fee_slope[rows]
    intercept = (0.0 - legs.tables.amount[at]) + legs.fee_to_close[rows]
    if health != 1.0:
        slope, intercept = slope * health, intercept * health
    border = (legs.tables.border_up if up else legs.tables.border_down)[at] / size
    return slope, intercept, border


@dataclass(frozen=True)
class Start:
    """Where one side's walk starts: per position (n + 1, the last a pad) the tier column,
    the requirement line there (x health) and the border to the next segment; per group
    the gap's line there, constant + coefficient x price."""

    column: IntArray
    slope: FloatArray
    intercept: FloatArray
    border: FloatArray
    constant: FloatArray
    coefficient: FloatArray


def start(
    legs: Legs, column: IntArray, lines: tuple[FloatArray, FloatArray], gap: tuple[FloatArray, FloatArray], up: bool
) -> Start:
    """A side's `Start` from every position's column and line (slope, intercept) and every
    group's gap line (the pad: no line, no border). The border: margin.liquidation.
    leg_border, the next floor going up (+inf if none), this tier's floor going down (-inf
    if none; none on entry value)."""
    n = column.shape[0]
    none = np.inf if up else -np.inf
    border = np.empty(n + 1)
    np.divide((legs.tables.border_up if up else legs.tables.border_down)[legs.base + column], legs.size, out=border[:n])
    border[:n][legs.basis_entry] = none
    border[n] = none
    slope, intercept = np.append(lines[0], 0.0), np.append(lines[1], 0.0)
    return Start(np.append(column, 0), slope, intercept, border, gap[0], gap[1])


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
    """The walk's start for groups `ids` (rows k x w): each leg's column and border, the
    groups' line, and which go on. A leg exactly on a tier floor: where the requirement
    jumps there, the gap crosses 0 at the mark itself (margin.liquidation._walk)."""
    constant, coefficient, price = begin.constant[ids], begin.coefficient[ids], groups.mark[ids]
    alive = ~((constant + coefficient * price) * groups.gap_at_mark[ids] <= 0)
    result[ids[~alive]] = price[~alive]
    return begin.column[rows], begin.border[rows], constant, coefficient, price, alive


def _nearest(leg: FloatArray, up: bool) -> FloatArray:
    """Each group's next border: the nearest of its legs' (+inf: none up; 0: none down)."""
    border = leg[0].copy() if up else np.maximum(leg[0], 0.0)
    pick = np.minimum if up else np.maximum
    for i in range(1, leg.shape[0]):
        pick(border, leg[i], out=border)
    return border


def _roots(
    direction: int,
    constant: FloatArray,
    coefficient: FloatArray,
    price: FloatArray,
    border: FloatArray,
    gap_at_mark: FloatArray,
) -> tuple[FloatArray, np.ndarray]:
    """Each group's root and whether it lies on its segment from `price` to `border`
    (margin.liquidation._segment_root: the line heads for 0 this way; a root that rounding
    put behind the start is the start)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        root = -constant / coefficient
    root = np.where((root - price) * direction < 0, price, root)
    inside = (coefficient * direction * gap_at_mark < 0) & (np.isinf(border) | ((border - root) * direction >= 0))
    return root, inside


def _run_single(
    legs: Legs, groups: Groups, begin: Start, direction: int, ids: IntArray, rows: IntArray, result: FloatArray
) -> None:
    """`run` for single-leg groups: every step, every group still walking crosses."""
    if ids.size == 0:
        return
    up = direction > 0
    column, leg, constant, coefficient, price, alive = _first_step(groups, begin, ids, rows, result)
    column, row, border, gap_at_mark = column[0], rows[0], leg[0], groups.gap_at_mark[ids]
    for _ in range(legs.n_columns + 2):  # as many borders as there are
        if not up:
            border = np.maximum(border, 0.0)
        root, inside = _roots(direction, constant, coefficient, price, border, gap_at_mark)
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
    column, leg, constant, coefficient, price, alive = _first_step(groups, begin, ids, rows, result)
    slope, intercept = begin.slope[rows], begin.intercept[rows]
    gap_at_mark, fixed, side_term = groups.gap_at_mark[ids], groups.fixed[ids], groups.side_term[ids]
    for _ in range(legs.n_columns * rows.shape[0] + 2):  # as many borders as there are
        border = _nearest(leg, up)
        root, inside = _roots(direction, constant, coefficient, price, border, gap_at_mark)
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
        crossing = np.flatnonzero(leg == border)  # into the k x w arrays, flattened
        to = column.take(crossing) + direction
        column.put(crossing, to)
        crossed_slope, crossed_intercept, crossed_border = _crossed(legs, rows.take(crossing), to, up, groups.health)
        slope.put(crossing, crossed_slope)
        intercept.put(crossing, crossed_intercept)
        leg.put(crossing, crossed_border)
        constant = fixed - _sum(intercept)
        coefficient = side_term - _sum(slope)
        jump = (constant + coefficient * border) * gap_at_mark <= 0
        result[ids[jump]] = border[jump]
        price = border
        alive = going_on & ~jump
