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

from margin.danger import DangerLimits
from margin.liquidation import Liquidation, all_liquidations
from margin.pools import pools
from margin.snapshot import Snapshot
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
    the barrier): bisection on the log distance. The mark itself when the chance is already
    there; None without a barrier or a σ."""
    if barrier is None or not sigma or sigma <= 0 or barrier <= 0:
        return None
    if _touch(mark, barrier, sigma, horizon_hours) >= chance:
        return mark
    near, far = 0.0, math.log(mark / barrier)  # log(price / barrier): 0 at the barrier
    for _ in range(60):
        middle = (near + far) / 2
        if _touch(barrier * math.exp(middle), barrier, sigma, horizon_hours) >= chance:
            near = middle
        else:
            far = middle
    return barrier * math.exp(near)


def _touch(price: float, barrier: float, sigma: float, horizon_hours: float) -> float:
    return float(touch_probability(np.array([price]), np.array([barrier]), sigma, horizon_hours)[0])


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
    if sigma:
        return (
            chance_price(liq.mark, liq.down, sigma, chance, limits.horizon_hours),
            chance_price(liq.mark, liq.up, sigma, chance, limits.horizon_hours),
        )
    return distance_price(liq.down, distance, "down"), distance_price(liq.up, distance, "up")
