"""Liquidation prices and distances.

The general rule (Binance USD-M FAQ; see margin.rules for every venue's source): the
liquidation price P of a position solves equity(P) = maintenance requirement(P) for its
pool, with every other position of the pool held at its mark. Positions of the same
symbol in the same pool (the two legs of a hedge-mode position) move together, so both
legs share one liquidation price, as Binance states.

With the tiers fixed, both sides are linear in P, so P is one division. The tier is then
re-selected at the notional at P and the division repeated until the tiers no longer
change (Binance: "if the notional at the liquidation price falls into another bracket,
recalculate with that bracket"). Because the requirement is convex in the price, this is
Newton's method on a concave piecewise-linear function and ends within as many steps as
there are tiers.
"""

from __future__ import annotations

import math

from margin.pools import pool_figures, pool_of, requirement_line, rule_for, taker_fee
from margin.snapshot import Snapshot
from margin.tiers import tier_index


def hedge_legs(snapshot: Snapshot, index: int) -> tuple[int, ...]:
    """Positions that move with position `index`: same pool, same symbol."""
    pos = snapshot.positions[index]
    if pos.margin_mode == "isolated":
        return (index,)
    return tuple(
        i
        for i, p in enumerate(snapshot.positions)
        if p.margin_mode == "cross" and p.symbol == pos.symbol
    )


def liquidation_price(snapshot: Snapshot, index: int) -> float | None:
    """Price (quote currency) of position `index`'s symbol at which its pool is liquidated,
    other symbols held at mark; None when no positive price liquidates it (a fully
    collateralised long, say)."""
    pool = pool_of(snapshot, index)
    legs = hedge_legs(snapshot, index)
    rule = rule_for(snapshot).mode(pool.margin_mode)
    fee = taker_fee(snapshot)

    # Everything that does not move with P: the balance, the other positions at mark.
    fixed = pool.balance
    for i in pool.indices:
        if i in legs:
            continue
        other = snapshot.positions[i]
        slope, intercept = requirement_line(other, rule, fee, other.mark_price)
        fixed += other.sign * other.size * (other.mark_price - other.entry_price)
        fixed -= slope * other.mark_price + intercept

    positions = [snapshot.positions[i] for i in legs]
    price = positions[0].mark_price
    max_steps = sum(len(p.tiers) for p in positions) + 2
    for _ in range(max_steps):
        constant, coefficient = fixed, 0.0
        for p in positions:
            slope, intercept = requirement_line(p, rule, fee, price)
            constant += -p.sign * p.size * p.entry_price - intercept
            coefficient += p.sign * p.size - slope
        if coefficient == 0.0:
            return None
        solved = -constant / coefficient
        if all(
            tier_index(p.tiers, p.size * max(solved, 0.0))
            == tier_index(p.tiers, p.size * max(price, 0.0))
            for p in positions
        ):
            price = solved
            break
        price = solved
    if not math.isfinite(price) or price <= 0.0:
        return None
    return price


def distance_to_liquidation(snapshot: Snapshot, index: int, liq_price: float | None) -> float | None:
    """Signed distance from mark to the liquidation price, as a fraction of mark:
    positive while the pool is above its requirement, negative once past it."""
    if liq_price is None:
        return None
    pos = snapshot.positions[index]
    figures = pool_figures(snapshot, pool_of(snapshot, index))
    gap = abs(pos.mark_price - liq_price) / pos.mark_price
    return gap if figures.equity >= figures.maintenance_margin else -gap


def distance_in_sigma(
    snapshot: Snapshot, index: int, liq_price: float | None, distance: float | None
) -> float | None:
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
