"""Liquidation prices on both sides of the mark, and distances to them.

The general rule (Binance USD-M FAQ; see margin.rules for every venue's source): the
liquidation price P of a position solves equity(P) = maintenance requirement(P) for its
pool, with every other position of the pool held at its mark. Positions of the same
symbol in the same pool (the two legs of a hedge-mode position) move together, so both
legs share their liquidation prices, as Binance states.

A book can liquidate on both sides of its mark: hedge legs in different tiers, or a pool
whose requirement grows faster with the price than its equity does. So the solver looks
both ways and returns the first price below the mark and the first above it where the
pool reaches its requirement (each None when no positive price does); the nearest of the
two is the headline.

With the tiers fixed, both sides of equity(P) = requirement(P) are linear in P, so a root
is one division. Tiers change with the notional, so each side is walked from the mark one
tier segment at a time, stepping each leg's tier as the price crosses its floor, and
solved on the segment that holds the root: the tier is the one at the notional at the
liquidation price (Binance: "if the notional at the liquidation price falls into another
bracket, recalculate with that bracket"). An inverse (coin-margined) symbol is solved the
same way in u = 1/P, where its PnL and requirement are linear (margin.inverse). Venues
without a maintenance amount (OKX, Gate) have a requirement that jumps at tier borders;
there the liquidation price can be the border itself, where the jump carries the pool
below its requirement.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from margin.inverse import from_twin_price, linear_twin
from margin.pools import (
    Pool,
    maintenance_requirement,
    pools,
    requirement_line,
    rule_for,
    taker_fee,
    tier_column,
    unrealized_pnl,
)
from margin.rules import ModeRule
from margin.snapshot import Position, Snapshot
from margin.tiers import tier_shape

Side = Literal["down", "up"]


@dataclass(frozen=True)
class Liquidation:
    """Where one position's pool reaches its requirement, moving the position's symbol
    (prices in quote currency). `down` is the first such price below the mark, `up` the
    first above it (None: no positive price does). `past`: the pool is already below its
    requirement at the mark; the prices are then where it would be back at it."""

    mark: float
    down: float | None
    up: float | None
    past: bool = False

    @property
    def side(self) -> Side | None:
        """The side of the nearest liquidation price (None when there is none)."""
        if self.down is None and self.up is None:
            return None
        if self.up is None:
            return "down"
        if self.down is None:
            return "up"
        return "down" if self.mark - self.down <= self.up - self.mark else "up"

    @property
    def nearest(self) -> float | None:
        """The liquidation price nearest the mark."""
        side = self.side
        return None if side is None else (self.down if side == "down" else self.up)

    @property
    def distance(self) -> float | None:
        """Signed distance from the mark to the nearest liquidation price, as a fraction of
        the mark: positive while the pool is above its requirement, negative once past."""
        return signed_distance(self.mark, self.nearest, self.past)

    def distance_to(self, side: Side) -> float | None:
        """Signed distance to the liquidation price on `side` (None when there is none)."""
        return signed_distance(self.mark, self.down if side == "down" else self.up, self.past)


def signed_distance(mark: float, price: float | None, past: bool) -> float | None:
    """|mark − price| / mark, negative once the pool is past liquidation."""
    if price is None:
        return None
    gap = abs(mark - price) / mark
    return -gap if past else gap


def distance_in_sigma(
    mark: float, price: float | None, distance: float | None, volatility: float | None
) -> float | None:
    """Distance to a liquidation price in daily standard deviations of log returns:
    |ln(mark / price)| / σ_daily, with the sign of the signed `distance` (None without a
    price or a volatility)."""
    if price is None or distance is None or not volatility or price <= 0:
        return None
    return math.copysign(abs(math.log(mark / price)), distance) / volatility


def hedge_legs(snapshot: Snapshot, index: int) -> tuple[int, ...]:
    """Positions that move with position `index`: same pool, same symbol."""
    pos = snapshot.positions[index]
    if pos.margin_mode == "isolated":
        return (index,)
    return tuple(i for i, p in enumerate(snapshot.positions) if p.margin_mode == "cross" and p.symbol == pos.symbol)


def all_liquidations(snapshot: Snapshot, health: float = 1.0) -> tuple[Liquidation, ...]:
    """Both-side liquidation prices of every position, in the snapshot's order: each pool's
    figures at mark are summed once, so the work grows with the number of positions (times
    their tiers), not with its square. With `health`, the prices where the pool's health
    is that instead of 1 (equity = health x requirement; `past`: below it now)."""
    if snapshot.multi_collateral:  # issue 13: collateral moves with the prices
        from margin.collateral_liquidation import collateral_liquidations

        return collateral_liquidations(snapshot, health)
    result: list[Liquidation | None] = [None] * len(snapshot.positions)
    rule_of = rule_for(snapshot)
    fee = taker_fee(snapshot)
    for pool in pools(snapshot):
        if not pool.indices:
            continue
        rule = rule_of.mode(pool.margin_mode)
        own = _PoolAtMark.of(snapshot, pool, rule, fee, health)
        groups: dict[str, list[int]] = {}
        for i in pool.indices:
            groups.setdefault(snapshot.positions[i].symbol, []).append(i)
        for legs in groups.values():
            found = _solve(snapshot, legs, rule, fee, own.without(legs), own.gap, health)
            for i in legs:
                result[i] = found
    return tuple(r for r in result if r is not None)


def liquidation_prices(snapshot: Snapshot, index: int) -> Liquidation:
    """Both-side liquidation prices of position `index` (other symbols held at mark)."""
    if snapshot.multi_collateral:
        return all_liquidations(snapshot)[index]
    pool = _pool_of(snapshot, index)
    legs = list(hedge_legs(snapshot, index))
    rule = rule_for(snapshot).mode(pool.margin_mode)
    fee = taker_fee(snapshot)
    own = _PoolAtMark.of(snapshot, pool, rule, fee)
    return _solve(snapshot, legs, rule, fee, own.without(legs), own.gap)


def liquidation_price(snapshot: Snapshot, index: int) -> float | None:
    """The liquidation price of position `index` nearest its mark (either side)."""
    return liquidation_prices(snapshot, index).nearest


def _pool_of(snapshot: Snapshot, index: int) -> Pool:
    pos = snapshot.positions[index]
    if pos.margin_mode == "isolated":
        return Pool(f"isolated:{index}", "isolated", (index,), pos.isolated_margin or 0.0)
    cross = tuple(i for i, p in enumerate(snapshot.positions) if p.margin_mode == "cross")
    return Pool("cross", "cross", cross, snapshot.wallet_balance)


@dataclass(frozen=True)
class _PoolAtMark:
    """A pool at mark: its equity and requirement, and each position's PnL and
    requirement. Equity and requirement are kept apart (as the vectorised engine keeps
    them) so that taking some positions out of the totals cancels exactly where they were
    all there is."""

    equity: float
    requirement: float
    pnl: dict[int, float]
    owed: dict[int, float]
    health: float

    @classmethod
    def of(cls, snapshot: Snapshot, pool: Pool, rule: ModeRule, fee: float, health: float = 1.0) -> _PoolAtMark:
        positions = {i: snapshot.positions[i] for i in pool.indices}
        pnl = {i: unrealized_pnl(p, p.mark_price) for i, p in positions.items()}
        owed = {i: maintenance_requirement(p, rule, fee, p.mark_price) for i, p in positions.items()}
        return cls(pool.balance + sum(pnl.values()), sum(owed.values()), pnl, owed, health)

    @property
    def gap(self) -> float:
        """equity − health x requirement at mark (below 0: past it)."""
        return self.equity - self.health * self.requirement

    def without(self, legs: Sequence[int]) -> float:
        """The gap (equity − health x requirement) of the rest of the pool, from the totals
        less the legs (linear time over all groups)."""
        equity = self.equity - sum(self.pnl[i] for i in legs)
        requirement = self.requirement - sum(self.owed[i] for i in legs)
        return equity - self.health * requirement


def _solve(
    snapshot: Snapshot,
    leg_indices: Sequence[int],
    rule: ModeRule,
    fee: float,
    fixed: float,
    pool_gap: float,
    health: float = 1.0,
) -> Liquidation:
    """Both sides for the legs `leg_indices` of one symbol in one pool, where `fixed` is the
    pool's gap without them (balance + the other positions at mark); the gap is equity −
    health x requirement (health 1: liquidation)."""
    first = snapshot.positions[leg_indices[0]]
    # inverse legs are solved as their linear twins in u = 1/P (margin.inverse), where the
    # gap is linear on each tier segment; the twin's side above its mark is ours below it
    legs = _Legs([linear_twin(snapshot.positions[i]) for i in leg_indices], rule, fee, fixed, health)
    mark = legs.positions[0].mark_price
    # the pool's gap at mark (from its totals, as margin.pools computes health) is the sign
    # every walk keeps: near 0, a line's own value at the mark can round to the other side
    at_mark, past = pool_gap, pool_gap < 0
    if at_mark == 0.0:
        return Liquidation(first.mark_price, first.mark_price, first.mark_price, past)
    down = up = None
    ruled_out_down, ruled_out_up = _sides_without_root(legs, mark, at_mark)
    if not ruled_out_down:
        down = _walk(legs, mark, at_mark, -1)
    if not ruled_out_up:
        up = _walk(legs, mark, at_mark, 1)
    if first.inverse:
        return Liquidation(first.mark_price, from_twin_price(first, up), from_twin_price(first, down), past)
    return Liquidation(mark, down, up, past)


@dataclass(frozen=True)
class _Legs:
    """The legs of one symbol in one pool, and the rest of the pool as `fixed`; the gap is
    equity − health x requirement."""

    positions: list[Position]
    rule: ModeRule
    fee: float
    fixed: float
    health: float = 1.0

    def line(self, columns: list[int]) -> tuple[float, float]:
        """The pool's gap as constant + coefficient x P, with the legs in tiers `columns`.
        The legs' entry terms are summed before the rest of the pool is added: a perfect
        hedge's cancel exactly there, instead of losing the rest's small digits (as the
        vectorised engine sums them)."""
        entries = requirement = slopes = sides = 0.0
        for p, column in zip(self.positions, columns, strict=True):
            slope, intercept = requirement_line(p, self.rule, self.fee, column)
            entries += -p.sign * p.size * p.entry_price
            requirement += self.health * intercept
            sides += p.sign * p.size
            slopes += self.health * slope
        return self.fixed + entries - requirement, sides - slopes


def _sides_without_root(legs: _Legs, mark: float, at_mark: float) -> tuple[bool, bool]:
    """The sides of a solvent pool that hold no root, known without walking them, when every
    leg's rates rise from tier to tier (so the requirement at P is at most the top rates x
    the notional, and at P < mark at most the mark's rates x the notional):

    - below: the gap at P <= mark is at least the line through the gap at 0 and at the mark
      (or, with continuous tiers, the gap is concave): none when the gap at 0 is >= 0;
    - above, continuous tiers: the gap is concave, so none when its slope past the last tier
      is >= 0; tiers without a maintenance amount: the gap is at least the line with the top
      rates, so none when that line's slope is >= 0 and it is >= 0 at the mark.
    Walking a side with nothing on it would cross every tier of it."""
    if at_mark <= 0:
        return False, False
    rule = legs.rule
    shapes = [tier_shape(p.tiers) for p in legs.positions]
    if not all(rising for rising, _ in shapes):
        return False, False
    continuous = all(c for _, c in shapes)
    if rule.uses_maintenance_amount and not continuous:
        return False, False
    at_zero = legs.line([tier_column(p, rule, 0.0) for p in legs.positions])[0]
    constant, coefficient = legs.line(_last_columns(legs.positions, rule, mark))
    above = coefficient >= 0 and (rule.uses_maintenance_amount or constant + coefficient * mark >= 0)
    return at_zero >= 0, above


def _last_columns(legs: list[Position], rule: ModeRule, mark: float) -> list[int]:
    """Each leg's tier far above the mark (its last; its entry tier on entry-basis venues)."""
    if rule.maintenance_basis == "entry":
        return [tier_column(p, rule, mark) for p in legs]
    return [len(p.tiers) - 1 for p in legs]


