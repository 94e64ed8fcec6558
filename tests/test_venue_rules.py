"""Each venue's maintenance requirement against the numbers its own pages publish
(margin/rules.py names every source). Each test names the page its numbers come from."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

from margin.liquidation import liquidation_price
from margin.pools import pool_figures, pool_of, pools
from margin.snapshot import Snapshot, parse_snapshot
from margin.vectorised import batch_from_snapshots, evaluate


def _snapshot(exchange: str, wallet: float, fee: float | None, **position: object) -> Snapshot:
    pos = {
        "symbol": "BTC/USDC:USDC",
        "side": "long",
        "contracts": 1.0,
        "contract_size": 1.0,
        "margin_mode": "cross",
        **position,
    }
    pos.setdefault("mark_price", pos["entry_price"])
    return parse_snapshot(
        {
            "exchange": exchange,
            "account": "a",
            "collateral": "USDC",
            "wallet_balance": wallet,
            "taker_fee": fee,
            "positions": [pos],
        }
    )


def _at(snapshot: Snapshot, price: float) -> Snapshot:
    """The same account with its (one) symbol marked at `price`."""
    return replace(snapshot, positions=tuple(replace(p, mark_price=price) for p in snapshot.positions))


def _health(snapshot: Snapshot, index: int = 0) -> float | None:
    return pool_figures(snapshot, pool_of(snapshot, index)).health


def _vectorised_equals_scalar(snapshot: Snapshot) -> None:
    batch = batch_from_snapshots([snapshot])
    result = evaluate(batch)
    for k, pool in enumerate(pools(snapshot)):
        assert result.pool_maintenance[k] == pool_figures(snapshot, pool).maintenance_margin
    for k, i in enumerate(batch.index):
        expected = liquidation_price(snapshot, int(i))
        if expected is None:
            assert math.isnan(result.liquidation_price[k])
        else:
            assert result.liquidation_price[k] == pytest.approx(expected, rel=1e-12)


# --- Bybit: estimated fee to close ------------------------------------------------------

# help.bybit.com/hc/en-us/articles/4431367679641 "Maintenance Margin Calculation (USDC
# Contract)": 1 BTC @ 51,000, 10x, MMR 0.5 %, taker 0.06 %: 255 + 27.54 = 282.54.
BYBIT_USDC = {"entry_price": 51_000.0, "leverage": 10, "maintenance_margin_rate": 0.005}


def test_bybit_usdc_page_maintenance_is_282_54_with_the_fee_to_close() -> None:
    snap = _snapshot("bybit", 10_000.0, 0.0006, **BYBIT_USDC)
    assert pool_figures(snap, pools(snap)[0]).maintenance_margin == pytest.approx(282.54, abs=1e-9)
    _vectorised_equals_scalar(snap)


def test_bybit_usdc_page_cross_liquidation_is_41_233_71_and_health_1_there() -> None:
    # Same position, cross, wallet 10,000 (issue 12): 10,000 + (P - 51,000) = 0.005 P + 27.54.
    snap = _snapshot("bybit", 10_000.0, 0.0006, **BYBIT_USDC)
    liq = liquidation_price(snap, 0)
    assert liq == pytest.approx((51_000 - 10_000 + 27.54) / 0.995, rel=1e-12)
    assert round(liq, 2) == 41_233.71
    assert _health(_at(snap, liq)) == pytest.approx(1.0, rel=1e-9)
    # without the fee (the rule before) health there would read 1.13
    assert (10_000 + liq - 51_000) / (0.005 * liq) == pytest.approx(1.1336, abs=1e-4)
    _vectorised_equals_scalar(snap)


def test_bybit_fee_to_close_of_a_short_uses_one_plus_one_over_leverage() -> None:
    # "The New Margin Calculation" (Bybit, revision 2025-09-18), Position MM:
    # ... + Position Size x Entry Price x (1 ± 1 ÷ Leverage) x Taker Fee Rate.
    snap = _snapshot("bybit", 10_000.0, 0.0006, side="short", **BYBIT_USDC)
    expected = 51_000 * 0.005 + 51_000 * (1 + 1 / 10) * 0.0006
    assert pool_figures(snap, pools(snap)[0]).maintenance_margin == pytest.approx(expected, rel=1e-12)
    _vectorised_equals_scalar(snap)


def test_bybit_isolated_maintenance_is_at_mark_since_2_sep_2025() -> None:
    # "The New Margin Calculation" (revision 2025-09-18): "MM will be calculated using the
    # Mark Price, while IM will continue to be based on the Entry Price"; the fee to close
    # stays on entry. 1 BTC @ 40,000, 50x, MMR 0.5 %, taker 0.055 %, marked at 38,000.
    fee_to_close = 40_000 * (1 - 1 / 50) * 0.00055  # 21.56, as Bybit's own example has it
    margin = 40_000 / 50 + fee_to_close
    snap = _snapshot(
        "bybit",
        0.0,
        0.00055,
        entry_price=40_000.0,
        mark_price=38_000.0,
        leverage=50,
        maintenance_margin_rate=0.005,
        margin_mode="isolated",
        isolated_margin=margin,
    )
    assert fee_to_close == pytest.approx(21.56, abs=1e-9)
    figures = pool_figures(snap, pool_of(snap, 0))
    assert figures.maintenance_margin == pytest.approx(38_000 * 0.005 + 21.56, rel=1e-12)
    # Bybit's current isolated formula ("Trading Rules: Liquidation Process (UTA)"), no
    # extra margin: LP = (entry x size - entry x size / leverage) / (size x (1 - MMR)).
    liq = liquidation_price(snap, 0)
    assert liq == pytest.approx((40_000 - 800) / 0.995, rel=1e-12)
    assert _health(_at(snap, liq)) == pytest.approx(1.0, rel=1e-9)
    _vectorised_equals_scalar(snap)


def test_bybit_isolated_example_with_extra_margin_within_the_documented_difference() -> None:
    # Bybit "Trading Rules: Liquidation Process (UTA)" as transcribed 2026-08-06 (research
    # notes, issue 12, S1): 1 BTC @ 40,000, 50x, 3,000 extra margin, MMR 0.5 %, taker
    # 0.055 % -> LP 36,380.25; MM = 200 + 21.56. Bybit credits extra margin at
    # 1 / (1 - taker); we credit it 1:1 (margin/rules.py), which puts our LP higher by
    # 3,000 x taker / (1 - taker) / 0.995.
    taker = 0.00055
    snap = _snapshot(
        "bybit",
        0.0,
        taker,
        entry_price=40_000.0,
        leverage=50,
        maintenance_margin_rate=0.005,
        margin_mode="isolated",
        isolated_margin=800 + 21.56 + 3_000,
    )
    bybit = (40_000 - 800 - 3_000 / (1 - taker)) / 0.995
    assert round(bybit, 2) == 36_380.25
    assert liquidation_price(snap, 0) == pytest.approx(bybit + 3_000 * taker / (1 - taker) / 0.995, rel=1e-12)


def test_bybit_without_leverage_isolated_takes_it_from_the_margin_cross_at_entry() -> None:
    # docs/snapshot-format.md: isolated -> 1/leverage = isolated margin / entry value (the fee
    # at the position's bankruptcy price); cross -> the fee at entry.
    isolated = _snapshot(
        "bybit",
        0.0,
        0.001,
        entry_price=100.0,
        contracts=10,
        maintenance_margin_rate=0.01,
        margin_mode="isolated",
        isolated_margin=250.0,
    )
    assert pool_figures(isolated, pool_of(isolated, 0)).maintenance_margin == pytest.approx(
        1000 * 0.01 + (1000 - 250) * 0.001, rel=1e-12
    )
    cross = _snapshot("bybit", 500.0, 0.001, entry_price=100.0, contracts=10, maintenance_margin_rate=0.01)
    assert pool_figures(cross, pools(cross)[0]).maintenance_margin == pytest.approx(10 + 1000 * 0.001, rel=1e-12)
    _vectorised_equals_scalar(isolated)
    _vectorised_equals_scalar(cross)


def test_bybit_long_below_1x_has_no_fee_to_close() -> None:
    # bankruptcy price entry x (1 - 1/0.5) < 0: the fee there is 0, never negative
    snap = _snapshot("bybit", 1_000.0, 0.001, entry_price=100.0, leverage=0.5, maintenance_margin_rate=0.01)
    assert pool_figures(snap, pools(snap)[0]).maintenance_margin == pytest.approx(1.0, rel=1e-12)


def test_other_venues_have_no_fee_to_close() -> None:
    # Binance USD-M FAQ: maintenance = notional x rate - amount, nothing else.
    snap = _snapshot("binanceusdm", 10_000.0, 0.0006, **BYBIT_USDC)
    assert pool_figures(snap, pools(snap)[0]).maintenance_margin == pytest.approx(255.0, rel=1e-12)


# --- Gate cross: the taker fee in the requirement -------------------------------------


def test_gate_cross_long_liquidates_at_49_233_86() -> None:
    # Gate blog "Gate Metal Contracts Liquidation Price Calculation" (gate.tv/blog/101350,
    # updated 2026-04-09), cross long: (entry - margin / multiplier / size) / [1 - (MMR +
    # taker fee)]. Long 1 BTC @ 50,000, wallet 1,000, MMR 0.4 %, fee 0.075 % (issue 12):
    # 49,000 / 0.99525.
    snap = _snapshot("gate", 1_000.0, 0.00075, entry_price=50_000.0, maintenance_margin_rate=0.004)
    liq = liquidation_price(snap, 0)
    assert liq == pytest.approx(49_000 / 0.99525, rel=1e-12)
    assert round(liq, 2) == 49_233.86
    assert _health(_at(snap, liq)) == pytest.approx(1.0, rel=1e-9)
    _vectorised_equals_scalar(snap)


def test_gate_cross_short_mirrors_it() -> None:
    # same page, short: (entry + margin / multiplier / size) / [1 + (MMR + taker fee)]
    snap = _snapshot("gate", 1_000.0, 0.00075, side="short", entry_price=50_000.0, maintenance_margin_rate=0.004)
    assert liquidation_price(snap, 0) == pytest.approx(51_000 / 1.00475, rel=1e-12)


# --- A flat rate with a maintenance amount never charges a negative margin ------------

# Binance USD-M FAQ "Leverage and Margin of USDⓈ-M Futures": maintenance = notional x rate -
# cum, where cum is the margin the lower brackets did not charge, so a bracket's amount
# applies only from the notional where rate x notional >= amount. Rate 0.01, amount 50:
# nothing below 5,000 (issue 12 item 4: we charged -49 on a notional of 100).
FLAT = {"entry_price": 100.0, "maintenance_margin_rate": 0.01, "maintenance_amount": 50.0}


def test_flat_rate_with_amount_charges_nothing_below_its_threshold() -> None:
    snap = _snapshot("binanceusdm", 10.0, None, symbol="LTC/USDT:USDT", **FLAT)
    figures = pool_figures(snap, pools(snap)[0])
    assert figures.maintenance_margin == 0.0  # was -49
    # health stays null with nothing required (docs/snapshot-format.md), but the position is
    # not riskless: it is liquidated where the equity reaches 0, 10 + (P - 100) = 0.
    assert figures.health is None
    assert liquidation_price(snap, 0) == pytest.approx(90.0, rel=1e-12)
    _vectorised_equals_scalar(snap)


def test_flat_rate_with_amount_liquidation_above_the_threshold() -> None:
    # a short that must rally past 5,000 of notional: 10,000 - (P - 100) = 0.01 P - 50
    snap = _snapshot("binanceusdm", 10_000.0, None, side="short", symbol="LTC/USDT:USDT", **FLAT)
    liq = liquidation_price(snap, 0)
    assert liq == pytest.approx(10_150 / 1.01, rel=1e-12)
    assert _health(_at(snap, liq)) == pytest.approx(1.0, rel=1e-9)
    assert _health(_at(snap, 6_000.0)) == pytest.approx((10_100 - 6_000) / (60 - 50), rel=1e-12)
    _vectorised_equals_scalar(snap)


def test_flat_rate_with_amount_no_longer_nulls_health_and_liquidation() -> None:
    # Bybit: the same table (its MM deduction), plus the fee to close, 100 x (1 - 1/10) x
    # 0.055 % = 0.0495 ("Maintenance Margin Calculation (USDC Contract)"). Before: MM =
    # 1 - 50 + 0.0495 < 0, health and liquidation price null.
    snap = _snapshot("bybit", 10.0, 0.00055, leverage=10, **FLAT)
    figures = pool_figures(snap, pools(snap)[0])
    assert figures.maintenance_margin == pytest.approx(0.0495, rel=1e-12)
    assert figures.health == pytest.approx(10 / 0.0495, rel=1e-12)
    liq = liquidation_price(snap, 0)
    assert liq == pytest.approx(90.0495, rel=1e-12)  # 10 + (P - 100) = 0.0495
    assert _health(_at(snap, liq)) == pytest.approx(1.0, rel=1e-9)
    _vectorised_equals_scalar(snap)


def test_flat_rate_with_amount_does_not_hide_the_rest_of_a_cross_pool() -> None:
    doc = {
        "exchange": "binanceusdm",
        "account": "a",
        "collateral": "USDT",
        "wallet_balance": 1_000.0,
        "positions": [
            {
                "symbol": "LTC/USDT:USDT",
                "side": "long",
                "contracts": 1,
                "contract_size": 1,
                "mark_price": 100.0,
                "margin_mode": "cross",
                **FLAT,
            },
            {
                "symbol": "BTC/USDT:USDT",
                "side": "long",
                "contracts": 0.1,
                "contract_size": 1,
                "entry_price": 50_000.0,
                "mark_price": 50_000.0,
                "margin_mode": "cross",
                "maintenance_margin_rate": 0.004,
            },
        ],
    }
    snap = parse_snapshot(doc)
    figures = pool_figures(snap, pools(snap)[0])
    assert figures.maintenance_margin == pytest.approx(20.0, rel=1e-12)  # BTC's 0.4 % of 5,000; LTC 0, not -49
    assert figures.health == pytest.approx(1_000 / 20, rel=1e-12)
    assert liquidation_price(snap, 0) is None  # 980 spare: 1 LTC cannot lose it at any price > 0
    # BTC: 1,000 + 0.1 (P - 50,000) = 0.0004 P
    assert liquidation_price(snap, 1) == pytest.approx(4_000 / 0.0996, rel=1e-12)
    _vectorised_equals_scalar(snap)


def test_flat_rate_amount_is_ignored_where_the_venue_has_none() -> None:
    # OKX tiers have no maintenance amount (margin/rules.py): notional x (rate + fee) only.
    snap = _snapshot("okx", 10.0, 0.0005, **FLAT)
    assert pool_figures(snap, pools(snap)[0]).maintenance_margin == pytest.approx(100 * 0.0105, rel=1e-12)
