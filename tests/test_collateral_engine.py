"""The multi-collateral engine (issue 13): adjusted equity, the account's maintenance at the
venue's liquidation level, liquidation with the collateral moving, top-up in the right
asset, and the stress loss that comes from collateral.

Published worked examples are named by source (tests/fixtures/README.md, "Multi-collateral
worked examples"); the other cases show their arithmetic by hand."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from margin.collateral import account_figures, haircut_value
from margin.collateral_stress import loss_split
from margin.pools import pools
from margin.report import risk_report
from margin.snapshot import parse_snapshot

ROOT = Path(__file__).parent.parent
UTA = json.loads((ROOT / "examples" / "uta-snapshot.json").read_text())


def _account(exchange: str, mode: str, assets: list[dict], positions: list[dict], **extra: object) -> dict:
    return {
        "exchange": exchange,
        "account": "t",
        "account_mode": mode,
        "collateral": "USDT",
        "taker_fee": 0.0,
        "assets": assets,
        "positions": positions,
        **extra,
    }


def _long(contracts: float, entry: float, mark: float, rate: float = 0.005, side: str = "long") -> dict:
    return {
        "symbol": "BTC/USDT:USDT",
        "side": side,
        "contracts": contracts,
        "contract_size": 1.0,
        "entry_price": entry,
        "mark_price": mark,
        "margin_mode": "cross",
        "maintenance_margin_rate": rate,
    }


def test_binance_multi_assets_faq_haircuts() -> None:
    """Binance, "What Is Multi-Assets Mode and What Assets Does It Support": "BNB with a
    market value of $1,000 will be valued at $950 and ADA with a market value of $1,000 will
    be valued at $900"."""
    doc = _account(
        "binanceusdm",
        "multi_asset",
        [
            {"asset": "BNB", "amount": 2.5, "price": 400.0, "collateral_ratio": 0.95},
            {"asset": "ADA", "amount": 2000.0, "price": 0.5, "collateral_ratio": 0.90},
            {"asset": "USDT", "amount": 0.0, "price": 1.0, "collateral_ratio": 0.9999},
        ],
        [],
    )
    report = risk_report(parse_snapshot(doc))
    table = {row["asset"]: row for row in report["account"]["collateral"]}
    assert table["BNB"]["value"] == pytest.approx(1000.0)
    assert table["BNB"]["adjusted_value"] == pytest.approx(950.0)
    assert table["ADA"]["adjusted_value"] == pytest.approx(900.0)
    assert report["account"]["equity"] == pytest.approx(1850.0)


def test_bybit_uta_bands_by_quantity_and_debts_at_full_value() -> None:
    """The example account: USDT 20,000 + PnL 2 x (60,000 - 62,000) = 16,000 at 100 %;
    BTC 1.5 at 60,000: 1 x 60,000 x 0.95 + 0.5 x 60,000 x 0.90 = 84,000; USDC -2,000 at full
    value. Equity 98,000. Maintenance 2 x 60,000 x 0.5 % = 600 + fee to close
    2 x 62,000 x (1 - 1/10) x 0.055 % = 61.38, + loan 2,000 x 1 % = 20: 681.38."""
    report = risk_report(parse_snapshot(UTA))
    account = report["account"]
    assert account["equity"] == pytest.approx(98000.0)
    assert account["maintenance_margin"] == pytest.approx(681.38)
    assert account["native_ratio"]["name"] == "accountMMRate"
    assert account["native_ratio"]["value"] == pytest.approx(681.38 / 98000.0)
    btc = account["collateral"][1]
    assert btc["ratio"] == pytest.approx(84000.0 / 90000.0)


def test_bands_in_value_apply_band_by_band() -> None:
    """OKX-style discount tiers in USD value: 150,000 of ETH with 0-100k at 1.0, 100k-200k at
    0.95: 100,000 + 50,000 x 0.95 = 147,500."""
    asset = parse_snapshot(
        _account(
            "okx",
            "multi_asset",
            [
                {
                    "asset": "ETH",
                    "amount": 50.0,
                    "price": 3000.0,
                    "collateral_tiers": [
                        {"min_value": 0, "max_value": 100000, "ratio": 1.0},
                        {"min_value": 100000, "max_value": 200000, "ratio": 0.95},
                        {"min_value": 200000, "ratio": 0.5},
                    ],
                }
            ],
            [],
        )
    ).assets[0]
    assert haircut_value(asset, 50.0, 3000.0) == pytest.approx(147500.0)
    assert haircut_value(asset, -1.0, 3000.0) == pytest.approx(-3000.0)


