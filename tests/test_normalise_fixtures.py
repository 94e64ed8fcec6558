"""Real exchange responses recorded in ccxt's own tests (tests/fixtures/ccxt/) go through our
connectors' normalisation into valid snapshots, or a clear error naming the field."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from connectors.errors import DataError
from connectors.normalise import AccountData
from connectors.venues import normalise
from margin.report import risk_report
from margin.snapshot import parse_snapshot
from tests.helpers import FIXTURES


def _recorded(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / "ccxt" / f"{name}.json").read_text())


def _with_info(parsed: dict[str, Any], raw: dict[str, Any]) -> dict[str, Any]:
    """ccxt's parsed structure with its `info` (abbreviated in the fixture) restored."""
    return {**parsed, "info": raw}


def _binance_positions(entry: int = 0) -> list[dict[str, Any]]:
    case = _recorded("binance.fetchPositions")["methods"]["fetchPositions"][entry]
    return [_with_info(p, r) for p, r in zip(case["parsedResponse"], case["httpResponse"], strict=True)]


def _binance_balance() -> dict[str, Any]:
    case = _recorded("binance.fetchBalance")["methods"]["fetchBalance"][1]  # linear swap
    return _with_info(case["parsedResponse"], case["httpResponse"])


def _binance_tiers() -> dict[str, list[dict[str, Any]]]:
    brackets = _recorded("binance.fetchPositions")["options"]["leverageBrackets"]
    tiers = {}
    for symbol, rows in brackets.items():
        floors = [float(f) for f, _ in rows]
        tiers[symbol] = [
            {
                "minNotional": floor,
                "maxNotional": floors[i + 1] if i + 1 < len(floors) else None,
                "maintenanceMarginRate": float(rate),
                "maxLeverage": None,
                "info": {},
            }
            for i, (floor, (_, rate)) in enumerate(zip(floors, rows, strict=True))
        ]
    return tiers


def test_binance_recorded_position_and_balance() -> None:
    data = AccountData(balance=_binance_balance(), positions=_binance_positions(), tiers=_binance_tiers())
    doc = normalise("binanceusdm", "main", "USDT", data)
    snapshot = parse_snapshot(doc)
    assert snapshot.wallet_balance == 31.022612  # assets[USDT].crossWalletBalance
    (pos,) = snapshot.positions
    assert (pos.symbol, pos.side, pos.contracts, pos.margin_mode) == ("BTC/USDT:USDT", "long", 0.009, "cross")
    assert pos.mark_price == 67502.68519858 and pos.entry_price == 67445.9
    # the exchange's own liquidation price is carried from the raw payload, unchanged
    assert pos.exchange_liquidation_price == 64846.9875379
    assert [t.maintenance_margin_rate for t in pos.tiers][:3] == [0.004, 0.005, 0.01]
    assert pos.tiers[1].maintenance_amount == pytest.approx(50.0)  # derived cum
    assert doc["positions"][0]["info"]["positionSide"] == "BOTH"  # raw kept for audit
    report = risk_report(snapshot)
    # the recorded maintenance margin (maintMargin) is what our rules give at that mark
    assert report["positions"][0]["maintenance_margin"] == pytest.approx(2.43009666, rel=1e-6)


def test_binance_spot_balance_is_a_clear_error() -> None:
    spot = _recorded("binance.fetchBalance")["methods"]["fetchBalance"][0]
    data = AccountData(
        balance=_with_info(spot["parsedResponse"], spot["httpResponse"]),
        positions=_binance_positions(),
        tiers=_binance_tiers(),
    )
    with pytest.raises(DataError) as caught:
        normalise("binanceusdm", "main", "USDT", data)
    assert caught.value.path == "balance.info.assets"


# Bybit's collateral value ratio bands (GET /v5/spot-margin-trade/collateral, the shape of
# bybit-exchange docs "Get Tiered Collateral Ratio"); the ratios are ours, for the test.
_BYBIT_RATIOS = {"USDT": 1.0, "USDC": 1.0, "BTC": 0.95, "ETH": 0.95, "ADA": 0.8, "XRP": 0.8, "LTC": 0.8}


