"""Liquidation prices on both sides of the mark (issue 11): a book can liquidate below and
above; the engine reports both, and the nearest as the headline."""

from __future__ import annotations

import json
import math
import os

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from margin.liquidation import all_liquidations, hedge_legs, liquidation_prices
from margin.pools import pool_figures, pool_of, taker_fee
from margin.remedies import apply_deleverage, deleverage_plan
from margin.report import risk_report
from margin.snapshot import parse_snapshot
from margin.vectorised import batch_from_snapshots, evaluate
from tests.helpers import FIXTURES
from tests.strategies import snapshots

PROPERTY_SETTINGS = settings(max_examples=int(os.environ.get("MARGINWATCH_EXAMPLES", "300")), deadline=None)
CONTINUOUS = ["binanceusdm", "bybit", "hyperliquid", "kraken"]  # tiers with a maintenance amount


def _figures_at(snap, index: int, price: float):
    legs = hedge_legs(snap, index)
    prices = [price if j in legs else p.mark_price for j, p in enumerate(snap.positions)]
    return pool_figures(snap, pool_of(snap, index), prices)


def _scale(snap, index: int, price: float) -> float:
    pool = pool_of(snap, index)
    return abs(pool.balance) + sum(
        snap.positions[j].size * max(price, snap.positions[j].mark_price, snap.positions[j].entry_price)
        for j in pool.indices
    )


@PROPERTY_SETTINGS
@given(snapshots(venues=CONTINUOUS))
def test_health_is_one_at_both_liquidation_prices(doc: dict) -> None:
    snap = parse_snapshot(doc)
    for i in range(len(snap.positions)):
        found = liquidation_prices(snap, i)
        for price in (found.down, found.up):
            if price is None:
                continue
            figures = _figures_at(snap, i, price)
            assume(figures.maintenance_margin > 1e-6 * _scale(snap, i, price))  # no cancellation
            assert figures.health == pytest.approx(1.0, rel=1e-9, abs=0)


@PROPERTY_SETTINGS
@given(snapshots(), st.lists(st.floats(0.001, 0.999), min_size=1, max_size=5))
def test_between_the_two_prices_a_solvent_pool_stays_above_its_requirement(doc: dict, fractions) -> None:
    snap = parse_snapshot(doc)
    for i in range(len(snap.positions)):
        found = liquidation_prices(snap, i)
        at_mark = _figures_at(snap, i, found.mark)
        if found.past or at_mark.equity <= at_mark.maintenance_margin:
            continue
        low = found.down if found.down is not None else 0.0
        high = found.up if found.up is not None else found.mark * 20
        for f in fractions:
            price = low + (high - low) * f
            if price <= 0:
                continue
            figures = _figures_at(snap, i, price)
            assert figures.equity - figures.maintenance_margin >= -1e-9 * _scale(snap, i, price)


@PROPERTY_SETTINGS
@given(snapshots())
def test_the_nearest_is_the_side_with_the_smallest_distance(doc: dict) -> None:
    snap = parse_snapshot(doc)
    for found in all_liquidations(snap):
        sides = {s: d for s in ("down", "up") if (d := found.distance_to(s)) is not None}  # type: ignore[arg-type]
        if not sides:
            assert found.nearest is None and found.side is None and found.distance is None
            continue
        best = min(sides, key=lambda s: abs(sides[s]))
        assert abs(found.distance) == pytest.approx(abs(sides[best]))  # type: ignore[arg-type]
        assert found.nearest == (found.down if found.side == "down" else found.up)


@PROPERTY_SETTINGS
@given(snapshots())
def test_all_at_once_equals_one_at_a_time(doc: dict) -> None:
    snap = parse_snapshot(doc)
    every = all_liquidations(snap)
    for i in range(len(snap.positions)):
        one = liquidation_prices(snap, i)
        for a, b in ((every[i].down, one.down), (every[i].up, one.up)):
            assert (a is None and b is None) or a == pytest.approx(b, rel=1e-12)


