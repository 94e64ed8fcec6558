"""Beta to BTC and the correlated stress test (margin.correlation) against the scalar engine."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from margin.correlation import (
    BENCHMARK,
    betas_to_benchmark,
    correlated_stress,
    shocked_prices,
)
from margin.pools import pool_figures, pools
from margin.snapshot import parse_snapshot
from margin.stress import liquidating_shocks, stress_test
from tests.strategies import SYMBOLS, snapshots

CONTINUOUS_VENUES = ["binanceusdm", "bybit", "hyperliquid", "kraken"]


def _series(returns: np.ndarray, start: float) -> list[float]:
    return list(start * np.exp(np.r_[0.0, np.cumsum(returns)]))


def test_beta_is_recovered_from_a_generated_series() -> None:
    rng = np.random.default_rng(2024)
    hours = 20_000
    btc = rng.standard_normal(hours) * 0.006
    truth = {"ETH/USDT:USDT": 1.35, "SOL/USDT:USDT": 1.9, "HEDGE/USDT:USDT": -0.4}
    closes = {BENCHMARK: _series(btc, 90_000.0)}
    for symbol, b in truth.items():
        closes[symbol] = _series(b * btc + rng.standard_normal(hours) * 0.004, 100.0)
    betas = betas_to_benchmark(closes)
    assert betas[BENCHMARK] == 1.0
    for symbol, b in truth.items():
        # standard error 0.004 / (0.006 √20000) = 0.0047
        assert betas[symbol] == pytest.approx(b, abs=0.02)


def test_series_are_aligned_on_their_most_recent_hours() -> None:
    rng = np.random.default_rng(8)
    btc = rng.standard_normal(300) * 0.01
    eth = 2 * btc + rng.standard_normal(300) * 0.002
    long_history = {BENCHMARK: _series(btc, 1000.0), "ETH/USDT:USDT": _series(eth[-200:], 50.0)}
    trimmed = {BENCHMARK: long_history[BENCHMARK][-201:], "ETH/USDT:USDT": long_history["ETH/USDT:USDT"]}
    assert betas_to_benchmark(long_history) == pytest.approx(betas_to_benchmark(trimmed), rel=1e-12)
    with pytest.raises(KeyError):
        betas_to_benchmark({"ETH/USDT:USDT": long_history["ETH/USDT:USDT"]})


def test_shock_mapping_by_hand() -> None:
    doc = {
        "exchange": "binanceusdm",
        "account": "t",
        "collateral": "USDT",
        "wallet_balance": 1000.0,
        "positions": [
            {
                "symbol": BENCHMARK,
                "side": "long",
                "contracts": 1,
                "contract_size": 1,
                "entry_price": 100,
                "mark_price": 100,
                "margin_mode": "cross",
                "maintenance_margin_rate": 0.01,
            },
            {
                "symbol": "ALT/USDT:USDT",
                "side": "long",
                "contracts": 1,
                "contract_size": 1,
                "entry_price": 10,
                "mark_price": 10,
                "margin_mode": "cross",
                "maintenance_margin_rate": 0.01,
            },
        ],
    }
    prices = shocked_prices(parse_snapshot(doc), {"ALT/USDT:USDT": 2.0}, -0.2)
    assert prices == pytest.approx([80.0, 10 * 0.8**2])  # BTC × 0.8; β = 2: × 0.64


BETAS = st.fixed_dictionaries({s: st.floats(-0.5, 3.0) for s in SYMBOLS})


@settings(max_examples=60, deadline=None)
@given(st.lists(snapshots(), min_size=1, max_size=4), BETAS, st.sampled_from([None, 1.0, 1.5]))
def test_correlated_stress_agrees_with_the_scalar_engine(docs: list[dict], betas: dict, target) -> None:
    snaps = [parse_snapshot(d) for d in docs]
    shocks = (-0.05, -0.2, -0.4)
    result = correlated_stress(snaps, betas, shocks, target_health=target)
    for scenario in result.scenarios:
        for a, snap in enumerate(snaps):
            prices = shocked_prices(snap, betas, scenario.btc_shock)
            figures = [pool_figures(snap, p, prices) for p in pools(snap)]
            held = [f for f in figures if f.pool.indices]
            scale = 1.0 + sum(abs(f.equity) + f.maintenance_margin for f in figures)
            survive = sum(f.deficit for f in held)
            assert scenario.collateral_to_survive[a] == pytest.approx(survive, abs=1e-9 * scale)
            if target is not None:
                to_target = sum(f.topup_to(target) for f in held)
                assert scenario.collateral_to_target[a] == pytest.approx(to_target, abs=1e-9 * scale)
                assert scenario.collateral_to_target[a] >= scenario.collateral_to_survive[a] - 1e-9 * scale
            if figures[0].health is not None:
                assert scenario.account_health[a] == pytest.approx(figures[0].health, rel=1e-9)
            margins = [f.equity - f.maintenance_margin for f in held]
            if all(abs(m) > 1e-9 * scale for m in margins):  # no pool exactly at its requirement
                assert scenario.liquidated[a] == any(m < 0 for m in margins)


@settings(max_examples=60, deadline=None)
@given(snapshots(venues=CONTINUOUS_VENUES))
def test_with_beta_one_everywhere_it_is_the_uniform_stress(doc: dict) -> None:
    """β = 1 for every symbol is margin.stress's uniform shock: same health, same first
    liquidating shock, whichever way it is."""
    snap = parse_snapshot(doc)
    betas = dict.fromkeys(SYMBOLS, 1.0)
    result = correlated_stress([snap], betas, (-0.1, -0.3))
    for ours, theirs in zip(result.scenarios, stress_test(snap, (-0.1, -0.3)), strict=True):
        if theirs.pools[0].health is not None:
            assert ours.account_health[0] == pytest.approx(theirs.pools[0].health, rel=1e-9)
    found = liquidating_shocks(snap)
    inside = [s.down for s in found if s.down is not None and s.down >= -0.99]
    inside += [s.up for s in found if s.up is not None and s.up <= 9.0]
    shock = result.liquidating_shock[0]
    if not inside:
        assert math.isnan(shock)
    else:  # the scalar solve is exact; ours bisects to 1e-11 of BTC (1e-9 x 10 up)
        nearest = min(inside, key=abs)
        assert abs(shock) == pytest.approx(abs(nearest), abs=1e-8)


def _long_only(draw_doc: dict) -> dict:
    for p in draw_doc["positions"]:
        p["side"] = "long"
    return draw_doc


@settings(max_examples=40, deadline=None)
@given(
    st.lists(snapshots(venues=CONTINUOUS_VENUES).map(_long_only), min_size=2, max_size=5),
    st.fixed_dictionaries({s: st.floats(0.2, 3.0) for s in SYMBOLS}),
)
def test_long_books_get_worse_as_btc_falls(docs: list[dict], betas: dict) -> None:
    snaps = [parse_snapshot(d) for d in docs]
    shocks = (-0.05, -0.1, -0.15, -0.2, -0.25, -0.3, -0.35, -0.4)
    result = correlated_stress(snaps, betas, shocks, target_health=1.5)
    gross = sum(s.wallet_balance + sum(p.size * p.mark_price for p in s.positions) for s in snaps)
    tolerance = 1e-7 * (1 + gross)
    for before, after in zip(result.scenarios, result.scenarios[1:], strict=False):
        assert np.all(after.collateral_to_survive >= before.collateral_to_survive - tolerance)
        assert np.all(after.collateral_to_target >= before.collateral_to_target - tolerance)
        assert after.n_liquidated >= before.n_liquidated
    # an account is liquidated at a scenario exactly when its first liquidating shock is
    # at or above it (smaller in size), and the order lists the accounts nearest first
    for scenario in result.scenarios:
        first = result.liquidating_shock
        expected = ~np.isnan(first) & (first >= scenario.btc_shock + 1e-9)
        surely = ~np.isnan(first) & (np.abs(first - scenario.btc_shock) > 1e-6)
        assert np.array_equal(scenario.liquidated[surely], expected[surely])
    order = [abs(s) for _, s in result.liquidation_order()]
    assert order == sorted(order)


def test_liquidation_order_by_hand() -> None:
    """Three one-position accounts, 10 contracts at 100, 1 % maintenance: a long with
    wallet w is liquidated at price P with w + 10 (P − 100) = 0.1 P, so P = (1000 − w) / 9.9.
    ALT has β = 2: its price is 100 (1 + s)², so s = √(P / 100) − 1."""

    def doc(name: str, symbol: str, wallet: float) -> dict:
        return {
            "exchange": "binanceusdm",
            "account": name,
            "collateral": "USDT",
            "wallet_balance": wallet,
            "positions": [
                {
                    "symbol": symbol,
                    "side": "long",
                    "contracts": 10,
                    "contract_size": 1,
                    "entry_price": 100,
                    "mark_price": 100,
                    "margin_mode": "cross",
                    "maintenance_margin_rate": 0.01,
                }
            ],
        }

    snaps = [
        parse_snapshot(doc("calm", BENCHMARK, 300.0)),
        parse_snapshot(doc("alt", "ALT/USDT:USDT", 300.0)),
        parse_snapshot(doc("thin", BENCHMARK, 100.0)),
    ]
    result = correlated_stress(snaps, {"ALT/USDT:USDT": 2.0})
    expected = {
        "binanceusdm/calm": 700 / 9.9 / 100 - 1,  # −29.3 %
        "binanceusdm/alt": math.sqrt(700 / 9.9 / 100) - 1,  # −15.9 %
        "binanceusdm/thin": 900 / 9.9 / 100 - 1,  # −9.1 %
    }
    order = result.liquidation_order()
    assert [name for name, _ in order] == ["binanceusdm/thin", "binanceusdm/alt", "binanceusdm/calm"]
    for name, shock in order:
        assert shock == pytest.approx(expected[name], abs=1e-9)
    # BTC −20 %: thin and alt are liquidated; their deficits are 0.1 P − (w + 10 (P − 100))
    scenario = next(s for s in result.scenarios if s.btc_shock == -0.2)
    assert scenario.btc_shock == -0.2
    assert scenario.liquidated.tolist() == [False, True, True]
    alt_price, btc_price = 100 * 0.8**2, 80.0
    deficit_alt = 0.1 * alt_price - (300 + 10 * (alt_price - 100))  # 6.4 + 60
    deficit_thin = 0.1 * btc_price - (100 + 10 * (btc_price - 100))  # 8 + 100
    assert scenario.collateral_to_survive == pytest.approx([0.0, deficit_alt, deficit_thin])
