"""Stress test: every mark moved by the same fraction (a shock of -0.2 puts every price at
80 % of its mark), and the smallest such shock that liquidates each pool.

Under a uniform shock the pool, not the position, is what the venue liquidates, so a
position is "past liquidation" when its pool's health is below 1 at that shock.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from margin.pools import Pool, pool_figures, pools
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

    equity - requirement is concave in the shock (equity is linear, the tiered requirement
    convex), so on each side of 0 it crosses zero at most once: bisection finds it.
    """
    result = []
    for pool in pools(snapshot):
        if not pool.indices:
            continue

        def gap(shock: float, pool: Pool = pool) -> float:
            f = pool_figures(snapshot, pool, shocked_prices(snapshot, shock))
            return f.equity - f.maintenance_margin

        if gap(0.0) <= 0:
            result.append(LiquidatingShock(pool, 0.0, 0.0))
            continue
        down = _bisect(gap, 0.0, -1.0) if gap(-1.0) <= 0 else None
        up = _bisect(gap, 0.0, MAX_UPWARD_SHOCK) if gap(MAX_UPWARD_SHOCK) <= 0 else None
        result.append(LiquidatingShock(pool, down, up))
    return result


def _bisect(gap, safe: float, unsafe: float) -> float:
    """The boundary between `safe` (gap > 0) and `unsafe` (gap <= 0), to 1e-12."""
    for _ in range(200):
        middle = (safe + unsafe) / 2
        if gap(middle) > 0:
            safe = middle
        else:
            unsafe = middle
        if abs(unsafe - safe) < 1e-12:
            break
    return unsafe
