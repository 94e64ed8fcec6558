"""Binance Portfolio Margin accounts (config `portfolio_margin: true`, read through ccxt's
`portfolioMargin` option) -> the snapshot's multi-collateral fields, `account_mode`
"portfolio".

Sources: Binance Portfolio Margin API: `GET /papi/v1/balance` (per asset
`totalWalletBalance`, `umUnrealizedPNL`), `GET /papi/v1/account` (`uniMMR`,
`accountEquity`, `accountMaintMargin`), `GET /sapi/v1/portfolio/asset-index-price`
(`asset` "BTCUSD", `assetIndexPrice`), `GET /sapi/v1/portfolio/collateralRate` (`asset`,
`collateralRate`). The engine's rule (uniMMR = adjusted equity / maintenance, liquidation
at 1.05) is in margin.collateral. Margin loans' own maintenance (loan x MMR) needs Binance's
margin tiers, which are not read: a negative balance counts in full value only.
"""

from __future__ import annotations

from typing import Any

from connectors.errors import DataError
from connectors.fields import mapping, optional, required, text

STABLE = {"USDT", "USDC", "FDUSD", "BUSD"}


def binance_portfolio(doc: dict[str, Any], data: Any) -> dict:
    rows = data.balance.get("info")
    if not isinstance(rows, list):
        raise DataError("expected the list /papi/v1/balance answers", "balance.info")
    prices = _table(data.extras.get("binance_pm_prices"), "binance_pm_prices", "assetIndexPrice", usd_suffix=True)
    rates = _table(data.extras.get("binance_pm_rates"), "binance_pm_rates", "collateralRate")
    account = data.extras.get("binance_pm_account")
    if account is None:
        raise DataError("the Portfolio Margin account (uniMMR) was not read", "extras.binance_pm_account")
    assets = []
    for i, raw in enumerate(rows):
        path = f"balance.info[{i}]"
        row = mapping(raw, path)
        amount = required(row, "totalWalletBalance", path)
        if amount == 0.0:
            continue
        name = text(row, "asset", path)
        if name not in prices:
            raise DataError(f"no index price for {name}", "extras.binance_pm_prices")
        if name not in rates:
            raise DataError(f"no collateral rate for {name}", "extras.binance_pm_rates")
        symbol = f"{name}/USDT:USDT"
        assets.append(
            {
                "asset": name,
                "amount": amount,
                "price": prices[name],
                "collateral_ratio": rates[name],
                "price_symbol": symbol if name not in STABLE and symbol in (data.markets or {}) else None,
            }
        )
    if doc["collateral"] not in {a["asset"] for a in assets}:
        assets.append(
            {
                "asset": doc["collateral"],
                "amount": 0.0,
                "price": prices.get(doc["collateral"], 1.0),
                "collateral_ratio": rates.get(doc["collateral"], 1.0),
            }
        )
    return {
        "account_mode": "portfolio",
        "valuation_currency": "USD",
        "assets": assets,
        "exchange_native_ratio": optional(mapping(account, "extras.binance_pm_account"), "uniMMR", "extras"),
    }


def _table(payload: Any, name: str, key: str, usd_suffix: bool = False) -> dict[str, float]:
    if payload is None:
        raise DataError(f"{name} was not read", f"extras.{name}")
    if not isinstance(payload, list):
        raise DataError("expected a list", f"extras.{name}")
    result = {}
    for i, raw in enumerate(payload):
        path = f"extras.{name}[{i}]"
        row = mapping(raw, path)
        asset = text(row, "asset", path)
        if usd_suffix:
            if not asset.endswith("USD"):
                continue
            asset = asset[:-3]
        result[asset] = required(row, key, path)
    return result
