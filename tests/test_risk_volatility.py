"""Realized volatility, distance in σ and the first-passage probability (margin.volatility)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from margin.liquidation import all_liquidations
from margin.liquidation import distance_in_sigma as scalar_distance_in_sigma
from margin.snapshot import parse_snapshot
from margin.volatility import (
    distance_in_sigma,
    ewma_variance,
    log_returns,
    normal_cdf,
    realized_volatility,
    touch_probability,
    volatility_by_symbol,
)


def test_log_returns_and_bad_closes() -> None:
    assert log_returns([100.0, 110.0, 99.0]) == pytest.approx([math.log(1.1), math.log(0.9)])
    for bad in ([100.0, 0.0], [100.0, -1.0], [100.0, math.nan]):
        with pytest.raises(ValueError):
            log_returns(bad)


def test_ewma_matches_the_riskmetrics_recursion() -> None:
    rng = np.random.default_rng(3)
    returns = rng.standard_normal((3, 50)) * 0.01
    for lam in (0.94, 0.99):
        expected = []
        for row in returns:
            variance = float(np.mean(row**2))  # the seed the module documents
            for r in row:
                variance = lam * variance + (1 - lam) * r * r
            assert ewma_variance(row, lam) == pytest.approx(variance, rel=1e-12)
            expected.append(variance)
        # several series at once (rows), as volatility_by_symbol stacks them
        assert ewma_variance(returns, lam) == pytest.approx(expected, rel=1e-12)


def test_ewma_recovers_a_known_hourly_volatility() -> None:
    rng = np.random.default_rng(11)
    sigma = 0.007
    closes = 100 * np.exp(np.cumsum(rng.standard_normal(3000) * sigma))
    hourly, daily = realized_volatility(closes)
    # λ = 0.99 weighs ~200 hours: the estimate's standard error is ~5 % of σ
    assert hourly == pytest.approx(sigma, rel=0.15)
    assert daily == pytest.approx(hourly * math.sqrt(24), rel=1e-12)


def test_volatility_by_symbol_handles_different_lengths() -> None:
    rng = np.random.default_rng(5)
    closes = {
        "A": list(100 * np.exp(np.cumsum(rng.standard_normal(40) * 0.01))),
        "B": list(50 * np.exp(np.cumsum(rng.standard_normal(40) * 0.02))),
        "C": list(10 * np.exp(np.cumsum(rng.standard_normal(25) * 0.03))),
        "D": [42.0],
    }
    vols = volatility_by_symbol(closes, lam=0.94)
    for symbol in "ABC":
        hourly, daily = realized_volatility(closes[symbol], lam=0.94)
        assert vols[symbol].sigma_hourly == pytest.approx(float(hourly), rel=1e-12)
        assert vols[symbol].sigma_daily == pytest.approx(float(daily), rel=1e-12)
        assert vols[symbol].observations == len(closes[symbol]) - 1
    assert math.isnan(vols["D"].sigma_daily)


def test_distance_in_sigma_by_hand_and_against_the_engine() -> None:
    # ln(100 / 90) / 0.05 = 2.1072...
    assert distance_in_sigma(100.0, 90.0, 0.05) == pytest.approx(math.log(100 / 90) / 0.05)
    assert distance_in_sigma(100.0, 90.0, 0.05, distance=-0.1) == pytest.approx(-math.log(100 / 90) / 0.05)
    assert math.isnan(distance_in_sigma(100.0, math.nan, 0.05))
    assert distance_in_sigma(100.0, 90.0, 0.0) == math.inf
    assert distance_in_sigma(100.0, 100.0, 0.0) == 0.0
    # the same number the scalar engine reports for a position with a volatility
    doc = {
        "exchange": "binanceusdm",
        "account": "t",
        "collateral": "USDT",
        "wallet_balance": 150.0,
        "positions": [
            {
                "symbol": "A/USDT:USDT",
                "side": "long",
                "contracts": 10,
                "contract_size": 1,
                "entry_price": 100,
                "mark_price": 100,
                "margin_mode": "cross",
                "maintenance_margin_rate": 0.01,
                "volatility": 0.04,
            }
        ],
    }
    snap = parse_snapshot(doc)
    found = all_liquidations(snap)[0]
    liq, distance = found.nearest, found.distance
    expected = scalar_distance_in_sigma(100.0, liq, distance, 0.04)
    assert distance_in_sigma(100.0, liq, 0.04, distance) == pytest.approx(expected, rel=1e-12)


def test_normal_cdf_known_values() -> None:
    assert normal_cdf([0.0, 1.959963984540054, -1.959963984540054]) == pytest.approx([0.5, 0.975, 0.025])
    assert normal_cdf(-8.0) == pytest.approx(6.220960574271785e-16, rel=1e-9)  # no cancellation


def _monte_carlo(
    mark: float, barrier: float, sigma_daily: float, hours: float, paths: int, steps: int, seed: int
) -> tuple[float, float]:
    """P(touch) for ln S = −σ²t/2 + σ W_t, simulated on a grid; between grid points the
    crossing probability of the Brownian bridge, exp(−2 d0 d1 / (σ² Δt)), is exact (and
    does not depend on the drift), so the estimate has no discrete-monitoring bias."""
    rng = np.random.default_rng(seed)
    step_variance = sigma_daily**2 * hours / 24 / steps
    increments = rng.standard_normal((paths, steps)) * math.sqrt(step_variance) - step_variance / 2
    x = np.concatenate([np.zeros((paths, 1)), np.cumsum(increments, axis=1)], axis=1)
    b = math.log(barrier / mark)
    gap = x - b if b < 0 else b - x  # > 0 on the safe side of the barrier
    crossed = (gap <= 0).any(axis=1)
    d = np.maximum(gap, 0.0)
    survive = np.prod(1 - np.exp(-2 * d[:, :-1] * d[:, 1:] / step_variance), axis=1)
    p = np.where(crossed, 1.0, 1.0 - survive)
    return float(p.mean()), float(p.std() / math.sqrt(paths))


@pytest.mark.parametrize(
    ("barrier", "sigma", "hours"),
    [
        (90.0, 0.05, 24.0),
        (97.0, 0.03, 24.0),
        (60.0, 0.2, 24.0),
        (80.0, 0.08, 72.0),
        (110.0, 0.05, 24.0),
        (130.0, 0.1, 48.0),
        (103.0, 0.04, 12.0),
    ],
)
def test_touch_probability_agrees_with_monte_carlo(barrier: float, sigma: float, hours: float) -> None:
    """Agreement within 0.01 absolute and within 4 standard errors of the simulation."""
    simulated, error = _monte_carlo(100.0, barrier, sigma, hours, paths=40_000, steps=48, seed=17)
    closed_form = float(touch_probability(100.0, barrier, sigma, hours))
    assert abs(closed_form - simulated) < 0.01
    assert abs(closed_form - simulated) < 4 * error + 1e-4


def test_touch_probability_edge_cases() -> None:
    marks = np.array([100.0, 100.0, 100.0, 100.0, 100.0])
    barriers = np.array([90.0, 100.0, math.nan, 110.0, 120.0])
    sigmas = np.array([0.0, 0.05, 0.05, 0.05, 0.05])
    distance = np.array([0.1, 0.0, math.nan, -0.1, 0.2])
    p = touch_probability(marks, barriers, sigmas, 24.0, distance)
    assert p.tolist() == [0.0, 1.0, 0.0, 1.0, pytest.approx(p[4])]
    assert 0.0 < p[4] < 0.01
    # no horizon: no time to move
    assert touch_probability(100.0, 90.0, 0.05, 0.0) == 0.0


def test_upper_barrier_tends_to_mark_over_barrier() -> None:
    """S is a martingale that drifts to 0: it ever reaches L > S with probability S / L."""
    assert touch_probability(100.0, 125.0, 0.05, 24.0 * 1e6) == pytest.approx(0.8, rel=1e-6)
    assert touch_probability(100.0, 80.0, 0.05, 24.0 * 1e6) == pytest.approx(1.0, rel=1e-6)


@settings(max_examples=200, deadline=None)
@given(
    st.floats(0.2, 5.0).filter(lambda r: abs(r - 1) > 1e-3),
    st.floats(0.001, 0.5),
    st.floats(0.5, 500.0),
)
def test_touch_probability_grows_with_time_and_volatility(ratio: float, sigma: float, hours: float) -> None:
    p = float(touch_probability(100.0, 100.0 * ratio, sigma, hours))
    assert 0.0 <= p <= 1.0
    assert float(touch_probability(100.0, 100.0 * ratio, sigma, hours * 1.5)) >= p - 1e-12
    assert float(touch_probability(100.0, 100.0 * ratio, sigma * 1.5, hours)) >= p - 1e-12
