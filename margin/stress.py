"""Stress test: every mark moved by the same fraction (a shock of -0.2 puts every price at
80 % of its mark), and the smallest such shock that liquidates each pool.

Under a uniform shock the pool, not the position, is what the venue liquidates, so a
position is "past liquidation" when its pool's health is below 1 at that shock.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import pairwise

from margin.pools import (
    Pool,
    pool_figures,
    pools,
    requirement_line,
    rule_for,
    taker_fee,
    tier_column,
)
from margin.snapshot import Snapshot

DEFAULT_SHOCKS: tuple[float, ...] = tuple(round(s / 10, 1) for s in range(-5, 6) if s != 0)

# The search for an upward liquidating shock stops at prices x (1 + this): a short book
# that survives a 1,000 % rally is reported as having no upward liquidation.
MAX_UPWARD_SHOCK = 10.0


@dataclass(frozen=True)
class PoolStress:
    pool: Pool
    equity: float
    maintenance_margin: float
    health: float | None

    @property
    def liquidated(self) -> bool:
        return bool(self.pool.indices) and self.equity <= self.maintenance_margin


@dataclass(frozen=True)
class Scenario:
    shock: float
    pools: tuple[PoolStress, ...]

    @property
    def liquidated_positions(self) -> tuple[int, ...]:
        return tuple(sorted(i for p in self.pools if p.liquidated for i in p.pool.indices))


@dataclass(frozen=True)
class LiquidatingShock:
    """The smallest downward and upward uniform shocks that bring the pool to health 1
    (0 when it is already there; None when no shock in range does)."""

    pool: Pool
    down: float | None
    up: float | None

    @property
    def smallest(self) -> float | None:
        found = [s for s in (self.down, self.up) if s is not None]
        return min(found, key=abs) if found else None

    @property
    def side(self) -> str | None:
        """ "down" or "up": the side of the smallest liquidating shock (None: neither)."""
        smallest = self.smallest
        if smallest is None:
            return None
        return "down" if smallest == self.down else "up"


def shocked_prices(snapshot: Snapshot, shock: float) -> list[float]:
    return [p.mark_price * (1.0 + shock) for p in snapshot.positions]


def stress_test(snapshot: Snapshot, shocks: Sequence[float] = DEFAULT_SHOCKS) -> list[Scenario]:
    """Each pool's equity and health under each uniform shock."""
    result = []
    for shock in shocks:
        prices = shocked_prices(snapshot, shock)
        figures = [pool_figures(snapshot, pool, prices) for pool in pools(snapshot)]
        result.append(
            Scenario(
                shock,
                tuple(PoolStress(f.pool, f.equity, f.maintenance_margin, f.health) for f in figures),
            )
        )
    return result


def liquidating_shocks(snapshot: Snapshot) -> list[LiquidatingShock]:
    """For every pool that holds a position, the smallest liquidating shock each way.

    With the tiers fixed, equity - requirement is linear in the shock; tiers change where a
    position's notional crosses a tier floor. Walk outward from 0 one such segment at a
    time and solve on the first segment where the gap reaches 0 (or return the border where
    a requirement that jumps, on venues without a maintenance amount, carries it below 0).
    """
    result = []
    for pool in pools(snapshot):
        if not pool.indices:
            continue
        gap_line = _gap_line(snapshot, pool)
        if gap_line(0.0)[0] <= 0:
            result.append(LiquidatingShock(pool, 0.0, 0.0))
            continue
        borders = (
            [
                t.min_notional / (p.size * p.mark_price) - 1.0
                for p in (snapshot.positions[i] for i in pool.indices)
                for t in p.tiers
                if t.min_notional > 0
            ]
            if rule_for(snapshot).mode(pool.margin_mode).maintenance_basis == "mark"
            else []
        )
        down = _walk(gap_line, sorted((b for b in borders if -1.0 < b < 0.0), reverse=True), -1.0)
        up = _walk(gap_line, sorted(b for b in borders if 0.0 < b < MAX_UPWARD_SHOCK), MAX_UPWARD_SHOCK)
        result.append(LiquidatingShock(pool, down, up))
    return result


def _gap_line(snapshot: Snapshot, pool: Pool) -> Callable[[float], tuple[float, float]]:
    """For a shock s, the gap (equity - requirement) as constant + slope x s', valid for s'
    in the tier segment that holds s."""
    rule = rule_for(snapshot).mode(pool.margin_mode)
    fee = taker_fee(snapshot)
    positions = [snapshot.positions[i] for i in pool.indices]

    def line(shock: float) -> tuple[float, float]:
        constant, slope = pool.balance, 0.0
        for p in positions:
            column = tier_column(p, rule, p.mark_price * (1.0 + shock))
            k, intercept = requirement_line(p, rule, fee, column)
            constant += p.sign * p.size * (p.mark_price - p.entry_price) - k * p.mark_price - intercept
            slope += p.sign * p.size * p.mark_price - k * p.mark_price
        return constant, slope

    return line


def _walk(gap_line: Callable[[float], tuple[float, float]], borders: list[float], limit: float) -> float | None:
    """The first shock from 0 toward `limit` where the gap reaches 0, or None."""
    points = [0.0, *borders, limit]
    for start, end in pairwise(points):
        constant, slope = gap_line((start + end) / 2)
        at_start, at_end = constant + slope * start, constant + slope * end
        if at_start <= 0:
            return start
        if at_end <= 0:
            return -constant / slope
    return None


def price_for_health(snapshot: Snapshot, symbol: str, health: float) -> float | None:
    """The price of `symbol` (every position in it, other symbols at mark) at which the
    cross pool's health is `health` — "where does BTC have to be for my account to be at
    1.5?" — on the side of the mark where the pool weakens; None if no price there does it.
    Bisection on the health, which is monotone in one symbol's price for a net long or a
    net short book in it."""
    held = [i for i, p in enumerate(snapshot.positions) if p.symbol == symbol]
    if not held:
        raise ValueError(f"no position in {symbol}")
    cross = pools(snapshot)[0]
    mark = snapshot.positions[held[0]].mark_price

    def health_at(price: float) -> float:
        prices = [price if p.symbol == symbol else p.mark_price for p in snapshot.positions]
        figures = pool_figures(snapshot, cross, prices)
        return figures.health if figures.health is not None else math.inf

    rising = health_at(mark * 1.001) >= health_at(mark)
    low, high = (mark * 1e-6, mark * 1e3)
    if (health_at(low) - health) * (health_at(high) - health) > 0:
        return None
    for _ in range(200):
        middle = (low + high) / 2
        if (health_at(middle) < health) == rising:
            low = middle
        else:
            high = middle
    return high if rising else low
