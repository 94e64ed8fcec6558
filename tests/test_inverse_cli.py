"""`marginwatch risk` on a coin-margined snapshot (issue 14): money in the coin with its
currency, and its USD value beside it, in the table and in the JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers import run_cli

EXAMPLE = Path(__file__).parent.parent / "examples" / "coinm-snapshot.json"


def test_the_table_shows_coin_amounts_with_their_coin_and_usd() -> None:
    code, out, err = run_cli("risk", str(EXAMPLE))
    assert code == 0, err
    flat = " ".join(out.split())
    assert "BTC (" in flat and "USD)" in flat  # equity 2.706488 BTC (246,290.39 USD)
    assert "equity 2.706488 BTC" in flat
    assert "BTC/USD 261225" in flat  # the quarterly told from the perpetual
    assert "2.405494 BTC (197,009.94 USD)" in flat  # stress -10 %: the coin valued at the shocked price


def test_the_json_has_each_money_field_in_usd_too() -> None:
    code, out, err = run_cli("risk", str(EXAMPLE), "--format", "json")
    assert code == 0, err
    report = json.loads(out)
    assert report["collateral"] == "BTC" and report["valuation_currency"] == "USD"
    price = report["valuation_price"]
    account = report["account"]
    for key in ("wallet_balance", "equity", "maintenance_margin", "deficit", "topup_to_target"):
        assert account[f"{key}_usd"] == pytest.approx(account[key] * price)
    for p in report["positions"]:
        assert p["contract_type"] == "inverse" and p["settle"] == "BTC"
        assert p["notional"] == pytest.approx(p["size"] / p["mark_price"])
    # the stress test values the coin at each shocked price
    for shock, scenario in zip(report["stress"]["shocks"], report["stress"]["scenarios"], strict=True):
        assert scenario["account"]["equity_usd"] == pytest.approx(scenario["account"]["equity"] * price * (1 + shock))


def test_a_linear_report_is_unchanged() -> None:
    demo = Path(__file__).parent.parent / "examples" / "demo-snapshot.json"
    code, out, _ = run_cli("risk", str(demo), "--format", "json")
    assert code == 0
    report = json.loads(out)
    assert "valuation_currency" not in report and "equity_usd" not in report["account"]


def test_coin_money_is_shown_to_the_coins_precision_everywhere() -> None:
    """The dashboard and the alerts write a coin-margined account's money in its coin with
    six decimals (cents of a BTC are hundreds of dollars); dollars keep their cents."""
    from alerts.render.figures import about, money_up
    from alerts.render.figures import money as alert_money
    from app.components.fmt import money as dashboard_money

    assert dashboard_money(0.0208623, "BTC") == "0.020862 BTC"
    assert dashboard_money(12_345.678, "USDT") == "12,345.68 USDT"
    assert alert_money(2.7064881, "BTC") == "2.706488 BTC"
    assert money_up(0.0041231, "BTC") == "0.004124 BTC"  # enough: rounded up
    assert money_up(529.3, "USDT") == "530 USDT"
    assert about(0.5123456, "BTC") == "≈ 0.512346 BTC"


def test_dashboard_formats_follow_the_collateral() -> None:
    from app.components.fmt import amount_in, money_format

    assert money_format("USDT") == "%,.2f" and money_format("BTC") == "%,.6f"
    assert amount_in(0.5683, "BTC") == "0.568300" and amount_in(11934.9, "USDT") == "11,934.90"


def test_an_action_card_for_a_coin_account_is_priced_at_mark() -> None:
    """The dashboard's action card prices a cut on the stored book for linear accounts; a
    coin-margined one's cut is priced at mark in the coin (its book is not walked yet)."""
    from datetime import UTC, datetime

    from alerts.remedy import Cut
    from margin.snapshot import parse_snapshot
    from readmodels.actions import _cost
    from readmodels.risk import StoredBook

    snapshot = parse_snapshot(json.loads(EXAMPLE.read_text()))
    pos = snapshot.positions[1]
    notional = pos.size / 2 / pos.mark_price  # BTC
    cut = Cut(pos.symbol, pos.side, pos.contracts / 2, pos.size / 2, notional, pos.contract_size, None)
    book = {"bids": [[pos.mark_price * 0.999, pos.contracts]], "asks": [[pos.mark_price * 1.001, pos.contracts]]}
    now = datetime(2026, 12, 1, tzinfo=UTC)
    cost, high, basis, age = _cost(snapshot, (cut,), {pos.symbol: StoredBook(book, now)}, now)
    assert cost == pytest.approx(notional * 0.0005) and high is None and age is None
    assert basis.startswith("taker fee at mark")
