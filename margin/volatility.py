"""Realized volatility and the chance of reaching a liquidation price (docs/risk-model.md).

Units: closes and prices in quote currency; returns are natural-log returns per hour;
σ is the standard deviation of log returns per hour (`sigma_hourly`) or per day
(`sigma_daily` = √24 × hourly, i.e. returns assumed uncorrelated from hour to hour);
horizons in hours; probabilities as fractions in [0, 1].

Models:
- EWMA variance (J.P. Morgan/Reuters, RiskMetrics Technical Document, 4th ed. 1996, §5.2):
  σ²_t = λ σ²_(t−1) + (1 − λ) r_t², zero-mean returns. λ defaults to 0.99 for hourly bars,
  not RiskMetrics' 0.94 (which was fitted to *daily* returns): at 0.94 an hourly estimate
  remembers ~16 hours (half-life 11 h), less than the 24 h horizon it forecasts and short
  enough to follow the intraday volume cycle, so alerts would flap with the time of day.
  0.99 has a half-life of 69 h (~3 days), averaging over several days' sessions, while one
  large hour still moves it at once (a 10σ hour doubles it); the docs compare the choices.
- First passage of driftless geometric Brownian motion dS = σ S dW: ln S has drift
  ν = −σ²/2, and the probability that its running minimum (maximum) reaches a barrier
  b = ln(L/S) within T is the closed form for Brownian motion with drift (Shreve,
  Stochastic Calculus for Finance II, §7.2.1, and its mirror image); see `touch_probability`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from margin.snapshot import Snapshot
from margin.vectorised import Batch

DEFAULT_LAMBDA = 0.99
HOURS_PER_DAY = 24.0
DEFAULT_HORIZON_HOURS = 24.0

FloatArray = np.ndarray


@dataclass(frozen=True)
class Volatility:
    """σ of log returns per hour and per day (√24 × hourly), from `observations` returns."""

    sigma_hourly: float
    sigma_daily: float
    observations: int


def log_returns(closes: ArrayLike) -> FloatArray:
    """ln(close_t / close_(t−1)) along the last axis (one fewer column than `closes`).

    Raises ValueError on a close that is not a positive finite number."""
    prices = np.asarray(closes, dtype=float)
    if not np.all(np.isfinite(prices) & (prices > 0)):
        raise ValueError("closes must be positive finite prices")
    return np.diff(np.log(prices), axis=-1)


def ewma_variance(returns: ArrayLike, lam: float = DEFAULT_LAMBDA) -> FloatArray:
    """RiskMetrics EWMA variance per period after the last return, along the last axis.

    Seeded with the mean squared return of the whole window (the λ → 1 estimate), whose
    weight λ^n then fades; the recursion is unrolled into one weighted sum, so many series
    (rows) cost one matrix-vector product. nan for a series with no return."""
    if not 0.0 < lam < 1.0:
        raise ValueError(f"lambda must be in (0, 1), got {lam}")
    squared = np.square(np.asarray(returns, dtype=float))
    n = squared.shape[-1]
    if n == 0:
        return np.full(squared.shape[:-1], np.nan)
    weights = (1.0 - lam) * lam ** np.arange(n - 1, -1, -1, dtype=float)
    return lam**n * squared.mean(axis=-1) + squared @ weights


def realized_volatility(closes: ArrayLike, lam: float = DEFAULT_LAMBDA) -> tuple[FloatArray, FloatArray]:
    """(σ per hour, σ per day) from hourly closes along the last axis."""
    hourly = np.sqrt(ewma_variance(log_returns(closes), lam))
    return hourly, hourly * math.sqrt(HOURS_PER_DAY)


def volatility_by_symbol(closes: Mapping[str, Sequence[float]], lam: float = DEFAULT_LAMBDA) -> dict[str, Volatility]:
    """Volatility of each symbol from its hourly closes (oldest first). Series of equal
    length are stacked and estimated together; a series of fewer than 2 closes gets nan."""
    by_length: dict[int, list[str]] = {}
    for symbol, series in closes.items():
        by_length.setdefault(len(series), []).append(symbol)
    result: dict[str, Volatility] = {}
    for length, symbols in by_length.items():
        if length < 2:
            result.update({s: Volatility(math.nan, math.nan, 0) for s in symbols})
            continue
        hourly, daily = realized_volatility(np.array([closes[s] for s in symbols], dtype=float), lam)
        for s, h, d in zip(symbols, hourly, daily, strict=True):
            result[s] = Volatility(float(h), float(d), length - 1)
    return result


def row_symbols(snapshots: Sequence[Snapshot], batch: Batch) -> list[str]:
    """The symbol of each row of a vectorised Batch built from `snapshots`."""
    return [snapshots[a].positions[i].symbol for a, i in zip(batch.account, batch.index, strict=True)]


def distance_in_sigma(
    mark: ArrayLike, liquidation: ArrayLike, sigma_daily: ArrayLike, distance: ArrayLike | None = None
) -> FloatArray:
    """|ln(mark / liquidation)| / σ_daily, negative where the engine's signed `distance` is
    (pool past liquidation). nan without a liquidation price (nan); ±inf when σ = 0 and the
    price is away from the barrier, 0 at the barrier."""
    mark_a, liq, sigma = _floats(mark, liquidation, sigma_daily)
    with np.errstate(divide="ignore", invalid="ignore"):
        gap = np.abs(np.log(mark_a / liq))
        value = np.where(gap == 0.0, 0.0, gap / sigma)
    if distance is not None:
        value = np.where(np.asarray(distance, dtype=float) < 0, -value, value)
    return np.where(np.isnan(liq), np.nan, value)


def _floats(*values: ArrayLike) -> list[FloatArray]:
    return list(np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in values)))


_erfc = np.frompyfunc(math.erfc, 1, 1)  # numpy has no erfc and scipy is not a dependency


def normal_cdf(z: ArrayLike) -> FloatArray:
    """Standard normal CDF Φ(z) = erfc(−z/√2)/2, exact to double precision in both tails."""
    return 0.5 * np.asarray(_erfc(-np.asarray(z, dtype=float) / math.sqrt(2.0)), dtype=float)


def touch_probability(
    mark: ArrayLike,
    liquidation: ArrayLike,
    sigma_daily: ArrayLike,
    horizon_hours: float = DEFAULT_HORIZON_HOURS,
    distance: ArrayLike | None = None,
) -> FloatArray:
    """Probability that the price touches `liquidation` within `horizon_hours`, for
    dS = σ S dW (no drift in the price, so ln S drifts by ν = −σ²/2 per unit time).

    With σ_T = σ_daily √(T/24), νT = −σ_T²/2 and b = ln(L/S):
    lower barrier (b < 0): P = Φ((b − νT)/σ_T) + e^(2νb/σ²) Φ((b + νT)/σ_T),
    upper barrier (b > 0): P = Φ((−b + νT)/σ_T) + e^(2νb/σ²) Φ((−b − νT)/σ_T),
    where e^(2νb/σ²) = e^(−b) = S/L. P = 1 at the barrier or where the engine's signed
    `distance` is negative (already past); P = 0 without a liquidation price (nan) and
    when σ_T = 0. Elementwise over broadcast arrays."""
    s, lp, sig = _floats(mark, liquidation, sigma_daily)
    sigma_t = sig * math.sqrt(max(horizon_hours, 0.0) / HOURS_PER_DAY)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        b = np.log(lp / s)
        drift = -0.5 * sigma_t**2  # νT
        sign = np.where(b > 0, -1.0, 1.0)  # the upper barrier is the mirror image: b → −b
        first = normal_cdf(sign * (b - drift) / sigma_t)
        second = np.exp(-b) * normal_cdf(sign * (b + drift) / sigma_t)
        p = np.clip(first + second, 0.0, 1.0)
    p = np.where(sigma_t > 0, p, 0.0)
    p = np.where(b == 0.0, 1.0, p)
    if distance is not None:
        p = np.where(np.asarray(distance, dtype=float) < 0, 1.0, p)
    return np.where(np.isnan(lp), 0.0, p)
