"""Funding drag: perpetual funding projected onto each pool's equity and health.

Sign convention (Binance, Bybit, OKX alike): a funding rate is a fraction of the position's
notional at mark per funding interval; when it is positive longs pay shorts, when negative
shorts pay longs. The payment at one settlement, positive when the position receives it:

    payment = −side × rate × size × mark        (side +1 long, −1 short; quote currency)

Times are hours from the snapshot. The current rate (ccxt `fundingRate`) is settled at the
next funding time (`hours_to_next`); later settlements use the predicted rate (ccxt
`nextFundingRate`) when the venue gives one, else the current rate again. Prices are held
at mark, so the requirement does not move: only equity does. The cross wallet pays the
cross positions' funding; an isolated position's funding drains its own margin (the worst
case: Bybit takes it from the available balance first, see docs/risk-model.md).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from margin.inverse import notional as position_notional
from margin.pools import pool_figures, pools
from margin.snapshot import Position, Snapshot

DEFAULT_INTERVAL_HOURS = 8.0
DEFAULT_HORIZONS_HOURS: tuple[float, ...] = (24.0, 72.0, 168.0)  # 1, 3 and 7 days
DEFAULT_WARNING_HEALTH = 1.5  # alerts' default warning level (config.settings)


@dataclass(frozen=True)
class FundingRate:
    """A symbol's funding: `rate` per interval (fraction, positive: longs pay) settled in
    `hours_to_next` hours (None: a full interval away), then every `interval_hours` at
    `predicted_rate` (None: the current rate again)."""

    symbol: str
    rate: float
    interval_hours: float = DEFAULT_INTERVAL_HOURS
    predicted_rate: float | None = None
    hours_to_next: float | None = None

    def settlements(self, horizon_hours: float) -> tuple[np.ndarray, np.ndarray]:
        """Times (hours) of the settlements within the horizon, and the rate of each."""
        if self.interval_hours <= 0:
            raise ValueError(f"{self.symbol}: interval_hours must be > 0, got {self.interval_hours}")
        first = self.interval_hours if self.hours_to_next is None else max(self.hours_to_next, 0.0)
        count = int(np.floor((horizon_hours - first) / self.interval_hours + 1e-9)) + 1
        times = first + self.interval_hours * np.arange(max(count, 0), dtype=float)
        later = self.rate if self.predicted_rate is None else self.predicted_rate
        rates = np.full(times.shape, later)
        rates[:1] = self.rate
        return times, rates


def funding_payment(position: Position, rate: float) -> float:
    """What `position` receives at one settlement at `rate` (negative: it pays), in the
    collateral: quote currency, or the coin of an inverse contract (rate x its coin notional)."""
    return -position.sign * rate * position_notional(position)


@dataclass(frozen=True)
class PoolFunding:
    """One pool's funding outlook, prices held at mark. `per_day` is the current rate's
    flow per day (negative: a drag); `funding_at`, `health_at`: cumulative funding and
    health after each horizon (hours); `breach_hours`: the first settlement after which
    health is below the warning level (0 when it already is; None when it stays above
    through the longest horizon)."""

    pool: str
    equity: float
    maintenance_margin: float
    health: float | None
    per_day: float
    funding_at: dict[float, float]
    health_at: dict[float, float | None]
    breach_hours: float | None

    @property
    def funding_breach(self) -> bool:
        """Funding alone takes the pool below the warning level within the horizon."""
        return self.breach_hours is not None and self.breach_hours > 0


@dataclass(frozen=True)
class FundingProjection:
    warning_health: float
    horizons_hours: tuple[float, ...]
    pools: tuple[PoolFunding, ...]
    missing_symbols: tuple[str, ...]  # positions' symbols without a rate: counted as 0


def funding_projection(
    snapshot: Snapshot,
    rates: Mapping[str, FundingRate],
    horizons_hours: Sequence[float] = DEFAULT_HORIZONS_HOURS,
    warning_health: float = DEFAULT_WARNING_HEALTH,
) -> FundingProjection:
    """Each pool that holds a position: its funding flow, health after each horizon, and
    when (if ever) funding alone takes it below `warning_health`."""
    horizon = max(horizons_hours)
    missing = sorted({p.symbol for p in snapshot.positions if p.symbol not in rates})
    result = []
    for pool in pools(snapshot):
        if not pool.indices:
            continue
        figures = pool_figures(snapshot, pool)
        times, payments, per_day = _pool_settlements(snapshot, pool.indices, rates, horizon)
        order = np.argsort(times, kind="stable")
        times, cumulative = times[order], np.cumsum(payments[order])
        requirement = figures.maintenance_margin

        def health(equity: float, requirement: float = requirement) -> float | None:
            return equity / requirement if requirement > 0 else None

        settled = np.searchsorted(times, np.asarray(horizons_hours, dtype=float), side="right")
        funding_at = {
            float(h): float(cumulative[k - 1]) if k else 0.0 for h, k in zip(horizons_hours, settled, strict=True)
        }
        result.append(
            PoolFunding(
                pool=pool.key,
                equity=figures.equity,
                maintenance_margin=requirement,
                health=figures.health,
                per_day=per_day,
                funding_at=funding_at,
                health_at={h: health(figures.equity + f) for h, f in funding_at.items()},
                breach_hours=_breach(figures.equity, requirement, times, cumulative, warning_health),
            )
        )
    horizons = tuple(float(h) for h in horizons_hours)
    return FundingProjection(warning_health, horizons, tuple(result), tuple(missing))


def _pool_settlements(
    snapshot: Snapshot, indices: tuple[int, ...], rates: Mapping[str, FundingRate], horizon: float
) -> tuple[np.ndarray, np.ndarray, float]:
    """Every settlement of the pool's positions within the horizon (time, payment), and the
    flow per day at the current rates."""
    times, payments, per_day = [], [], 0.0
    for i in indices:
        pos = snapshot.positions[i]
        funding = rates.get(pos.symbol)
        if funding is None:
            continue
        t, r = funding.settlements(horizon)
        unit = funding_payment(pos, 1.0)  # what a rate of 1 pays: −side × notional
        times.append(t)
        payments.append(unit * r)
        per_day += unit * funding.rate * 24.0 / funding.interval_hours
    if not times:
        return np.zeros(0), np.zeros(0), 0.0
    return np.concatenate(times), np.concatenate(payments), per_day


def _breach(
    equity: float, requirement: float, times: np.ndarray, cumulative: np.ndarray, warning: float
) -> float | None:
    """First settlement time after which equity is below warning × requirement; settlements
    at the same time count together."""
    if requirement <= 0:
        return None
    if equity < warning * requirement:
        return 0.0
    if times.size == 0:
        return None
    last_of_time = np.r_[times[1:] != times[:-1], True]  # after all settlements at that time
    below = (equity + cumulative < warning * requirement) & last_of_time
    return float(times[np.argmax(below)]) if below.any() else None