def _bybit_collateral() -> dict[str, Any]:
    rows = [
        {
            "currency": coin,
            "collateralRatioList": [
                {"minQty": "0", "maxQty": "1000000", "collateralRatio": str(ratio)},
                {"minQty": "1000000", "maxQty": "", "collateralRatio": "0"},
            ],
        }
        for coin, ratio in _BYBIT_RATIOS.items()
    ]
    return {"retCode": 0, "result": {"list": rows}}


def _bybit_recorded(extras: dict[str, Any]) -> AccountData:
    positions_case = _recorded("bybit.fetchPositions")["methods"]["fetchPositions"][0]
    raw = positions_case["httpResponse"]["result"]["list"][0]
    positions = [_with_info(positions_case["parsedResponse"][0], raw)]
    balance_case = _recorded("bybit.fetchBalance")["methods"]["fetchBalance"][0]
    balance = _with_info(balance_case["parsedResponse"], balance_case["httpResponse"])
    return AccountData(balance=balance, positions=positions, extras=extras)


def test_bybit_recorded_unified_account_with_seven_coins_is_multi_collateral() -> None:
    """The recorded unified account holds USDC, BTC, ETH, ADA, XRP, USDT and LTC: it is
    read as a multi_asset account (issue 13), each coin priced by usdValue / equity."""
    doc = normalise("bybit", "uta", "USDT", _bybit_recorded({"bybit_collateral": _bybit_collateral()}))
    snapshot = parse_snapshot(doc)
    assert snapshot.account_mode == "multi_asset"
    assert [a.asset for a in snapshot.assets] == ["USDC", "BTC", "ETH", "ADA", "XRP", "USDT", "LTC"]
    btc = snapshot.assets[1]
    assert btc.amount == pytest.approx(0.85581394)
    assert btc.price == pytest.approx(82669.24739887 / 0.85581394)
    assert snapshot.exchange_native_ratio == 0.0  # accountMMRate "0" as recorded
    (pos,) = snapshot.positions
    assert (pos.symbol, pos.side, pos.contracts, pos.margin_mode) == ("LTC/USDT:USDT", "long", 1.2, "cross")
    assert pos.exchange_liquidation_price is None  # Bybit sent liqPrice ""
    # no risk-limit table fetched: the rate Bybit applied (positionMM / positionValue)
    assert pos.tiers[0].maintenance_margin_rate == pytest.approx(0.81072399 / 77.519375)
    report = risk_report(snapshot)
    # equity: every coin's value at its ratio; the USDT coin's equity (wallet + PnL) is kept
    usdt = next(r for r in report["account"]["collateral"] if r["asset"] == "USDT")
    assert usdt["equity"] == pytest.approx(3304.29766609)
    expected = sum(_BYBIT_RATIOS[r["asset"]] * r["value"] for r in report["account"]["collateral"])
    assert report["account"]["equity"] == pytest.approx(expected)


def test_bybit_unified_account_without_collateral_ratios_is_a_named_error() -> None:
    """Never read several coins as one: without the ratio bands the poll fails, naming them."""
    with pytest.raises(DataError) as caught:
        normalise("bybit", "uta", "USDT", _bybit_recorded({}))
    assert caught.value.path == "extras.bybit_collateral"


def test_bybit_flat_position_is_skipped() -> None:
    case = _recorded("bybit.fetchPositions")["methods"]["fetchPosition"][0]
    flat = _with_info(case["parsedResponse"], case["httpResponse"]["result"]["list"][0])
    balance_case = _recorded("bybit.fetchBalance")["methods"]["fetchBalance"][0]
    balance = _with_info(balance_case["parsedResponse"], balance_case["httpResponse"])
    data = AccountData(balance=balance, positions=[flat], extras={"bybit_collateral": _bybit_collateral()})
    doc = normalise("bybit", "uta", "USDT", data)
    assert doc["positions"] == []


