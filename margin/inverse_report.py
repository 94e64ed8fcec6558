"""Coin-margined reports in the valuation currency too: every money field of a risk report
(margin.report) of an inverse snapshot is in its coin; this adds the same amount in USD
(quote currency) at the mark, as `<field>_usd`, beside it.

The coin's price is the mark of the snapshot's first inverse position
(margin.inverse.valuation_price): a coin amount's USD value moves with that price, which is
what the stress test shows (each scenario's `equity_usd` at its shocked price).
"""

from __future__ import annotations

from typing import Any

from margin.inverse import quote_currency, valuation_price
from margin.snapshot import Snapshot

ACCOUNT_MONEY = ("wallet_balance", "equity", "maintenance_margin", "deficit", "topup_to_target")
POOL_MONEY = ("equity", "maintenance_margin")
POSITION_MONEY = ("notional", "unrealized_pnl", "maintenance_margin", "initial_margin", "equity", "topup_to_target")
REDUCTION_MONEY = ("reduce_notional", "fee", "slippage_cost")


def _usd(row: dict[str, Any], keys: tuple[str, ...], price: float) -> None:
    for key in keys:
        if key in row:
            value = row[key]
            row[f"{key}_usd"] = None if value is None else value * price


def add_usd_values(snapshot: Snapshot, report: dict[str, Any]) -> dict[str, Any]:
    """The report with `valuation_currency` and the `_usd` twins of its coin amounts (an
    inverse snapshot); a linear snapshot's report is returned as it is."""
    price = valuation_price(snapshot)
    if price is None:
        return report
    report["valuation_currency"] = quote_currency(snapshot)
    report["valuation_price"] = price
    _usd(report["account"], ACCOUNT_MONEY, price)
    for row in report["pools"]:
        _usd(row, POOL_MONEY, price)
    for row in report["positions"]:
        _usd(row, POSITION_MONEY, price)
    for row in report["deleverage"]:
        _usd(row, REDUCTION_MONEY, price)
    summary = report["deleverage_summary"]
    summary["total_cost_usd"] = summary["total_cost"] * price
    stress = report["stress"]
    for shock, scenario in zip(stress["shocks"], stress["scenarios"], strict=True):
        # the collateral is the coin: its USD value moves with the shocked price
        shocked = price * (1.0 + shock)
        scenario["valuation_price"] = shocked
        _usd(scenario["account"], POOL_MONEY, shocked)
        for row in scenario["pools"]:
            _usd(row, POOL_MONEY, shocked)
    return report
