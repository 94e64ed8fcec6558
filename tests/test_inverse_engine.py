"""The engine on coin-margined (inverse) contracts (issue 14): the venues' published
formulas and worked figures, and properties on random coin-margined books."""

from __future__ import annotations

import math
import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from margin.inverse import linear_twin, notional
from margin.liquidation import all_liquidations, liquidation_prices
from margin.pools import maintenance_requirement, pool_figures, pool_of, pools, taker_fee, unrealized_pnl
from margin.remedies import apply_deleverage, deleverage_plan
from margin.report import risk_report
from margin.rules import venue_rule
from margin.snapshot import parse_snapshot
from margin.stress import liquidating_shocks, shocked_prices, stress_test
from margin.vectorised import batch_from_snapshots, evaluate, health_prices
from tests.helpers import assert_same_price
from tests.inverse_strategies import inverse_snapshots
from tests.strategies import snapshots

SETTINGS = settings(max_examples=int(os.environ.get("MARGINWATCH_EXAMPLES", "300")), deadline=None)


def _inverse(side: str, contracts: float, entry: float, mark: float, **extra) -> dict:
    return {
        "symbol": extra.pop("symbol", "BTC/USD:BTC"),
        "contract_type": "inverse",
        "settle": "BTC",
        "side": side,
        "contracts": contracts,
        "contract_size": extra.pop("contract_size", 100.0),
        "entry_price": entry,
        "mark_price": mark,
        "margin_mode": extra.pop("margin_mode", "cross"),
        **extra,
    }


def _snap(exchange: str, wallet: float, *positions: dict, fee: float | None = None) -> dict:
    return {
        "exchange": exchange,
        "account": "coin",
        "collateral": "BTC",
        "wallet_balance": wallet,
        "taker_fee": fee,
        "positions": list(positions),
    }


# --- published formulas and worked figures ---------------------------------------------------


def test_binance_coinm_faq_maintenance_example() -> None:
    """Binance FAQ "How to Calculate Liquidation Price of COIN-M Futures Contracts": 100
    BTCUSD contracts at mark 25,000 are 100 x 100 / 25,000 = 0.4 BTC of notional, in the
    first bracket (0.4 %): maintenance 0.0016 BTC."""
    tiers = [
        {"min_notional": 0, "maintenance_margin_rate": 0.004},
        {"min_notional": 5, "maintenance_margin_rate": 0.005},
    ]
    snap = parse_snapshot(_snap("binancecoinm", 1.0, _inverse("long", 100, 25_000, 25_000, tiers=tiers)))
    pos = snap.positions[0]
    assert notional(pos) == pytest.approx(0.4)
    rule = venue_rule("binancecoinm").cross
    assert maintenance_requirement(pos, rule, taker_fee(snap), pos.mark_price) == pytest.approx(0.0016)


def test_binance_coinm_calculator_example() -> None:
    """Binance's own calculator, as quoted on dev.binance.vision (thread 6292, "Coin-margined
    futures liquidation price calculation"): wallet 101 BTC, long 100,000 BTCUSD contracts
    (10,000,000 USD) at 45,000 -> liquidation 33,599.40. The notional there (~297.6 BTC) is in
    the bracket the FAQ gives for a 300 BTC position: 12.5 %, maintenance amount 11.605 BTC."""
    pos = _inverse("long", 100_000, 45_000, 45_000, maintenance_margin_rate=0.125, maintenance_amount=11.605)
    snap = parse_snapshot(_snap("binancecoinm", 101.0, pos))
    found = liquidation_prices(snap, 0)
    assert found.down == pytest.approx(33_599.40, abs=0.05)
    assert found.up is None


def _binance_coinm_formula(wb: float, legs: list[tuple[int, float, float, float, float]]) -> float:
    """The FAQ's formula, written out: legs (side, N = contracts x contract size, entry, MMR,
    cum), LP = [sum N x MMR + sum side x N] / [WB + sum cum + sum side x N / EP]."""
    numerator = sum(n * mmr + side * n for side, n, _, mmr, _ in legs)
    denominator = wb + sum(cum for *_, cum in legs) + sum(side * n / ep for side, n, ep, _, _ in legs)
    return numerator / denominator


