"""Remedies and stress test on hand-checked numbers."""

from __future__ import annotations

from pathlib import Path

import pytest

from margin.pools import pool_figures, pools
from margin.remedies import deleverage_plan
from margin.snapshot import parse_snapshot
from margin.stress import liquidating_shocks, stress_test


def _position(
    symbol: str,
    side: str,
    contracts: float,
    entry: float,
    mark: float,
    rate: float,
    mode: str = "cross",
    margin: float | None = None,
) -> dict:
    return {
        "symbol": symbol,
        "side": side,
        "contracts": contracts,
        "contract_size": 1.0,
        "entry_price": entry,
        "mark_price": mark,
        "margin_mode": mode,
        "isolated_margin": margin,
        "maintenance_margin_rate": rate,
        "maintenance_amount": 0.0,
    }


def _snapshot(wallet: float, *positions: dict, fee: float = 0.001) -> dict:
    return {
        "exchange": "binanceusdm",
        "account": "t",
        "collateral": "USDT",
        "wallet_balance": wallet,
        "taker_fee": fee,
        "positions": list(positions),
    }


def test_deleverage_amount_matches_the_hand_computation() -> None:
    # 10 contracts at 100, 5 % maintenance: requirement 50; wallet 60 -> health 1.2.
    # Reduce x: equity 60 - 0.1 x >= 1.5 x 5 x (10 - x)  =>  x = 15 / 7.4 = 2.027027...
    snap = parse_snapshot(_snapshot(60.0, _position("A/USDT:USDT", "long", 10, 100, 100, 0.05)))
    plan = deleverage_plan(snap, 1.5)
    assert plan.reaches_target
    assert [r.symbol for r in plan.reductions] == ["A/USDT:USDT"]
    assert plan.reductions[0].contracts == pytest.approx(15 / 7.4, rel=1e-9)
    assert plan.reductions[0].fee == pytest.approx(15 / 7.4 * 100 * 0.001, rel=1e-9)
    assert plan.health_after == pytest.approx(1.5, rel=1e-9)


def test_deleverage_cuts_the_highest_maintenance_rate_first() -> None:
    snap = parse_snapshot(
        _snapshot(
            70.0,
            _position("BIG/USDT:USDT", "long", 100, 10, 10, 0.004),  # 1,000 notional, 4 req
            _position("ALT/USDT:USDT", "long", 10, 100, 100, 0.05),  # 1,000 notional, 50 req
        )
    )
    plan = deleverage_plan(snap, 1.5)
    assert plan.reductions[0].symbol == "ALT/USDT:USDT"
    assert len(plan.reductions) == 1


def test_amount_step_rounds_the_reduction_up() -> None:
    doc = _snapshot(60.0, _position("A/USDT:USDT", "long", 10, 100, 100, 0.05))
    doc["positions"][0]["amount_step"] = 0.5
    plan = deleverage_plan(parse_snapshot(doc), 1.5)
    assert plan.reductions[0].contracts == 2.5
    assert plan.health_after > 1.5


def test_deleverage_says_when_reduction_cannot_reach_the_target() -> None:
    # Equity below zero: no reduction restores it; the note names the top-up instead.
    snap = parse_snapshot(_snapshot(0.0, _position("A/USDT:USDT", "long", 10, 100, 90, 0.05)))
    plan = deleverage_plan(snap, 1.5)
    assert not plan.reaches_target
    assert "cannot reach" in plan.note and "top up" in plan.note


def test_isolated_pool_gets_a_topup_suggestion_not_a_reduction() -> None:
    snap = parse_snapshot(_snapshot(1000.0, _position("ISO/USDT:USDT", "long", 10, 100, 100, 0.05, "isolated", 60.0)))
    plan = deleverage_plan(snap, 1.5)
    assert plan.reductions == ()
    # requirement 50, equity 60: add 1.5 x 50 - 60 = 15
    assert "does not move its liquidation price" in plan.note
    assert "add 15.00 USDT" in plan.note


def test_stress_scenarios_and_smallest_liquidating_shock() -> None:
    # One long: 1 contract at 100, 10 % maintenance, wallet 20.
    # gap(s) = 20 + 100 s - 10 (1 + s) = 10 + 90 s  ->  liquidated at s = -1/9.
    snap = parse_snapshot(_snapshot(20.0, _position("A/USDT:USDT", "long", 1, 100, 100, 0.1)))
    scenarios = {s.shock: s for s in stress_test(snap, (-0.2, -0.1, 0.1))}
    assert scenarios[-0.2].pools[0].equity == pytest.approx(0.0, abs=1e-9)
    assert scenarios[-0.2].liquidated_positions == (0,)
    assert scenarios[-0.1].pools[0].health == pytest.approx(10 / 9)
    assert scenarios[-0.1].liquidated_positions == ()
    (shock,) = liquidating_shocks(snap)
    assert shock.down == pytest.approx(-1 / 9, rel=1e-9)
    assert shock.up is None
    assert shock.smallest == shock.down


def test_health_and_ratio_are_null_without_positions() -> None:
    snap = parse_snapshot(_snapshot(100.0))
    (cross,) = [pool_figures(snap, p) for p in pools(snap)]
    assert cross.health is None and cross.margin_ratio is None
    assert cross.topup_to(1.5) == 0.0


def test_price_for_health_on_both_sides() -> None:
    from margin.stress import price_for_health

    # long 1 at 100, 10 % maintenance, wallet 20: (20 + P - 100) / (0.1 P) = h => P = 80 / (1 - 0.1 h)
    long = parse_snapshot(_snapshot(20.0, _position("A/USDT:USDT", "long", 1, 100, 100, 0.1)))
    assert price_for_health(long, "A/USDT:USDT", 1.5) == pytest.approx(80 / 0.85, rel=1e-9)
    # short: (120 - P) / (0.1 P) = h => P = 120 / (1 + 0.1 h)
    short = parse_snapshot(_snapshot(20.0, _position("A/USDT:USDT", "short", 1, 100, 100, 0.1)))
    assert price_for_health(short, "A/USDT:USDT", 1.5) == pytest.approx(120 / 1.15, rel=1e-9)
    with pytest.raises(ValueError, match="no position"):
        price_for_health(long, "B/USDT:USDT", 1.5)


def test_deleverage_does_not_overcut_across_the_jump_at_a_full_close() -> None:
    """Binance's published cross example (tests/fixtures/margin/cases.json,
    binance_calc_example_cross_ETH: wallet 1,535,443.01, BTC and ETH longs with flat rates
    and maintenance amounts) at target 3, taker fee 0.04 %. The ETH cut needed:
    equity − fee x cut = 3 x (BTC's 0.025 N_btc − 16,300 + ETH's 0.1 (N_eth − cut) − 135,365),
    which 630.58 ETH satisfies; a solver that interpolated to the full close (where the
    requirement drops to 0, not to 0.1 N − 135,365) cut 870.45 ETH."""
    import json

    cases = json.loads((Path(__file__).parent / "fixtures" / "margin" / "cases.json").read_text())
    doc = next(c["snapshot"] for c in cases if c["id"] == "binance_calc_example_cross_ETH")
    plan = deleverage_plan(parse_snapshot({**doc, "taker_fee": 0.0004}), 3.0)
    ((cut,),) = [plan.reductions]
    assert cut.symbol == "ETH/USDT:USDT"
    assert cut.contracts == pytest.approx(630.58, abs=0.01)
    assert plan.reaches_target and plan.health_after == pytest.approx(3.0, rel=1e-9)