def test_binance_portfolio_margin_liquidates_at_uni_mmr_1_05() -> None:
    """uniMMR = adjusted equity / maintenance. USDT 10,000, 1 BTC long @ 60,000, mark 60,000,
    MMR 0.5 %: maintenance 300, uniMMR 33.33; the requirement we report is 1.05 x 300 = 315,
    so health = uniMMR / 1.05. At the liquidation price P (no collateral moves):
    10,000 + (P - 60,000) = 1.05 x 0.005 x P -> P = 50,000 / 0.99475 = 50,263.88."""
    doc = _account(
        "binanceusdm",
        "portfolio",
        [{"asset": "USDT", "amount": 10000.0, "price": 1.0, "collateral_ratio": 1.0}],
        [_long(1.0, 60000.0, 60000.0)],
    )
    report = risk_report(parse_snapshot(doc))
    account = report["account"]
    assert account["native_ratio"]["name"] == "uniMMR"
    assert account["native_ratio"]["value"] == pytest.approx(10000.0 / 300.0)
    assert account["maintenance_margin"] == pytest.approx(315.0)
    assert account["health"] == pytest.approx(10000.0 / 315.0)
    assert report["positions"][0]["liquidation_price"] == pytest.approx(50000.0 / 0.99475, rel=1e-9)


def _health_at(doc: dict, price: float) -> float:
    """Health with BTC (the position and any BTC collateral) moved to `price`."""
    moved = copy.deepcopy(doc)
    mark = moved["positions"][0]["mark_price"]
    for p in moved["positions"]:
        p["mark_price"] = price
    for a in moved["assets"]:
        if a.get("price_symbol") == "BTC/USDT:USDT":
            a["price"] *= price / mark
    return risk_report(parse_snapshot(moved))["account"]["health"]


@pytest.mark.parametrize("side", ["long", "short"])
def test_collateral_in_the_same_coin_moves_the_liquidation_price(side: str) -> None:
    """Two accounts with the same 50,000 of collateral at 100 %: one in USDT, one in BTC.
    A long backed by BTC liquidates sooner (wrong-way risk); a short backed by BTC later.
    Each liquidation price gives health 1 when everything is moved there."""
    position = [_long(2.0, 50000.0, 50000.0, side=side)]
    usdt = _account(
        "bybit", "multi_asset", [{"asset": "USDT", "amount": 50000.0, "price": 1.0, "collateral_ratio": 1}], position
    )
    btc = _account(
        "bybit",
        "multi_asset",
        [
            {"asset": "USDT", "amount": 0.0, "price": 1.0, "collateral_ratio": 1},
            {"asset": "BTC", "amount": 1.0, "price": 50000.0, "collateral_ratio": 1, "price_symbol": "BTC/USDT:USDT"},
        ],
        position,
    )
    plain = risk_report(parse_snapshot(usdt))["positions"][0]
    wrong_way = risk_report(parse_snapshot(btc))["positions"][0]
    # by hand, long backed by USDT: 50,000 + 2 (P - 50,000) = 0.01 P -> P = 50,000 / 1.99
    if side == "long":
        assert plain["liquidation_price"] == pytest.approx(50000.0 / 1.99)
        # backed by BTC: P/50,000 x 50,000 + 2 (P - 50,000) = 0.01 P -> P = 100,000 / 2.99
        assert wrong_way["liquidation_price"] == pytest.approx(100000.0 / 2.99)
        assert wrong_way["liquidation_price"] > plain["liquidation_price"]
    else:
        # short, USDT: 50,000 - 2 (P - 50,000) = 0.01 P -> P = 150,000 / 2.01
        assert plain["liquidation_price"] == pytest.approx(150000.0 / 2.01)
        # short, BTC: P - 2 (P - 50,000) = 0.01 P -> P = 100,000 / 1.01 (the BTC rises with it)
        assert wrong_way["liquidation_price"] == pytest.approx(100000.0 / 1.01)
        assert wrong_way["liquidation_price"] > plain["liquidation_price"]
    for doc, row in ((usdt, plain), (btc, wrong_way)):
        assert _health_at(doc, row["liquidation_price"]) == pytest.approx(1.0, rel=1e-9)