@pytest.mark.parametrize(
    ("wallet", "long", "short"),
    [(2.0, (400, 61_000), None), (0.1, None, (250, 59_000)), (1.2, (500, 60_500), (200, 58_000))],
    ids=["one-way long", "one-way short", "hedge"],
)
def test_binance_coinm_formula_one_way_and_hedge(wallet: float, long, short) -> None:
    """One bracket (0.5 %, cum 0.001 BTC, which applies from 0.2 BTC of notional: every
    leg is above that at its liquidation price), so the formula holds as written."""
    flat = {"maintenance_margin_rate": 0.005, "maintenance_amount": 0.001}
    positions, legs = [], []
    for side, leg in (("long", long), ("short", short)):
        if leg:
            contracts, entry = leg
            positions.append(_inverse(side, contracts, entry, 60_000, **flat))
            legs.append((1 if side == "long" else -1, contracts * 100.0, entry, 0.005, 0.001))
    snap = parse_snapshot(_snap("binancecoinm", wallet, *positions))
    expected = _binance_coinm_formula(wallet, legs)
    found = liquidation_prices(snap, 0)
    assert expected == pytest.approx(found.nearest, rel=1e-12)
    assert all(f == found for f in all_liquidations(snap))  # hedge legs share their prices


@pytest.mark.parametrize(
    ("side", "expected"),
    [("long", 60_000 * 1.005 / 1.32), ("short", 60_000 * 0.995 / 1.08)],
)
def test_bybit_inverse_isolated_example(side: str, expected: float) -> None:
    """Bybit, "Liquidation Price Calculation under Isolated Mode (Unified Trading Account)"
    (revision 2026-05-27), inverse example: 60,000 USD of BTCUSD at 50,000, 10x, MMR 0.5 %:
    position value 1.2 BTC, IM 0.12 BTC. LP(long) = Size x (1 + MMR) / (Size/Entry +
    Size/Entry/Leverage) = 45,681.82; LP(short) = Size x (1 - MMR) / (Size/Entry -
    Size/Entry/Leverage) = 55,277.78. The position margin Bybit holds is IM + the fee to
    close at the bankruptcy price (which the requirement holds too, so it cancels)."""
    fee = 0.00055
    sign = 1 if side == "long" else -1
    bankruptcy = 50_000 * 10 / (10 + sign)
    efc = 60_000 / bankruptcy * fee
    pos = _inverse(
        side,
        60_000,
        50_000,
        50_000,
        contract_size=1.0,
        margin_mode="isolated",
        isolated_margin=0.12 + efc,
        leverage=10,
        maintenance_margin_rate=0.005,
    )
    snap = parse_snapshot(_snap("bybit", 0.0, pos, fee=fee))
    assert maintenance_requirement(snap.positions[0], venue_rule("bybit").isolated, fee, 50_000) == pytest.approx(
        0.006 + efc
    )
    assert liquidation_prices(snap, 0).nearest == pytest.approx(expected, rel=1e-12)


def test_inverse_pnl_is_contracts_times_contract_size_times_reciprocal_difference() -> None:
    for side, sign in (("long", 1), ("short", -1)):
        snap = parse_snapshot(_snap("okx", 1.0, _inverse(side, 37, 52_000, 61_000, maintenance_margin_rate=0.004)))
        pos = snap.positions[0]
        expected = sign * 37 * 100 * (1 / 52_000 - 1 / 61_000)
        assert unrealized_pnl(pos, 61_000) == pytest.approx(expected, rel=1e-14)
        assert linear_twin(pos).side != pos.side


# --- properties --------------------------------------------------------------------------------