def _walk(legs: _Legs, mark: float, at_mark: float, direction: int) -> float | None:
    """The first price from the mark in `direction` (-1 down, +1 up) where the gap reaches 0
    (or a requirement jump carries it across 0); None if no positive price does."""
    rule, positions = legs.rule, legs.positions
    columns = [tier_column(p, rule, mark, below=direction < 0) for p in positions]
    constant, coefficient = legs.line(columns)
    if (constant + coefficient * mark) * at_mark <= 0:
        # a leg exactly on a tier floor: the tier below starts at the mark, and where the
        # requirement jumps there (OKX, Gate) the gap crosses 0 at the mark itself
        return mark
    price = mark
    for _ in range(sum(len(p.tiers) for p in positions) + 2):
        constant, coefficient = legs.line(columns)
        border = tier_border(positions, columns, rule, direction)
        root = _segment_root(constant, coefficient, price, direction, at_mark)
        if root is not None and (border is None or (border - root) * direction >= 0):
            return root if root > 0.0 else None
        if border is None or border <= 0.0:
            return None
        columns = [
            c + direction if border == leg_border(p, c, rule, direction) else c
            for p, c in zip(positions, columns, strict=True)
        ]
        # Without a maintenance amount the requirement jumps at a tier border: the gap can
        # cross zero there, and the border itself is the liquidation price.
        constant, coefficient = legs.line(columns)
        if (constant + coefficient * border) * at_mark <= 0:
            return border
        price = border
    return None


def _segment_root(constant: float, coefficient: float, price: float, direction: int, at_mark: float) -> float | None:
    """The root of the segment's line from `price` on in `direction`, where the gap has the
    sign of `at_mark`: only if the line heads for 0 that way. A root that rounding put just
    behind `price` (a pool within a rounding error of its requirement) is `price` itself,
    so the side is the one the line's slope says, not the one the last digit says."""
    if coefficient * direction * at_mark >= 0:
        return None
    root = -constant / coefficient
    return price if (root - price) * direction < 0 else root


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


def agrees_with_either(liquidation: Liquidation, theirs: float | None, tolerance: float = 0.005) -> bool:
    """The exchange reports one liquidation price; it agrees when it is close to either of
    ours (a venue may report the side we do not take as the nearest)."""
    if not theirs:
        return True
    return any(not disagrees(p, theirs, tolerance) for p in (liquidation.down, liquidation.up) if p is not None)
