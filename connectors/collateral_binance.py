"""Binance USD-M Multi-Assets mode -> the snapshot's multi-collateral fields.

Sources: Binance USD-M: `GET /fapi/v1/multiAssetsMargin` ({"multiAssetsMargin": true} in
Multi-Assets mode); `/fapi/v3/account` assets[] crossWalletBalance per asset,
totalMaintMargin and totalMarginBalance (USD in this mode: their ratio is Binance's
account margin ratio); prices and haircuts from `GET /fapi/v1/assetIndex` (`index`, and
`bidBuffer`, the haircut applied to a margin asset's value: BNB's 5 % in the Multi-Assets
FAQ). The flag is read only when the wallet holds an asset besides the collateral (the
collateral alone counts the same in both modes); without it then, an error names it.
Portfolio Margin: connectors.collateral_binance_pm.
"""

from __future__ import annotations

from typing import Any

from connectors.collateral import price_symbol
from connectors.collateral_fetch import needs_mode
from connectors.errors import DataError
from connectors.fields import mapping, optional, required, text


def binance_multi_assets(doc: dict[str, Any], data: Any) -> dict:
    """The multi-collateral fields of a Binance USD-M account in Multi-Assets mode ({} when
    it is not, or holds only its collateral)."""
    info = mapping(data.balance.get("info"), "balance.info")
    rows = info.get("assets")
    if not isinstance(rows, list):
        raise DataError("expected a list", "balance.info.assets")
    held = [
        (i, mapping(r, f"balance.info.assets[{i}]"))
        for i, r in enumerate(rows)
        if (optional(mapping(r, f"balance.info.assets[{i}]"), "walletBalance", f"balance.info.assets[{i}]") or 0.0)
        != 0.0
    ]
    flag = data.extras.get("binance_multi_assets")
    if flag is None:
        names = [str(row.get("asset")) for _, row in held]
        if needs_mode(names, doc["collateral"]):
            raise DataError(
                f"{', '.join(names)} in the futures wallet and the Multi-Assets mode was not read",
                "extras.binance_multi_assets",
            )
        return {}  # only the collateral asset: it counts the same in both modes
    multi = mapping(flag, "extras.binance_multi_assets").get("multiAssetsMargin")
    if multi not in (True, "true"):
        return {}
    index = _binance_index(data.extras.get("binance_asset_index"))
    assets = []
    for i, row in held:
        path = f"balance.info.assets[{i}]"
        name = text(row, "asset", path)
        if name not in index:
            raise DataError(f"no asset index for {name} (from /fapi/v1/assetIndex)", "extras.binance_asset_index")
        price, ratio = index[name]
        assets.append(
            {
                "asset": name,
                "amount": required(row, "crossWalletBalance", path),
                "price": price,
                "collateral_ratio": ratio,
                "price_symbol": price_symbol(name, data),
            }
        )
    if doc["collateral"] not in {a["asset"] for a in assets}:
        price, ratio = index.get(doc["collateral"], (1.0, 1.0))
        assets.append({"asset": doc["collateral"], "amount": 0.0, "price": price, "collateral_ratio": ratio})
    maint = optional(info, "totalMaintMargin", "balance.info")
    balance = optional(info, "totalMarginBalance", "balance.info")
    return {
        "account_mode": "multi_asset",
        "valuation_currency": "USD",
        "assets": assets,
        "exchange_native_ratio": maint / balance if maint is not None and balance else None,
    }


def _binance_index(payload: Any) -> dict[str, tuple[float, float]]:
    """asset -> (USD index price, 1 - bidBuffer) from /fapi/v1/assetIndex (symbols BTCUSD...)."""
    if payload is None:
        raise DataError(
            "a Multi-Assets account needs the asset index, which was not read", "extras.binance_asset_index"
        )
    if not isinstance(payload, list):
        raise DataError("expected a list", "extras.binance_asset_index")
    result = {}
    for i, raw in enumerate(payload):
        path = f"extras.binance_asset_index[{i}]"
        row = mapping(raw, path)
        symbol = text(row, "symbol", path)
        if symbol.endswith("USD"):
            result[symbol[:-3]] = (required(row, "index", path), 1.0 - required(row, "bidBuffer", path))
    return result