@SETTINGS
@given(inverse_snapshots())
def test_health_is_one_at_both_liquidation_prices(doc: dict) -> None:
    snap = parse_snapshot(doc)
    for i, found in enumerate(all_liquidations(snap)):
        pool = pool_of(snap, i)
        legs = {j for j in pool.indices if snap.positions[j].symbol == snap.positions[i].symbol}
        for price in (found.down, found.up):
            if price is None or price == found.mark:
                continue
            prices = [price if j in legs else p.mark_price for j, p in enumerate(snap.positions)]
            figures = pool_figures(snap, pool, prices)
            scale = pool.balance + sum(notional(snap.positions[j], prices[j]) for j in pool.indices)
            # equity = requirement there, or the requirement jumps across it at a tier border
            gap = figures.equity - figures.maintenance_margin
            if abs(gap) > 1e-9 * scale:
                rule = venue_rule(snap.exchange).mode(pool.margin_mode)
                assert not rule.uses_maintenance_amount
                assert any(
                    t.min_notional > 0 and snap.positions[j].size / t.min_notional == pytest.approx(price, rel=1e-9)
                    for j in legs
                    for t in snap.positions[j].tiers
                )


@SETTINGS
@given(inverse_snapshots(), st.floats(1.0, 3.0))
def test_topup_in_coin_reaches_the_target(doc: dict, target: float) -> None:
    snap = parse_snapshot(doc)
    cross = pools(snap)[0]
    figures = pool_figures(snap, cross)
    if figures.health is None:
        return
    topped = parse_snapshot({**doc, "wallet_balance": doc["wallet_balance"] + figures.topup_to(target)})
    after = pool_figures(topped, pools(topped)[0])
    assert after.health >= target * (1 - 1e-9)


@SETTINGS
@given(inverse_snapshots(modes=("cross",)), st.floats(1.1, 3.0))
def test_deleverage_reduces_contracts_and_reaches_the_target_when_it_says_so(doc: dict, target: float) -> None:
    snap = parse_snapshot(doc)
    plan = deleverage_plan(snap, target)
    for r in plan.reductions:
        pos = snap.positions[r.index]
        assert 0 < r.contracts <= pos.contracts
        assert r.notional == pytest.approx(r.contracts * pos.contract_size / pos.mark_price)  # coin
    if plan.reaches_target and plan.reductions:
        after = apply_deleverage(snap, plan.reductions, taker_fee(snap), 0.0)
        health = pool_figures(after, pools(after)[0]).health
        assert health is None or health >= target * (1 - 1e-9)


@SETTINGS
@given(inverse_snapshots())
def test_the_liquidating_shock_is_where_the_gap_crosses_zero(doc: dict) -> None:
    snap = parse_snapshot(doc)
    for shock in liquidating_shocks(snap):
        scale = shock.pool.balance + sum(notional(snap.positions[i]) for i in shock.pool.indices) * 10
        for value in (shock.down, shock.up):
            if not value or value <= -1 + 1e-6:
                continue
            step = math.copysign(1e-9, value)
            past = pool_figures(snap, shock.pool, shocked_prices(snap, value + step))
            short = pool_figures(snap, shock.pool, shocked_prices(snap, value - step))
            assert past.equity - past.maintenance_margin <= 1e-7 * scale
            assert short.equity - short.maintenance_margin >= -1e-7 * scale


@SETTINGS
@given(inverse_snapshots(), st.sampled_from([-0.5, -0.2, 0.3]))
def test_stress_scenarios_equal_the_scalar_figures(doc: dict, shock: float) -> None:
    snap = parse_snapshot(doc)
    (scenario,) = stress_test(snap, [shock])
    for stressed in scenario.pools:
        scalar = pool_figures(snap, stressed.pool, shocked_prices(snap, shock))
        assert stressed.equity == pytest.approx(scalar.equity, rel=1e-9, abs=1e-12)
        assert stressed.maintenance_margin == pytest.approx(scalar.maintenance_margin, rel=1e-9, abs=1e-12)


