"""Alert prices: for each pool and each symbol in it, the prices of that symbol (the rest of
the pool at mark) at which the pool's risk level would change — warning, critical,
liquidation — below and above the mark. A streamed mark price is checked against them in
O(1): no need to rerun the engine on every tick (connectors.streams).

A level's price on a side is the first price from the mark where any of its conditions
holds (margin.danger):

- the health band: the pool's health reaches the band's health (equity = h x requirement,
  solved like the liquidation price: margin.liquidation.all_liquidations(snapshot, h));
- the chance of touching the liquidation price on that side within the horizon reaches the
  band's chance (with the symbol's σ; the liquidation price of a symbol does not move when
  its own mark does, so only the distance to it shrinks);
- without σ, the distance to that liquidation price falls below the band's distance.

Prices in quote currency; None where no price on that side reaches the level.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from margin.collateral_prices import collateral_health_prices
from margin.collateral_vectorised import CollateralBatch
from margin.danger import DangerLimits
from margin.liquidation import Liquidation, all_liquidations
from margin.pools import pools
from margin.snapshot import Snapshot
from margin.vectorised import Batch, BatchResult, health_prices
from margin.volatility import touch_probability

LEVELS = ("warning", "critical", "liquidation")


@dataclass(frozen=True)
class AlertPrices:
    """One symbol of one pool: its mark, and per level the price below and above it where
    the pool enters that level (None: none on that side)."""

    pool: str
    symbol: str
    mark: float
    warning: tuple[float | None, float | None]
    critical: tuple[float | None, float | None]
    liquidation: tuple[float | None, float | None]

    def level_prices(self, level: str) -> tuple[float | None, float | None]:
        return {"warning": self.warning, "critical": self.critical, "liquidation": self.liquidation}[level]


def chance_price(
    mark: float, barrier: float | None, sigma: float | None, chance: float, horizon_hours: float
) -> float | None:
    """The price between the mark and `barrier` at which the chance of touching the barrier
    within the horizon is `chance` (the first-passage probability grows as the price nears
    the barrier). The mark itself when the chance is already there; None without a barrier
    or a σ. One element of chance_prices."""
    if barrier is None or not sigma or sigma <= 0 or barrier <= 0:
        return None
    price = chance_prices(np.array([mark]), np.array([barrier]), np.array([sigma]), np.array([chance]), horizon_hours)
    return float(price[0])


def chance_prices(
    mark: np.ndarray, barrier: np.ndarray, sigma: np.ndarray, chance: np.ndarray, horizon_hours: float
) -> np.ndarray:
    """chance_price elementwise over arrays (nan where there is no barrier or σ): bisection
    on the log distance to the barrier, 45 halvings (2^-45 of it: far below a price tick)."""
    mark, barrier, sigma, chance = (np.asarray(x, dtype=float) for x in (mark, barrier, sigma, chance))
    valid = np.isfinite(barrier) & (barrier > 0) & np.isfinite(sigma) & (sigma > 0) & (mark > 0)
    safe_barrier = np.where(valid, barrier, 1.0)
    safe_sigma = np.where(valid, sigma, 1.0)
    safe_mark = np.where(valid, mark, 1.0)
    near = np.zeros_like(safe_mark)  # log(price / barrier): 0 at the barrier
    far = np.log(safe_mark / safe_barrier)
    for _ in range(45):
        middle = (near + far) / 2
        reached = touch_probability(safe_barrier * np.exp(middle), safe_barrier, safe_sigma, horizon_hours) >= chance
        near = np.where(reached, middle, near)
        far = np.where(reached, far, middle)
    price = safe_barrier * np.exp(near)
    already = touch_probability(safe_mark, safe_barrier, safe_sigma, horizon_hours) >= chance
    return np.where(valid, np.where(already, safe_mark, price), np.nan)


def danger_prices(
    mark: np.ndarray,
    down: np.ndarray,
    up: np.ndarray,
    sigma: np.ndarray,
    chance: np.ndarray,
    distance: np.ndarray,
    horizon_hours: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Per position (arrays; nan: none), the prices below and above the mark where its
    danger reaches a level: with σ, where the chance of touching a liquidation price within
    the horizon reaches `chance`; without, where the distance to it falls to `distance`.

    The level counts both sides' chances added (margin.danger.liquidation_chance). On the
    way to one side the other side's chance only falls, so the level is reached no later
    than where this side's chance reaches the level's chance less the other side's chance
    at the mark: a watch set there fires early, never late."""
    mark, down, up, sigma = (np.asarray(x, dtype=float) for x in (mark, down, up, sigma))
    has_sigma = np.isfinite(sigma) & (sigma > 0)
    safe_sigma = np.where(has_sigma, sigma, 1.0)
    down_now = np.where(np.isfinite(down), touch_probability(mark, down, safe_sigma, horizon_hours), 0.0)
    up_now = np.where(np.isfinite(up), touch_probability(mark, up, safe_sigma, horizon_hours), 0.0)
    by_chance = (
        chance_prices(mark, down, sigma, np.maximum(chance - up_now, 1e-9), horizon_hours),
        chance_prices(mark, up, sigma, np.maximum(chance - down_now, 1e-9), horizon_hours),
    )
    by_distance = (down / (1.0 - distance), up / (1.0 + distance))
    return (
        np.where(has_sigma, by_chance[0], by_distance[0]),
        np.where(has_sigma, by_chance[1], by_distance[1]),
    )