@PROPERTY_SETTINGS
@given(st.lists(snapshots(modes=("cross",)), min_size=1, max_size=4))
def test_vectorised_equals_scalar_on_both_sides(docs: list[dict]) -> None:
    """Cross-only books hold hedge legs and longs beside shorts of the same symbol."""
    snaps = [parse_snapshot(d) for d in docs]
    batch = batch_from_snapshots(snaps)
    result = evaluate(batch)
    for k in range(batch.size.shape[0]):
        found = all_liquidations(snaps[batch.account[k]])[int(batch.index[k])]
        for got, expected in (
            (result.liquidation_price_down[k], found.down),
            (result.liquidation_price_up[k], found.up),
            (result.liquidation_price[k], found.nearest),
            (result.distance[k], found.distance),
        ):
            if expected is None:
                assert math.isnan(got)
            else:
                assert got == pytest.approx(expected, rel=1e-9, abs=1e-12)
        assert int(result.liquidation_side[k]) == {"down": -1, "up": 1, None: 0}[found.side]


def _binance_btc_tiers() -> list[dict]:
    """Binance's BTC/USDT brackets as ccxt recorded them (tests/fixtures/ccxt)."""
    doc = json.loads((FIXTURES / "ccxt" / "binance.fetchPositions.json").read_text())
    brackets = doc["options"]["leverageBrackets"]["BTC/USDT:USDT"]
    return [{"min_notional": float(floor), "maintenance_margin_rate": float(rate)} for floor, rate in brackets]


def _hedge_book(wallet: float) -> dict:
    tiers = _binance_btc_tiers()
    leg = {"symbol": "BTC/USDT:USDT", "contract_size": 1, "mark_price": 98000, "margin_mode": "cross", "tiers": tiers}
    return {
        "exchange": "binanceusdm",
        "account": "hedge",
        "collateral": "USDT",
        "wallet_balance": wallet,
        "positions": [
            {**leg, "side": "long", "contracts": 200, "entry_price": 97000},
            {**leg, "side": "short", "contracts": 180, "entry_price": 90500},
        ],
    }


def test_a_hedge_book_in_binance_brackets_liquidates_on_both_sides() -> None:
    """Long 200 @ 97,000 and short 180 @ 90,500 in hedge mode, wallet 2,600,000 USDT, mark
    98,000. Equity(P) = 2,600,000 + 200 (P - 97,000) - 180 (P - 90,500) = 20 P - 510,000.
    Below, both legs are in the 3M-20M bracket (2.5 %, cum 46,300 each):
    MM = 0.025 x 380 P - 92,600, so 20 P - 510,000 = 9.5 P - 92,600 -> P = 39,752.38.
    Above, both legs are in the 40M-100M bracket (10 %, cum 2,546,300 each):
    MM = 38 P - 5,092,600 -> 18 P = 4,582,600 -> P = 254,588.89."""
    report = risk_report(parse_snapshot(_hedge_book(2_600_000)))
    for position in report["positions"]:
        assert position["liquidation_price_down"] == pytest.approx(417_400 / 10.5, rel=1e-12)
        assert position["liquidation_price_up"] == pytest.approx(4_582_600 / 18, rel=1e-12)
        assert position["liquidation_side"] == "down"
        assert position["distance_to_liquidation"] == pytest.approx(1 - (417_400 / 10.5) / 98_000)
    # the stress test sees both: the up shock is exactly the upper liquidation price
    (shock,) = report["stress"]["liquidating_shocks"]
    assert shock["up"] == pytest.approx(4_582_600 / 18 / 98_000 - 1, rel=1e-9)
    assert shock["side"] == "down"


def test_a_hedge_plan_never_flips_the_net_side_or_brings_a_liquidation_nearer() -> None:
    snap = parse_snapshot(_hedge_book(2_600_000))
    before = all_liquidations(snap)[0]
    plan = deleverage_plan(snap, 2.5)
    assert plan.reaches_target and plan.health_after == pytest.approx(2.5, rel=1e-6)
    cut = {r.side: r.contracts for r in plan.reductions}
    assert set(cut) == {"long", "short"}  # both legs, in proportion
    assert cut["long"] / 200 == pytest.approx(cut["short"] / 180, rel=1e-9)
    assert 200 - cut["long"] > 180 - cut["short"]  # still net long
    after = all_liquidations(apply_deleverage(snap, plan.reductions, taker_fee(snap), 0.0))[0]
    # neither side comes nearer (a side that vanished is infinitely far)
    assert after.down is None or after.down <= before.down  # type: ignore[operator]
    assert after.up is None or after.up >= before.up  # type: ignore[operator]
    assert plan.distance_after is not None and abs(plan.distance_after) >= abs(plan.distance_before)  # type: ignore[arg-type]


