"""The risk level: how close a pool is to liquidation, in the terms that matter.

At 20-50x leverage a healthy health number (equity / maintenance) sits within a few per
cent of liquidation, so fixed health bands alone say nothing about danger. The level of a
pool is therefore the worst of:

- its health band (critical below `critical_health`, warning below `warning_health`);
- for each of its positions, the chance that the price touches one of the position's
  liquidation prices (either side) within `horizon_hours`, from the symbol's realized
  volatility (margin.volatility.touch_probability): critical at or above
  `critical_chance`, warning at or above `warning_chance`;
- for a position whose symbol has no volatility yet (a new symbol), the distance to its
  nearest liquidation price instead: critical below `critical_distance`, warning below
  `warning_distance`.

The default thresholds and why they are where they are: docs/risk-model.md, "Risk level".
An account's level is the worst of its pools'. Levels here are the state now; the alert
rules (alerts.evaluate) add hysteresis and pending polls on the same thresholds.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import IntEnum

import numpy as np

from margin.volatility import touch_probability


class Level(IntEnum):
    """How bad: ordered, so max() is the worst."""

    OK = 0
    WARNING = 1
    CRITICAL = 2


@dataclass(frozen=True)
class DangerLimits:
    """Thresholds of the risk level. Chances are fractions over `horizon_hours`; distances
    fractions of the mark."""

    warning_health: float = 1.5
    critical_health: float = 1.15
    warning_chance: float = 0.05
    critical_chance: float = 0.20
    warning_distance: float = 0.06
    critical_distance: float = 0.04
    horizon_hours: float = 24.0


def health_level(health: float | None, limits: DangerLimits) -> Level:
    """The health band (no position: nothing to liquidate, OK)."""
    if health is None or not math.isfinite(health):
        return Level.OK
    if health < limits.critical_health:
        return Level.CRITICAL
    if health < limits.warning_health:
        return Level.WARNING
    return Level.OK


def chance_level(chance: float | None, limits: DangerLimits) -> Level:
    """The band of a liquidation chance over the horizon."""
    if chance is None or not math.isfinite(chance):
        return Level.OK
    if chance >= limits.critical_chance:
        return Level.CRITICAL
    if chance >= limits.warning_chance:
        return Level.WARNING
    return Level.OK


def distance_level(distance: float | None, limits: DangerLimits) -> Level:
    """The band of a signed distance to the nearest liquidation price (the fallback
    without volatility); negative (past liquidation) is critical."""
    if distance is None or not math.isfinite(distance):
        return Level.OK
    if distance < limits.critical_distance:
        return Level.CRITICAL
    if distance < limits.warning_distance:
        return Level.WARNING
    return Level.OK


def liquidation_chance(
    mark: float,
    down: float | None,
    up: float | None,
    volatility: float | None,
    horizon_hours: float,
    past: bool = False,
) -> float | None:
    """Chance (fraction) that the price touches either liquidation price within
    `horizon_hours`: the two one-sided first-passage probabilities added (a union bound,
    capped at 1: the error is on the side of danger, and is small, since one side is almost
    always far less likely than the other). None without a volatility; 1 once past."""
    if past:
        return 1.0
    if volatility is None or not math.isfinite(volatility) or volatility <= 0:
        return None
    prices = [p for p in (down, up) if p is not None]
    if not prices:
        return 0.0
    each = touch_probability(np.full(len(prices), mark), np.asarray(prices), volatility, horizon_hours)
    return float(min(1.0, float(np.sum(each))))


def liquidation_chances(positions: Sequence[PositionRisk], horizon_hours: float) -> tuple[float | None, ...]:
    """liquidation_chance of every position at once (one vectorised pass, not one per
    position)."""
    n = len(positions)
    if n == 0:
        return ()
    mark = np.array([p.mark for p in positions], dtype=float)
    sigma = np.array([p.volatility if p.volatility and p.volatility > 0 else np.nan for p in positions], dtype=float)
    down = np.array([np.nan if p.down is None else p.down for p in positions], dtype=float)
    up = np.array([np.nan if p.up is None else p.up for p in positions], dtype=float)
    with np.errstate(invalid="ignore"):
        total = np.minimum(
            1.0,
            touch_probability(mark, down, np.nan_to_num(sigma), horizon_hours)
            + touch_probability(mark, up, np.nan_to_num(sigma), horizon_hours),
        )
    return tuple(
        1.0 if p.past else (None if math.isnan(sigma[i]) else float(total[i])) for i, p in enumerate(positions)
    )


def position_level(chance: float | None, distance: float | None, limits: DangerLimits) -> Level:
    """A position's danger: its chance band when its volatility is known, else its
    distance band."""
    return chance_level(chance, limits) if chance is not None else distance_level(distance, limits)


def pool_level(health: float | None, position_levels: Iterable[Level], limits: DangerLimits) -> Level:
    """The worst of the pool's health band and its positions' danger."""
    return max([health_level(health, limits), *position_levels])


@dataclass(frozen=True)
class PositionRisk:
    """What the level reads of one position: its pool, its mark and liquidation prices on
    both sides (quote currency; None where a side has none), whether its pool is past
    liquidation, and its symbol's daily σ (None: not known yet)."""

    pool: str
    mark: float
    down: float | None
    up: float | None
    past: bool = False
    volatility: float | None = None

    @property
    def distance(self) -> float | None:
        """Signed distance to the nearest liquidation price (fraction of mark)."""
        gaps = [abs(self.mark - p) / self.mark for p in (self.down, self.up) if p is not None]
        if not gaps:
            return None
        return -min(gaps) if self.past else min(gaps)


@dataclass(frozen=True)
class Assessment:
    """The level of an account, of each pool, and of each position; `chance` is the highest
    chance over the horizon of any position with a volatility (None: none has one);
    `fallback_distance` the smallest distance of a position without one (None: none)."""

    level: Level
    pools: Mapping[str, Level]
    positions: tuple[Level, ...]
    chances: tuple[float | None, ...]
    chance: float | None
    fallback_distance: float | None


def assess(
    positions: Sequence[PositionRisk], pool_health: Mapping[str, float | None], limits: DangerLimits
) -> Assessment:
    """The risk level of one account (the one rule every screen, order and alert uses)."""
    chances = liquidation_chances(positions, limits.horizon_hours)
    levels = tuple(position_level(c, p.distance, limits) for p, c in zip(positions, chances, strict=True))
    by_pool: dict[str, list[Level]] = {}
    for p, lvl in zip(positions, levels, strict=True):
        by_pool.setdefault(p.pool, []).append(lvl)
    pools = {key: pool_level(health, by_pool.get(key, ()), limits) for key, health in pool_health.items()}
    known = [c for c in chances if c is not None]
    fallback = [d for p, c in zip(positions, chances, strict=True) if c is None and (d := p.distance) is not None]
    return Assessment(
        level=max(pools.values(), default=Level.OK),
        pools=pools,
        positions=levels,
        chances=chances,
        chance=max(known) if known else None,
        fallback_distance=min(fallback) if fallback else None,
    )
