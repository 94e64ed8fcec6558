"""Liquidation prices and distances.

The general rule (Binance USD-M FAQ; see margin.rules for every venue's source): the
liquidation price P of a position solves equity(P) = maintenance requirement(P) for its
pool, with every other position of the pool held at its mark. Positions of the same
symbol in the same pool (the two legs of a hedge-mode position) move together, so both
legs share one liquidation price, as Binance states.

With the tiers fixed, both sides are linear in P, so P is one division. Tiers change with
the notional, so the solver walks from the mark toward the root one tier segment at a
time, stepping each leg's tier as the price crosses its floor, and solves on the segment
that holds the root: the tier is the one at the notional at the liquidation price
(Binance: "if the notional at the liquidation price falls into another bracket,
recalculate with that bracket"). Venues without a maintenance amount (OKX, Gate)
have a requirement that jumps at tier borders; there the liquidation price can be the
border itself, where the jump carries the pool below its requirement.
"""

from __future__ import annotations

import math

from margin.pools import (
    maintenance_requirement,
    pool_figures,
    pool_of,
    requirement_line,
    rule_for,
    taker_fee,
    tier_column,
    unrealized_pnl,
)
from margin.rules import ModeRule
from margin.snapshot import Position, Snapshot


def hedge_legs(snapshot: Snapshot, index: int) -> tuple[int, ...]:
    """Positions that move with position `index`: same pool, same symbol."""
    pos = snapshot.positions[index]
    if pos.margin_mode == "isolated":
        return (index,)
    return tuple(i for i, p in enumerate(snapshot.positions) if p.margin_mode == "cross" and p.symbol == pos.symbol)


def liquidation_price(snapshot: Snapshot, index: int) -> float | None:
    """Price (quote currency) of position `index`'s symbol at which its pool is liquidated,
    other symbols held at mark; None when no positive price liquidates it (a fully
    collateralised long, say). For a pool already past liquidation, the price at which it
    would be back at its requirement."""
    pool = pool_of(snapshot, index)
    leg_indices = hedge_legs(snapshot, index)
    legs = [snapshot.positions[i] for i in leg_indices]
    rule = rule_for(snapshot).mode(pool.margin_mode)
    fee = taker_fee(snapshot)

    # Everything that does not move with P: the balance, the other positions at mark.
    fixed = pool.balance
    for i in pool.indices:
        if i in leg_indices:
            continue
        other = snapshot.positions[i]
        fixed += unrealized_pnl(other, other.mark_price)
        fixed -= maintenance_requirement(other, rule, fee, other.mark_price)

    def line(columns: list[int]) -> tuple[float, float]:
        """gap(P) = constant + coefficient x P with the legs in tiers `columns`."""
        constant, coefficient = fixed, 0.0
        for p, column in zip(legs, columns, strict=True):
            slope, intercept = requirement_line(p, rule, fee, column)
            constant += -p.sign * p.size * p.entry_price - intercept
            coefficient += p.sign * p.size - slope
        return constant, coefficient

    mark = legs[0].mark_price
    columns = [tier_column(p, rule, mark) for p in legs]
    constant, coefficient = line(columns)
    gap_at_mark = constant + coefficient * mark
    if gap_at_mark == 0.0:
        return mark
    if coefficient == 0.0:
        return None
    # Walk toward the root: down when the gap falls with the price, up when it rises.
    direction = (-1 if coefficient > 0 else 1) * (1 if gap_at_mark > 0 else -1)
    if direction < 0:
        columns = [tier_column(p, rule, mark, below=True) for p in legs]
    price = mark
    for _ in range(sum(len(p.tiers) for p in legs) + 2):
        constant, coefficient = line(columns)
        border = tier_border(legs, columns, rule, direction)
        if coefficient != 0.0:
            root = -constant / coefficient
            if (root - price) * direction >= 0 and (border is None or (border - root) * direction >= 0):
                return root if root > 0.0 else None
        if border is None or border <= 0.0:
            return None
        columns = [
            c + direction if border == leg_border(p, c, rule, direction) else c
            for p, c in zip(legs, columns, strict=True)
        ]
        # Without a maintenance amount the requirement jumps at a tier border: the gap can
        # cross zero there, and the border itself is the liquidation price.
        constant, coefficient = line(columns)
        if (constant + coefficient * border) * gap_at_mark <= 0:
            return border
        price = border
    return None


def leg_border(pos: Position, column: int, rule: ModeRule, direction: int) -> float | None:
    """Price at which `pos` leaves tier `column`, going up (1) or down (-1); None if never."""
    if rule.maintenance_basis == "entry":
        return None
    if direction > 0:
        return pos.tiers[column + 1].min_notional / pos.size if column + 1 < len(pos.tiers) else None
    return pos.tiers[column].min_notional / pos.size if column > 0 else None


def tier_border(legs: list[Position], columns: list[int], rule: ModeRule, direction: int) -> float | None:
    """The nearest price in `direction` where a leg changes tier: 0 going down when none
    does, None going up."""
    borders = [b for p, c in zip(legs, columns, strict=True) if (b := leg_border(p, c, rule, direction)) is not None]
    if direction > 0:
        return min(borders) if borders else None
    return max(borders) if borders else 0.0


def distance_to_liquidation(snapshot: Snapshot, index: int, liq_price: float | None) -> float | None:
    """Signed distance from mark to the liquidation price, as a fraction of mark:
    positive while the pool is above its requirement, negative once past it."""
    if liq_price is None:
        return None
    pos = snapshot.positions[index]
    figures = pool_figures(snapshot, pool_of(snapshot, index))
    gap = abs(pos.mark_price - liq_price) / pos.mark_price
    return gap if figures.equity >= figures.maintenance_margin else -gap


def distance_in_sigma(snapshot: Snapshot, index: int, liq_price: float | None, distance: float | None) -> float | None:
    """Distance to liquidation in daily standard deviations of log returns:
    |ln(mark / liquidation price)| / volatility, with the sign of `distance`."""
    pos = snapshot.positions[index]
    if liq_price is None or distance is None or not pos.volatility:
        return None
    return math.copysign(abs(math.log(pos.mark_price / liq_price)), distance) / pos.volatility


def disagrees(ours: float | None, theirs: float | None, tolerance: float = 0.005) -> bool:
    """True when our liquidation price and the exchange's differ by more than `tolerance`
    (relative to the exchange's). An exchange price of 0 means "none", as several venues
    report it."""
    theirs = theirs or None
    if theirs is None:
        return False
    if ours is None:
        return True
    return abs(ours - theirs) / theirs > tolerance