def test_a_tiered_collateral_crossing_a_band_edge_is_solved_exactly() -> None:
    """Value bands on moving BTC: the liquidation price still gives health 1."""
    doc = _account(
        "okx",
        "multi_asset",
        [
            {"asset": "USDT", "amount": 1000.0, "price": 1.0, "collateral_ratio": 1},
            {
                "asset": "BTC",
                "amount": 2.0,
                "price": 50000.0,
                "price_symbol": "BTC/USDT:USDT",
                "collateral_tiers": [
                    {"min_value": 0, "max_value": 60000, "ratio": 0.98},
                    {"min_value": 60000, "ratio": 0.8},
                ],
            },
        ],
        [_long(3.0, 50000.0, 50000.0, rate=0.01)],
    )
    row = risk_report(parse_snapshot(doc))["positions"][0]
    assert row["liquidation_price"] is not None and row["liquidation_price"] < 50000.0
    assert _health_at(doc, row["liquidation_price"]) == pytest.approx(1.0, rel=1e-9)


def test_topup_names_the_asset_with_the_best_ratio_and_reaches_the_target() -> None:
    """Adding `topup_amount` of `topup_asset` gives the target health (the BTC is in its
    90 % band, USDC at 100 %: USDC it is)."""
    doc = _account(
        "bybit",
        "multi_asset",
        [
            {"asset": "BTC", "amount": 0.2, "price": 60000.0, "collateral_ratio": 0.9, "price_symbol": "BTC/USDT:USDT"},
            {"asset": "USDC", "amount": 100.0, "price": 1.0, "collateral_ratio": 1.0},
            {"asset": "USDT", "amount": 0.0, "price": 1.0, "collateral_ratio": 0.99},
        ],
        [_long(1.0, 61000.0, 60000.0, rate=0.05)],
    )
    report = risk_report(parse_snapshot(doc), target_health=5.0)
    account = report["account"]
    assert account["topup_asset"] == "USDC"
    topped = copy.deepcopy(doc)
    topped["assets"][1]["amount"] += account["topup_amount"]
    assert risk_report(parse_snapshot(topped))["account"]["health"] == pytest.approx(5.0)


def test_topup_across_bands_counts_each_band_at_its_ratio() -> None:
    """Only BTC can be added: 1.5 BTC sits in the 90 % band up to 2, then 50 %. To add
    60,000 of value at 50,000/BTC: 0.5 BTC x 45,000 = 22,500, then 37,500 / 25,000 = 1.5 BTC
    more: 2.0 BTC."""
    doc = _account(
        "bybit",
        "multi_asset",
        [
            {
                "asset": "BTC",
                "amount": 1.5,
                "price": 50000.0,
                "collateral_tiers": [{"min_amount": 0, "max_amount": 2, "ratio": 0.9}, {"min_amount": 2, "ratio": 0.5}],
            },
            {"asset": "USDT", "amount": 0.0, "price": 1.0, "collateral_ratio": 0.0},
        ],
        [],
    )
    from margin.collateral import best_topup

    snap = parse_snapshot(doc)
    assert best_topup(snap, pools(snap)[0], 60000.0) == ("BTC", pytest.approx(2.0))


def test_stress_moves_the_collateral_and_says_how_much_of_the_loss_it_is() -> None:
    """-30 % on the example account: BTC at 42,000 is worth 1 x 42,000 x 0.95 +
    0.5 x 42,000 x 0.9 = 58,800 instead of 84,000: a collateral loss of 25,200; the long
    loses 2 x 18,000 = 36,000. Equity 98,000 - 61,200 = 36,800."""
    snap = parse_snapshot(UTA)
    split = loss_split(snap, -0.3)
    assert split.collateral == pytest.approx(25200.0)
    assert split.positions == pytest.approx(36000.0)
    assert split.wrong_way_share == pytest.approx(25200.0 / 61200.0)
    scenario = next(s for s in risk_report(snap)["stress"]["scenarios"] if s["shock"] == -0.3)
    assert scenario["account"]["equity"] == pytest.approx(36800.0)
    assert scenario["account"]["collateral_loss"] == pytest.approx(25200.0)
    assert scenario["account"]["wrong_way_share"] == pytest.approx(25200.0 / 61200.0)
    shocks = risk_report(snap)["stress"]["liquidating_shocks"][0]
    nearest = risk_report(snap)["account"]["nearest"]
    assert shocks["down"] == pytest.approx(nearest["price"] / 60000.0 - 1.0, rel=1e-9)


def test_the_venue_ratio_is_put_beside_ours_and_a_gap_over_half_a_percent_is_flagged() -> None:
    doc = copy.deepcopy(UTA)
    ours = 681.38 / 98000.0
    doc["exchange_native_ratio"] = ours * 1.004
    assert not risk_report(parse_snapshot(doc))["account"]["native_ratio"]["disagrees_with_exchange"]
    doc["exchange_native_ratio"] = ours * 1.006
    ratio = risk_report(parse_snapshot(doc))["account"]["native_ratio"]
    assert ratio["disagrees_with_exchange"] and ratio["exchange_value"] == pytest.approx(ours * 1.006)