def test_vectorised_is_linear_in_shape_for_a_large_book() -> None:
    """5,000 positions in one cross pool: the all-at-once path returns one result per
    position and agrees with the vectorised engine (the work is per pool, not per pair)."""
    rng = np.random.default_rng(7)
    symbols = [f"S{i}/USDT:USDT" for i in range(2500)]
    positions = [
        {
            "symbol": symbols[k % 2500],
            "side": "long" if k % 3 else "short",
            "contracts": float(rng.uniform(1, 10)),
            "contract_size": 1.0,
            "entry_price": 100.0,
            "mark_price": 100.0 + (k % 2500) * 0.01,
            "margin_mode": "cross",
            "maintenance_margin_rate": 0.01,
        }
        for k in range(5000)
    ]
    snap = parse_snapshot(
        {
            "exchange": "binanceusdm",
            "account": "big",
            "collateral": "USDT",
            "wallet_balance": 1e5,
            "positions": positions,
        }
    )
    every = all_liquidations(snap)
    batch = batch_from_snapshots([snap])
    result = evaluate(batch)
    assert len(every) == 5000
    for k in range(0, 5000, 97):
        expected = every[int(batch.index[k])].nearest
        got = result.liquidation_price[k]
        assert (expected is None and math.isnan(got)) or got == pytest.approx(expected, rel=1e-9)


def test_a_requirement_that_jumps_at_the_mark_is_crossed_at_the_mark() -> None:
    """Found by hypothesis: an OKX isolated long whose notional sits exactly on a tier floor
    (501 contracts at 1.0, floor 501). At the mark the 18.75 % tier applies and the pool is
    past its requirement; a hair below, the 6.25 % tier applies and it is back above it.
    The requirement jumps at the mark itself, so the mark is where the gap crosses 0 going
    down, on the scalar and the vectorised path alike (not the next floor, 500/501 below)."""
    tiers = [
        {"min_notional": 0.0, "max_notional": 500.0, "maintenance_margin_rate": 0.03125},
        {"min_notional": 500.0, "max_notional": 501.0, "maintenance_margin_rate": 0.0625},
        {"min_notional": 501.0, "maintenance_margin_rate": 0.1875},
    ]
    snap = parse_snapshot(
        {
            "exchange": "okx",
            "account": "prop",
            "collateral": "USDT",
            "wallet_balance": 0.0,
            "positions": [
                {
                    "symbol": "ETH/USDT:USDT",
                    "side": "long",
                    "contracts": 501.0,
                    "contract_size": 1.0,
                    "entry_price": 1.0,
                    "mark_price": 1.0,
                    "margin_mode": "isolated",
                    "isolated_margin": 62.625,
                    "tiers": tiers,
                }
            ],
        }
    )
    (found,) = all_liquidations(snap)
    assert found.past and found.down == 1.0
    result = evaluate(batch_from_snapshots([snap]))
    assert result.liquidation_price_down[0] == 1.0


def test_a_root_near_zero_behind_bybit_s_fee_to_close_is_found_by_both_paths() -> None:
    """Found by hypothesis (and by the 1M-position bench): a Bybit long at 1x whose only
    liquidation price is 99.94 % below the mark, where the estimated fee to close (a
    constant of the requirement) makes the gap negative at zero. The vectorised path ruled
    the side out by a gap at zero that left the fee out."""
    doc = {
        "exchange": "bybit",
        "account": "a",
        "collateral": "USDT",
        "wallet_balance": 50.0,
        "taker_fee": 0.00055,
        "positions": [
            {
                "symbol": "X/USDT:USDT",
                "side": "long",
                "contracts": 50.0,
                "contract_size": 1.0,
                "entry_price": 1.0,
                "mark_price": 1.0,
                "margin_mode": "cross",
                "maintenance_margin_rate": 0.125,
            }
        ],
    }
    snap = parse_snapshot(doc)
    found = all_liquidations(snap)[0]
    assert found.down is not None and 0 < found.down < 0.001
    result = evaluate(batch_from_snapshots([snap]))
    assert result.liquidation_price_down[0] == pytest.approx(found.down, rel=1e-9)
