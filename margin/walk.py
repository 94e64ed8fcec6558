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
    tables (table x T + column), size (base units), rule flags, fee rate and fee to close
    (quote); the flattened tables (floor, rate, amount) of T columns; and `classes`, per
    class the group ids (w) and the k x w matrix of their rows (n pads a shorter group)."""

    base: IntArray
    size: FloatArray
    basis_entry: np.ndarray
    fee_in_requirement: np.ndarray
    uses_amount: np.ndarray
    fee: FloatArray
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
    order = np.argsort(group, kind="stable")
    slot = np.empty(n, dtype=np.int64)  # each row's place among its group's rows
    slot[order] = np.arange(n) - (np.cumsum(counts) - counts)[group[order]]
    width_of = counts.copy()
    big = counts > 8
    if big.any():
        width_of[big] = [_width(int(c)) for c in counts[big]]
    widths = np.unique(width_of[counts > 0])
    local = np.empty(n_groups, dtype=np.int64)
    classes = []
    for k in widths.tolist():
        ids = np.flatnonzero(width_of == k)
        local[ids] = np.arange(ids.size)
        rows = np.full((k, ids.size), n, dtype=np.int64)
        mine = np.arange(n) if widths.size == 1 else np.flatnonzero(width_of[group] == k)
        rows[slot[mine], local[group[mine]]] = mine
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


def _mark_lines(legs: Legs, rows: IntArray, column: IntArray, health: float) -> tuple[FloatArray, FloatArray]:
    """Requirement line (slope, intercept) of positions on mark value (the only ones that
    cross borders) in tiers `column`: margin.vectorised._requirement_line's additions."""
    at = legs.base[rows] + column
    size = legs.size[rows]
    slope = size * legs.rate[at] + np.where(legs.fee_in_requirement[rows], size * legs.fee[rows], 0.0)
    intercept = (0.0 - np.where(legs.uses_amount[rows], legs.amount[at], 0.0)) + legs.fee_to_close[rows]
    if health != 1.0:
        slope, intercept = slope * health, intercept * health
    return slope, intercept


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
        _run_class(legs, groups, begin, direction, ids[walks[ids]], rows[:, walks[ids]], result)
    return result


def _run_class(
    legs: Legs, groups: Groups, begin: Start, direction: int, ids: IntArray, rows: IntArray, result: FloatArray
) -> None:
    """`run` for the groups `ids` of one class (their rows: k x w)."""
    if ids.size == 0:
        return
    up = direction > 0
    column, slope, intercept, leg = begin.column[rows], begin.slope[rows], begin.intercept[rows], begin.border[rows]
    constant = groups.fixed[ids] - _sum(intercept)
    coefficient = groups.side_term[ids] - _sum(slope)
    price = groups.mark[ids]
    gap_at_mark = groups.gap_at_mark[ids]
    # a leg exactly on a tier floor: where the requirement jumps there, the gap crosses 0 at
    # the mark itself (margin.liquidation._walk)
    alive = ~((constant + coefficient * price) * gap_at_mark <= 0)
    result[ids[~alive]] = price[~alive]
    for _ in range(legs.n_columns * rows.shape[0] + 2):  # as many borders as there are
        if up:
            border = leg.min(axis=0)  # +inf: no border
        else:
            border = np.maximum(leg.max(axis=0), 0.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            root = -constant / coefficient
        inside = (
            alive
            & (coefficient != 0.0)
            & ((root - price) * direction >= 0)
            & (np.isinf(border) | ((border - root) * direction >= 0))
        )
        found = root[inside]
        result[ids[inside]] = np.where(found > 0.0, found, np.nan)
        going_on = np.flatnonzero(alive & ~inside & np.isfinite(border) & (border > 0.0))
        if going_on.size == 0:
            return
        if going_on.size < ids.size:
            ids, rows, border, gap_at_mark = ids[going_on], rows[:, going_on], border[going_on], gap_at_mark[going_on]
            column, slope, intercept, leg = (
                column[:, going_on],
                slope[:, going_on],
                intercept[:, going_on],
                leg[:, going_on],
            )

        # Step across the border; where the requirement jumps, the gap may cross 0 there.
        # The line of the new segment is also where the next step starts.
        crossing = np.nonzero(leg == border)
        moved = rows[crossing]
        to = column[crossing] + direction
        column[crossing] = to
        slope[crossing], intercept[crossing] = _mark_lines(legs, moved, to, groups.health)
        leg[crossing] = leg_borders(legs, moved, to, up)
        constant = groups.fixed[ids] - _sum(intercept)
        coefficient = groups.side_term[ids] - _sum(slope)
        jump = (constant + coefficient * border) * gap_at_mark <= 0
        result[ids[jump]] = border[jump]
        price = border
        alive = ~jump
