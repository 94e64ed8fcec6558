"""Stress tests of multi-collateral accounts: the shock moves the collateral too.

A uniform shock s puts every position's price and every asset with a `price_symbol` at
(1 + s) x its price (BTC collateral falls with BTC: wrong-way risk); assets without one
(stablecoins) keep theirs. The loss splits in two: the collateral loss is the fall in the
assets' value after haircut with their balances held as at mark; the rest (PnL, and the
haircut on it) is the position loss. Isolated pools are stressed as in margin.stress.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from margin.collateral import account_figures, haircut_value
from margin.collateral_liquidation import _bisect
from margin.pools import pools
from margin.snapshot import Snapshot

_SHOCK_STEP = 0.005


@dataclass(frozen=True)
class LossSplit:
    """The account's equity lost under one shock (valuation currency; negative = gain)."""

    total: float
    collateral: float

    @property
    def positions(self) -> float:
        return self.total - self.collateral

    @property
    def wrong_way_share(self) -> float | None:
        """Collateral loss / total loss, when there is a loss."""
        return self.collateral / self.total if self.total > 0 else None


def loss_split(snapshot: Snapshot, shock: float) -> LossSplit:
    """How much of the account's loss under `shock` comes from its collateral."""
    cross = pools(snapshot)[0]
    before = account_figures(snapshot, cross)
    after = account_figures(snapshot, cross, factor=lambda _symbol: 1.0 + shock)
    collateral = 0.0
    for a, row in zip(snapshot.assets, before.assets, strict=True):
        moved = row.price * (1.0 + shock) if a.price_symbol else row.price
        held = haircut_value(a, row.equity, row.price) - haircut_value(a, row.equity, moved)
        collateral += held - a.borrowed * (row.price - moved)  # a loan shrinks as its price falls
    return LossSplit(before.equity - after.equity, collateral)


def collateral_stress(snapshot: Snapshot, shocks: Sequence[float]) -> list:
    """margin.stress.stress_test for a multi-collateral snapshot."""
    from margin.stress import PoolStress, Scenario, stress_test

    single = stress_test(replace(snapshot, account_mode="single_asset", assets=()), shocks)
    cross = pools(snapshot)[0]
    result = []
    for shock, scenario in zip(shocks, single, strict=True):
        figures = account_figures(snapshot, cross, factor=_moved_by(shock))
        requirement = figures.maintenance_margin
        health = figures.equity / requirement if cross.indices and requirement > 0 else None
        account = PoolStress(cross, figures.equity, requirement, health)
        result.append(Scenario(shock, (account, *scenario.pools[1:])))
    return result


def collateral_liquidating_shocks(snapshot: Snapshot, max_up: float) -> list:
    """margin.stress.liquidating_shocks for a multi-collateral snapshot: the account's
    smallest liquidating shocks found by scanning (0.5 % steps, 2 % of the price far up) and
    bisecting: a dip narrower than a step can be missed."""
    from margin.stress import LiquidatingShock, liquidating_shocks

    single = liquidating_shocks(replace(snapshot, account_mode="single_asset", assets=()))
    cross = pools(snapshot)[0]
    if not cross.indices:
        return [s for s in single if s.pool.key != "cross"]

    def gap(shock: float) -> float:
        figures = account_figures(snapshot, cross, factor=lambda _symbol: 1.0 + shock)
        return figures.equity - figures.maintenance_margin

    if gap(0.0) <= 0:
        account = LiquidatingShock(cross, 0.0, 0.0)
    else:
        account = LiquidatingShock(cross, _scan(gap, -1.0), _scan(gap, max_up))
    return [account, *(s for s in single if s.pool.key != "cross")]


def _scan(gap: Callable[[float], float], limit: float) -> float | None:
    direction = 1.0 if limit > 0 else -1.0
    previous, shock = 0.0, 0.0
    while abs(shock) < abs(limit):
        # 0.5 % steps near the mark; up, 2 % of the price beyond (a rally of 1,000 % in
        # 0.5 % steps would be 2,000 evaluations)
        step = _SHOCK_STEP if direction < 0 else max(_SHOCK_STEP, 0.02 * (1.0 + previous))
        shock = max(-1.0 + 1e-9, min(limit, previous + direction * step))
        if gap(shock) <= 0:
            return _bisect(gap, previous, shock, True)
        if shock in (limit, -1.0 + 1e-9):
            return None
        previous = shock
    return None


def _moved_by(shock: float) -> Callable[[str], float]:
    """Every symbol's price factor under a uniform `shock` (a fraction of the price)."""
    return lambda _symbol: 1.0 + shock
