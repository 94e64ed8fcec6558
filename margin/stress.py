"""Stress test: every mark moved by the same fraction (a shock of -0.2 puts every price at
80 % of its mark), and the smallest such shock that liquidates each pool.

Under a uniform shock the pool, not the position, is what the venue liquidates, so a
position is "past liquidation" when its pool's health is below 1 at that shock.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from margin.inverse import linear_twin
from margin.pools import (
    Pool,
    pool_figures,
    pools,
    requirement_line,
    rule_for,
    taker_fee,
    tier_column,
)
from margin.rules import ModeRule
from margin.snapshot import Position, Snapshot
from margin.vectorised import batch_from_snapshots, pool_totals

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
    """Each pool's equity and health under each uniform shock (the vectorised engine's pool
    totals: one pass over the positions per shock)."""
    if snapshot.multi_collateral:  # issue 13: the collateral moves with the shock
        from margin.collateral_stress import collateral_stress

        return collateral_stress(snapshot, shocks)
    every = pools(snapshot)
    batch = batch_from_snapshots([snapshot])  # its pools are `every`, in the same order
    result = []
    for shock in shocks:
        equity, requirement = pool_totals(batch, batch.mark * (1.0 + shock))
        stressed = []
        for k, pool in enumerate(every):
            health = float(equity[k] / requirement[k]) if pool.indices and requirement[k] > 0 else None
            stressed.append(PoolStress(pool, float(equity[k]), float(requirement[k]), health))
        result.append(Scenario(shock, tuple(stressed)))
    return result


def liquidating_shocks(snapshot: Snapshot) -> list[LiquidatingShock]:
    """For every pool that holds a position, the smallest liquidating shock each way.

    With the tiers fixed, equity - requirement is linear in the shock; tiers change where a
    position's notional crosses a tier floor. Walk outward from 0 one such segment at a
    time and solve on the first segment where the gap reaches 0 (or return the border where
    a requirement that jumps, on venues without a maintenance amount, carries it below 0).
    The line is kept as running sums, and at each border only the positions that change
    tier there are updated: the work grows with positions x tiers, not with its square.
    """
    if snapshot.multi_collateral:
        from margin.collateral_stress import collateral_liquidating_shocks

        return collateral_liquidating_shocks(snapshot, MAX_UPWARD_SHOCK)
    result = []
    fee = taker_fee(snapshot)
    for pool in pools(snapshot):
        if not pool.indices:
            continue
        rule = rule_for(snapshot).mode(pool.margin_mode)
        inverse = snapshot.positions[pool.indices[0]].inverse
        # an inverse pool is walked as its linear twins (margin.inverse), where a shock s of
        # the price is the shock 1/(1+s) - 1 of the twin's, so the directions swap
        positions = [linear_twin(snapshot.positions[i]) for i in pool.indices]
        at_zero = _PoolLine(positions, rule, fee, pool.balance, [tier_column(p, rule, p.mark_price) for p in positions])
        if at_zero.constant <= 0:
            result.append(LiquidatingShock(pool, 0.0, 0.0))
            continue
        if inverse:
            twin_up = _walk(positions, rule, fee, pool.balance, 1, _TWIN_LIMIT)
            twin_down = _walk(positions, rule, fee, pool.balance, -1, 1.0 / (1.0 + MAX_UPWARD_SHOCK) - 1.0)
            result.append(LiquidatingShock(pool, _from_twin_shock(twin_up), _from_twin_shock(twin_down)))
            continue
        down = _walk(positions, rule, fee, pool.balance, -1, -1.0)
        up = _walk(positions, rule, fee, pool.balance, 1, MAX_UPWARD_SHOCK)
        result.append(LiquidatingShock(pool, down, up))
    return result


# The twin's upward walk (the price falling toward 0) stops where the price is 1e-12 of its
# mark: a pool still standing there has no downward liquidation.
_TWIN_LIMIT = 1e12


def _from_twin_shock(shock: float | None) -> float | None:
    """A shock of an inverse pool's twin prices as a shock of the prices: 1/(1+s) - 1."""
    return None if shock is None else 1.0 / (1.0 + shock) - 1.0


class _PoolLine:
    """A pool's gap (equity - requirement) as constant + slope x shock, with each position
    in a given tier column; `move` changes one position's column and updates the sums."""

    def __init__(self, positions: list[Position], rule: ModeRule, fee: float, balance: float, columns: list[int]):
        self.positions, self.rule, self.fee = positions, rule, fee
        self.columns = list(columns)
        self.constant, self.slope = balance, 0.0
        for j, column in enumerate(self.columns):
            c, k = self._term(j, column)
            self.constant += c
            self.slope += k

    def _term(self, j: int, column: int) -> tuple[float, float]:
        p = self.positions[j]
        k, intercept = requirement_line(p, self.rule, self.fee, column)
        return (
            p.sign * p.size * (p.mark_price - p.entry_price) - k * p.mark_price - intercept,
            p.sign * p.size * p.mark_price - k * p.mark_price,
        )

    def move(self, j: int, column: int) -> None:
        old_c, old_k = self._term(j, self.columns[j])
        new_c, new_k = self._term(j, column)
        self.constant += new_c - old_c
        self.slope += new_k - old_k
        self.columns[j] = column

    def at(self, shock: float) -> float:
        return self.constant + self.slope * shock


def _borders(positions: list[Position], rule: ModeRule, direction: int, limit: float) -> list[tuple[float, int, int]]:
    """(shock, position, column entered) where a position changes tier, from 0 toward
    `limit`, in walking order."""
    if rule.maintenance_basis != "mark":
        return []
    events = []
    for j, p in enumerate(positions):
        notional = p.size * p.mark_price
        start = tier_column(p, rule, p.mark_price, below=direction < 0)
        if direction < 0:
            for column in range(start, 0, -1):  # leaving `column` downward, into column - 1
                shock = p.tiers[column].min_notional / notional - 1.0
                if shock > limit:
                    events.append((shock, j, column - 1))
        else:
            for column in range(start + 1, len(p.tiers)):
                shock = p.tiers[column].min_notional / notional - 1.0
                if shock < limit:
                    events.append((shock, j, column))
    events.sort(key=lambda e: e[0] * direction)
    return events


def _walk(
    positions: list[Position], rule: ModeRule, fee: float, balance: float, direction: int, limit: float
) -> float | None:
    """The first shock from 0 toward `limit` where the gap reaches 0, or None."""
    start_columns = [tier_column(p, rule, p.mark_price, below=direction < 0) for p in positions]
    line = _PoolLine(positions, rule, fee, balance, start_columns)
    events = _borders(positions, rule, direction, limit)
    start = 0.0
    k = 0
    while True:
        end = events[k][0] if k < len(events) else limit
        if line.at(start) <= 0:
            return start
        if line.at(end) <= 0:
            return -line.constant / line.slope
        if k >= len(events):
            return None
        while k < len(events) and events[k][0] == end:  # every position changing tier here
            _, j, column = events[k]
            line.move(j, column)
            k += 1
        start = end


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