# GET /api/v5/account/config: acctLv 2 is single-currency margin (issue 13 reads the mode)
OKX_LEVEL_2 = {"okx_config": {"code": "0", "data": [{"acctLv": "2"}]}}


def _okx_position(entry: int) -> dict[str, Any]:
    case = _recorded("okx.fetchPosition")["methods"]["fetchPosition"][entry]
    return _with_info(case["parsedResponse"], case["httpResponse"]["data"][0])


# The recordings hold no OKX balance: this one is written here, in OKX's v5 shape.
OKX_BALANCE = {"info": {"code": "0", "data": [{"details": [{"ccy": "USDT", "eq": "100", "isoEq": "0"}]}]}}


def test_okx_recorded_linear_position() -> None:
    pos_doc = _okx_position(0)
    tiers = {
        "LTC/USDT:USDT": [
            {"minNotional": 0, "maxNotional": 5000, "maintenanceMarginRate": 0.0065, "maxLeverage": 50, "info": {}}
        ]
    }
    data = AccountData(balance=OKX_BALANCE, positions=[pos_doc], tiers=tiers, extras=OKX_LEVEL_2)
    doc = normalise("okx", "swap", "USDT", data)
    snapshot = parse_snapshot(doc)
    (pos,) = snapshot.positions
    assert (pos.symbol, pos.side, pos.contracts, pos.margin_mode) == ("LTC/USDT:USDT", "long", 2, "cross")
    assert pos.tiers[0].maintenance_margin_rate == 0.0065  # tier chosen by size in contracts
    assert snapshot.wallet_balance == pytest.approx(100 - 0.03731)  # eq - cross upl


def test_okx_recorded_coin_margined_position() -> None:
    """OKX's recorded BTC-USD-SWAP position (1 contract of 100 USD, isolated, 3x, margin
    0.00036114 BTC) normalised as an inverse position margined in BTC (issue 14); the engine
    finds OKX's own liqPx 69,536.61: margin + 100 x (1/92,300 - 1/P) = 100 / P x (mmr 0.4 %
    + taker fee 0.05 %), the OKX rule with the fee in the requirement, in the coin."""
    balance = {"info": {"code": "0", "data": [{"details": [{"ccy": "BTC", "eq": "0.5", "isoEq": "0.00036204"}]}]}}
    doc = normalise(
        "okx", "swap", "BTC", AccountData(balance=balance, positions=[_okx_position(2)], extras=OKX_LEVEL_2)
    )
    snapshot = parse_snapshot(doc)
    (pos,) = snapshot.positions
    assert (pos.symbol, pos.contract_type, pos.settle, pos.contracts, pos.contract_size) == (
        "BTC/USD:BTC",
        "inverse",
        "BTC",
        1,
        100,
    )
    assert pos.isolated_margin == pytest.approx(0.0003611412062116)
    assert snapshot.wallet_balance == pytest.approx(0.5 - 0.00036204)
    report = risk_report(snapshot)
    # ours is 69,536.5125: OKX's figure is exactly one tick (0.1) above it
    assert report["positions"][0]["liquidation_price"] == pytest.approx(69536.6125000014, abs=0.11)
    assert report["positions"][0]["disagrees_with_exchange"] is False


@pytest.mark.parametrize(
    ("field", "value", "path"),
    [
        ("markPrice", None, "positions[0].markPrice"),
        ("markPrice", "abc", "positions[0].markPrice"),
        ("contracts", -0.009, "positions[0].contracts"),
        ("side", None, "positions[0].side"),
        ("entryPrice", None, "positions[0].entryPrice"),
    ],
)
def test_broken_recorded_payload_names_the_field(field: str, value: Any, path: str) -> None:
    positions = copy.deepcopy(_binance_positions())
    positions[0][field] = value
    data = AccountData(balance=_binance_balance(), positions=positions, tiers=_binance_tiers())
    with pytest.raises(DataError) as caught:
        normalise("binanceusdm", "main", "USDT", data)
    assert caught.value.path == path