def earliest(
    first: tuple[np.ndarray, np.ndarray], second: tuple[np.ndarray, np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """combine elementwise: the higher price below the mark, the lower above (nan: none)."""
    return np.fmax(first[0], second[0]), np.fmin(first[1], second[1])


def distance_price(barrier: float | None, distance: float, side: str) -> float | None:
    """The price at which `barrier` is `distance` (fraction of the price) away."""
    if barrier is None:
        return None
    return barrier / (1.0 - distance) if side == "down" else barrier / (1.0 + distance)


def combine(
    health: tuple[float | None, float | None], danger: tuple[float | None, float | None]
) -> tuple[float | None, float | None]:
    """The first price from the mark on each side where either condition holds: the higher
    of the two below, the lower above."""
    down = [p for p in (health[0], danger[0]) if p is not None]
    up = [p for p in (health[1], danger[1]) if p is not None]
    return (max(down) if down else None, min(up) if up else None)


def alert_prices(snapshot: Snapshot, limits: DangerLimits) -> list[AlertPrices]:
    """Alert prices of every symbol of every pool that holds a position."""
    liquidation = all_liquidations(snapshot)
    warning = all_liquidations(snapshot, limits.warning_health)
    critical = all_liquidations(snapshot, limits.critical_health)
    return from_prices(snapshot, limits, liquidation, warning, critical)


def from_prices(
    snapshot: Snapshot,
    limits: DangerLimits,
    liquidation: Sequence[Liquidation],
    warning: Sequence[Liquidation],
    critical: Sequence[Liquidation],
) -> list[AlertPrices]:
    """Alert prices from the engine's prices at health 1, warning and critical (each per
    position; positions of one symbol in one pool share them)."""
    result = []
    for pool in pools(snapshot):
        seen: set[str] = set()
        for i in pool.indices:
            pos = snapshot.positions[i]
            if pos.symbol in seen:
                continue
            seen.add(pos.symbol)
            liq = liquidation[i]
            result.append(
                AlertPrices(
                    pool=pool.key,
                    symbol=pos.symbol,
                    mark=pos.mark_price,
                    warning=combine(
                        (warning[i].down, warning[i].up),
                        _danger(liq, pos.volatility, limits.warning_chance, limits.warning_distance, limits),
                    ),
                    critical=combine(
                        (critical[i].down, critical[i].up),
                        _danger(liq, pos.volatility, limits.critical_chance, limits.critical_distance, limits),
                    ),
                    liquidation=(liq.down, liq.up),
                )
            )
    return result


def _danger(
    liq: Liquidation, sigma: float | None, chance: float, distance: float, limits: DangerLimits
) -> tuple[float | None, float | None]:
    down, up = danger_prices(
        np.array([liq.mark]),
        np.array([math.nan if liq.down is None else liq.down]),
        np.array([math.nan if liq.up is None else liq.up]),
        np.array([math.nan if sigma is None else sigma]),
        np.array([chance]),
        np.array([distance]),
        limits.horizon_hours,
    )
    return _optional(down[0]), _optional(up[0])


def _optional(x: float) -> float | None:
    return None if not math.isfinite(x) else float(x)


PRICE_COLUMNS = ("warning_price_down", "warning_price_up", "critical_price_down", "critical_price_up")


def batch_alert_prices(
    batch: Batch,
    result: BatchResult,
    sigma: np.ndarray,
    limits: Sequence[DangerLimits],
    collateral: CollateralBatch | None = None,
) -> dict[str, np.ndarray]:
    """from_prices for every position of an evaluated batch at once (nan: none): per
    position, the prices of its symbol where its pool enters warning and critical, below
    and above the mark. `sigma`: each position's daily σ (nan: unknown); `limits`: each
    account's thresholds; `collateral`: the batch's multi-collateral assets (margin.
    collateral_vectorised), whose cross positions' prices move the collateral too. One
    vectorised pass per distinct health threshold."""
    n = batch.size.shape[0]
    out = {name: np.full(n, np.nan) for name in PRICE_COLUMNS}
    solved: dict[float, tuple[np.ndarray, np.ndarray]] = {}

    def prices_at(health: float) -> tuple[np.ndarray, np.ndarray]:
        if health not in solved:
            down, up = health_prices(batch, health)
            if collateral is not None:
                on_assets = collateral.settle >= 0
                c_down, c_up = collateral_health_prices(
                    collateral, batch, result.unrealized_pnl, result.maintenance_margin, health
                )
                down, up = np.where(on_assets, c_down, down), np.where(on_assets, c_up, up)
            solved[health] = (down, up)
        return solved[health]

    by_limits: dict[DangerLimits, list[int]] = {}
    for account, account_limits in enumerate(limits):
        by_limits.setdefault(account_limits, []).append(account)
    for account_limits, accounts in by_limits.items():
        rows = np.flatnonzero(np.isin(batch.account, accounts))
        if rows.size == 0:
            continue
        for level, health, chance, distance in (
            ("warning", account_limits.warning_health, account_limits.warning_chance, account_limits.warning_distance),
            (
                "critical",
                account_limits.critical_health,
                account_limits.critical_chance,
                account_limits.critical_distance,
            ),
        ):
            by_health = prices_at(health)
            by_danger = danger_prices(
                batch.mark[rows],
                result.liquidation_price_down[rows],
                result.liquidation_price_up[rows],
                sigma[rows],
                np.full(rows.size, chance),
                np.full(rows.size, distance),
                account_limits.horizon_hours,
            )
            down, up = earliest((by_health[0][rows], by_health[1][rows]), by_danger)
            out[f"{level}_price_down"][rows] = down
            out[f"{level}_price_up"][rows] = up
    return out