@SETTINGS
@given(st.lists(st.one_of(inverse_snapshots(), snapshots()), min_size=1, max_size=4))
def test_vectorised_equals_scalar_on_mixed_batches(docs: list[dict]) -> None:
    """Linear and coin-margined accounts in one batch, as the poller evaluates them."""
    snaps = [parse_snapshot(d) for d in docs]
    batch = batch_from_snapshots(snaps)
    result = evaluate(batch)
    at_health = health_prices(batch, 1.5)
    for k in range(batch.size.shape[0]):
        snap, i = snaps[batch.account[k]], int(batch.index[k])
        pos = snap.positions[i]
        found = liquidation_prices(snap, i)
        assert_same_price(result.liquidation_price_down[k], found.down, pos.mark_price)
        assert_same_price(result.liquidation_price_up[k], found.up, pos.mark_price)
        assert_same_price(result.liquidation_price[k], found.nearest, pos.mark_price)
        assert result.notional[k] == pytest.approx(notional(pos), rel=1e-12)
        assert result.unrealized_pnl[k] == pytest.approx(unrealized_pnl(pos, pos.mark_price), rel=1e-9, abs=1e-12)
        if found.distance is not None and not math.isnan(result.distance[k]):
            assert result.distance[k] == pytest.approx(found.distance, rel=1e-9, abs=1e-12)
        scalar = all_liquidations(snap, 1.5)[i]
        assert_same_price(at_health[0][k], scalar.down, pos.mark_price)
        assert_same_price(at_health[1][k], scalar.up, pos.mark_price)
    for pool_id in range(batch.pool_balance.shape[0]):
        snap = snaps[batch.pool_account[pool_id]]
        members = sorted(batch.index[batch.pool == pool_id].tolist())
        cross = bool(batch.pool_is_cross[pool_id])
        match = next(p for p in pools(snap) if sorted(p.indices) == members and (p.margin_mode == "cross") == cross)
        figures = pool_figures(snap, match)
        assert result.pool_equity[pool_id] == pytest.approx(figures.equity, rel=1e-12, abs=1e-9)
        assert result.pool_maintenance[pool_id] == pytest.approx(figures.maintenance_margin, rel=1e-12, abs=1e-12)
        if figures.health is None:
            assert np.isnan(result.pool_health[pool_id])
        else:
            assert result.pool_health[pool_id] == pytest.approx(figures.health, rel=1e-9)


def test_a_mixed_coin_book_perpetual_quarterly_and_hedge() -> None:
    """One BTC cross pool: a short perpetual hedging the wallet, a long quarterly beside it,
    a hedged quarterly; an isolated perpetual. Every price is where its pool is at 1."""
    tiers = [
        {"min_notional": 0, "maintenance_margin_rate": 0.004},
        {"min_notional": 5, "maintenance_margin_rate": 0.005},
        {"min_notional": 10, "maintenance_margin_rate": 0.01},
        {"min_notional": 20, "maintenance_margin_rate": 0.025},
    ]
    doc = _snap(
        "binancecoinm",
        3.0,
        _inverse("short", 3_000, 60_000, 58_000, tiers=tiers),
        _inverse("long", 1_500, 55_000, 58_400, symbol="BTC/USD:BTC-261225", tiers=tiers),
        _inverse("long", 800, 57_000, 58_900, symbol="BTC/USD:BTC-270326", tiers=tiers),
        _inverse("short", 200, 59_500, 58_900, symbol="BTC/USD:BTC-270326", tiers=tiers),
        _inverse("long", 100, 58_000, 58_000, margin_mode="isolated", isolated_margin=0.02, leverage=50, tiers=tiers),
    )
    snap = parse_snapshot(doc)
    found = all_liquidations(snap)
    assert found[2] == found[3]
    report = risk_report(snap)
    assert report["valuation_currency"] == "USD"
    account = report["account"]
    assert account["equity_usd"] == pytest.approx(account["equity"] * 58_000)
    assert report["positions"][0]["notional"] == pytest.approx(300_000 / 58_000)
    assert report["positions"][4]["topup_to_target_usd"] == pytest.approx(
        report["positions"][4]["topup_to_target"] * 58_000
    )
    # the collateral's value moves with the price in the stress test
    for shock, scenario in zip(report["stress"]["shocks"], report["stress"]["scenarios"], strict=True):
        assert scenario["valuation_price"] == pytest.approx(58_000 * (1 + shock))
    for i, liq in enumerate(found):
        pool = pool_of(snap, i)
        for price in (liq.down, liq.up):
            if price is None:
                continue
            legs = [j for j in pool.indices if snap.positions[j].symbol == snap.positions[i].symbol]
            prices = [price if j in legs else p.mark_price for j, p in enumerate(snap.positions)]
            assert pool_figures(snap, pool, prices).health == pytest.approx(1.0, rel=1e-9)