def test_binance_recorded_coinm_position() -> None:
    """Binance COIN-M's recorded positionRisk (ccxt's binance.fetchPositions, "inverse
    positions"): short 3 BTCUSD_PERP (100 USD each) at 68,911, mark 68,234.2, cross,
    liquidationPrice 72,491.17; the flat BCHUSD_241227 row is skipped. The recording holds
    no COIN-M balance: the cross wallet here is the one Binance's COIN-M formula gives for
    that price (what ccxt derives as the position's collateral, 0.00023156 BTC), so the
    engine on the normalised snapshot must land on Binance's price."""
    case = _recorded("binance.fetchPositions")["methods"]["fetchPositions"][3]
    (parsed,) = case["parsedResponse"]  # ccxt dropped the flat row
    flat = {"symbol": "BCH/USD:BCH-241227", "contracts": 0, "info": case["httpResponse"][1]}
    positions = [_with_info(parsed, case["httpResponse"][0]), flat]
    balance = {"info": {"assets": [{"asset": "BTC", "crossWalletBalance": "0.00023156"}]}}
    tiers = {"BTC/USD:BTC": [{"minNotional": 0, "maxNotional": 5, "maintenanceMarginRate": 0.004, "info": {"cum": 0}}]}
    doc = normalise("binancecoinm", "coinm", "BTC", AccountData(balance=balance, positions=positions, tiers=tiers))
    snapshot = parse_snapshot(doc)
    (pos,) = snapshot.positions
    assert (pos.symbol, pos.side, pos.contracts, pos.contract_size, pos.contract_type, pos.settle) == (
        "BTC/USD:BTC",
        "short",
        3,
        100,
        "inverse",
        "BTC",
    )
    assert pos.margin_mode == "cross" and pos.exchange_liquidation_price == pytest.approx(72491.16879818)
    report = risk_report(snapshot)
    (row,) = report["positions"]
    assert row["notional"] == pytest.approx(0.00439662, rel=1e-6)  # Binance's notionalValue, BTC
    assert row["unrealized_pnl"] == pytest.approx(0.00004318, rel=1e-3)  # unRealizedProfit, BTC
    assert row["liquidation_price"] == pytest.approx(72491.16879818, rel=1e-5)
    assert row["disagrees_with_exchange"] is False


@pytest.mark.parametrize(
    ("extras", "path", "words"),
    [
        ({}, "extras.okx_config", "acctLv"),
        ({"okx_config": {"data": [{"acctLv": "4"}]}}, "extras.okx_config.data[0].acctLv", "portfolio margin"),
        ({"okx_config": {"data": [{"acctLv": "9"}]}}, "extras.okx_config.data[0].acctLv", "unknown"),
        ({"okx_config": {"data": [{"acctLv": "3"}]}}, "extras.okx_discount", "discount rates"),
    ],
)
def test_okx_mode_that_cannot_be_read_is_a_named_error(extras: dict[str, Any], path: str, words: str) -> None:
    """Issue 13: with BTC held beside USDT the account level decides single- or
    multi-currency; never guessed."""
    balance = copy.deepcopy(OKX_BALANCE)
    balance["info"]["data"][0]["details"].append({"ccy": "BTC", "eq": "0.5", "eqUsd": "45000", "isoEq": "0"})
    with pytest.raises(DataError, match=words) as caught:
        normalise("okx", "swap", "USDT", AccountData(balance=balance, positions=[], extras=extras))
    assert caught.value.path == path


def test_okx_account_holding_only_its_collateral_needs_no_level() -> None:
    """USDT alone counts the same at every account level: no acctLv needed."""
    doc = normalise("okx", "swap", "USDT", AccountData(balance=OKX_BALANCE, positions=[]))
    assert parse_snapshot(doc).account_mode == "single_asset"