def test_open_order_loss_and_loans_count_against_equity() -> None:
    """USDT 10,000; ETH 10 @ 3,000 at 80 % with 2 ETH borrowed beside it (maintenance 5 %):
    10,000 + 24,000 - 6,000 - open-order loss 500 = 27,500; loan maintenance 300."""
    doc = _account(
        "bybit",
        "multi_asset",
        [
            {"asset": "USDT", "amount": 10000.0, "price": 1.0, "collateral_ratio": 1.0},
            {
                "asset": "ETH",
                "amount": 10.0,
                "price": 3000.0,
                "collateral_ratio": 0.8,
                "borrowed": 2.0,
                "borrow_maintenance_rate": 0.05,
            },
        ],
        [],
        open_order_loss=500.0,
    )
    snap = parse_snapshot(doc)
    figures = account_figures(snap, pools(snap)[0])
    assert figures.equity == pytest.approx(27500.0)
    assert figures.borrow_maintenance == pytest.approx(300.0)


def test_the_poller_rows_carry_the_multi_collateral_figures() -> None:
    """The poller's vectorised rows take a multi-collateral account's cross figures and
    liquidation prices from margin.collateral: the same numbers as the report."""
    from datetime import UTC, datetime

    from poller.rows import Polled, account_rows

    snap = parse_snapshot(UTA)
    report = risk_report(snap)
    account, positions = account_rows([Polled(snap, datetime.now(UTC), 1.5)])[0]
    assert account["equity"] == pytest.approx(report["account"]["equity"])
    assert account["maintenance_margin"] == pytest.approx(report["account"]["maintenance_margin"])
    assert account["health"] == pytest.approx(report["account"]["health"])
    assert positions[0]["liquidation_price"] == pytest.approx(report["positions"][0]["liquidation_price"])


def test_a_position_settling_in_usdc_is_valued_at_the_usdc_price() -> None:
    """USDC at 0.998 with a USDC-settled long: PnL 1 x (61,000 - 60,000) = 1,000 USDC joins
    the USDC balance (5,000 + 1,000 = 6,000 USDC x 0.998 = 5,988); maintenance
    61,000 x 1 % = 610 USDC = 608.78 USD."""
    doc = _account(
        "binanceusdm",
        "multi_asset",
        [
            {"asset": "USDT", "amount": 0.0, "price": 1.0, "collateral_ratio": 1},
            {"asset": "USDC", "amount": 5000.0, "price": 0.998, "collateral_ratio": 1},
        ],
        [{**_long(1.0, 60000.0, 61000.0, rate=0.01), "symbol": "BTC/USDC:USDC", "settle": "USDC"}],
    )
    account = risk_report(parse_snapshot(doc))["account"]
    assert account["equity"] == pytest.approx(5988.0)
    assert account["maintenance_margin"] == pytest.approx(610 * 0.998)


def test_the_cross_account_btc_shock_moves_the_collateral_too() -> None:
    """margin.correlation: at BTC -30 % (beta 1) the example account is worth 36,800 as in
    the uniform stress; an account with BTC collateral and only an ETH position (beta 0)
    still loses its BTC collateral's value: 1 BTC x 60,000 x 0.9 x 30 % = 16,200."""
    from margin.correlation import correlated_stress

    eth_only = _account(
        "bybit",
        "multi_asset",
        [
            {"asset": "USDT", "amount": 1000.0, "price": 1.0, "collateral_ratio": 1},
            {"asset": "BTC", "amount": 1.0, "price": 60000.0, "price_symbol": "BTC/USDT:USDT", "collateral_ratio": 0.9},
        ],
        [{**_long(10.0, 3000.0, 3000.0, rate=0.01), "symbol": "ETH/USDT:USDT"}],
    )
    snaps = [parse_snapshot(UTA), parse_snapshot(eth_only)]
    stress = correlated_stress(snaps, {"BTC/USDT:USDT": 1.0, "ETH/USDT:USDT": 0.0}, shocks=(-0.3,))
    (scenario,) = stress.scenarios
    assert scenario.account_health[0] == pytest.approx(36800.0 / 501.38)
    # 1,000 + 0.7 x 60,000 x 0.9 = 38,800 over 10 x 3,000 x 1 % = 300
    assert scenario.account_health[1] == pytest.approx(38800.0 / 300.0)
