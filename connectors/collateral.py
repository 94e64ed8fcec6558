"""Multi-collateral accounts: detect the account's mode from what ccxt returned, and build
the snapshot's `account_mode`, `assets` and `exchange_native_ratio` (docs/snapshot-format.md,
"Multi-collateral accounts"). Pure functions; the extra fetches live in
connectors.collateral_fetch.

A mode that cannot be read is a DataError naming the field: a multi-collateral account is
never silently treated as single-collateral. Sources, per venue:

- Bybit v5 `/v5/account/wallet-balance` (accountType UNIFIED): coin[] walletBalance,
  equity, usdValue, borrowAmount, marginCollateral and collateralSwitch (the coin counts as
  collateral only when both are true), accountMMRate; collateral value ratio bands from
  `/v5/spot-margin-trade/collateral` (collateralRatioList: minQty, maxQty "" = unbounded,
  collateralRatio). A unified account with one collateral coin and no loan is the
  single-asset case exactly (USDT counts at 100 %) and stays single_asset.
- Binance: connectors.collateral_binance (Multi-Assets) and
  connectors.collateral_binance_pm (Portfolio Margin).
- OKX v5 `/api/v5/account/config` acctLv: 1 simple, 2 single-currency margin,
  3 multi-currency margin, 4 portfolio margin (risk units: not modelled, refused by name);
  `/api/v5/account/balance` details[] eq, isoEq, eqUsd, upl and data[0].mgnRatio; discount
  tiers from `/api/v5/public/discount-rate-interest-free-quota` (discountInfo: minAmt,
  maxAmt in USD, discountRate). An account holding one currency counts the same at every
  level, so its level is not needed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from connectors.collateral_fetch import needs_mode
from connectors.errors import DataError
from connectors.fields import mapping, optional, required, text

STABLE = {"USDT", "USDC", "USD", "DAI", "FDUSD", "BUSD"}


def collateral_fields(venue: str, doc: dict[str, Any], data: Any, positions: Sequence[Mapping[str, Any]]) -> dict:
    """The multi-collateral fields for the snapshot document `doc` (empty for a
    single-asset account or a venue without such modes)."""
    if venue == "bybit":
        return _bybit(doc, data, positions)
    if venue == "okx":
        return _okx(doc, data, positions)
    if venue == "binanceusdm":
        if data.extras.get("binance_portfolio"):
            from connectors.collateral_binance_pm import binance_portfolio

            return binance_portfolio(doc, data)
        from connectors.collateral_binance import binance_multi_assets

        return binance_multi_assets(doc, data)
    return {}


def price_symbol(coin: str, data: Any) -> str | None:
    """The linear USDT market whose mark moves `coin` (None for a stablecoin or no market)."""
    symbol = f"{coin}/USDT:USDT"
    return symbol if coin not in STABLE and symbol in (data.markets or {}) else None


def _bybit(doc: dict[str, Any], data: Any, positions: Sequence[Mapping[str, Any]]) -> dict:
    info = mapping(data.balance.get("info"), "balance.info")
    accounts = mapping(info.get("result"), "balance.info.result").get("list")
    if not isinstance(accounts, list) or not accounts:
        raise DataError("expected a non-empty list", "balance.info.result.list")
    account = mapping(accounts[0], "balance.info.result.list[0]")
    if account.get("accountType") != "UNIFIED":
        return {}
    where = "balance.info.result.list[0]"
    coins = account.get("coin")
    if not isinstance(coins, list):
        raise DataError("expected a list", f"{where}.coin")
    held = []
    for i, raw in enumerate(coins):
        coin = mapping(raw, f"{where}.coin[{i}]")
        path = f"{where}.coin[{i}]"
        wallet = required(coin, "walletBalance", path)
        borrowed = optional(coin, "borrowAmount", path) or 0.0
        counts = coin.get("marginCollateral") is True and coin.get("collateralSwitch") is True
        if wallet == 0.0 and borrowed == 0.0:
            continue
        if not counts and wallet > 0:
            continue  # held but switched off as collateral: not in the margin balance
        held.append((coin, path, wallet, borrowed))
    names = [str(coin.get("coin")) for coin, *_ in held]
    if not needs_mode(names, doc["collateral"]) and not any(b for *_, b in held):
        return {}  # the collateral coin alone, no loan: the single-asset account exactly
    tiers = _bybit_tiers(data.extras.get("bybit_collateral"))
    assets = []
    isolated = doc_isolated_margin(doc)
    upl = _pnl_by_settle(positions, doc)
    for coin, path, _wallet, _borrowed in held:
        name = text(coin, "coin", path)
        equity = required(coin, "equity", path)
        usd = required(coin, "usdValue", path)
        price = usd / equity if equity else None
        if price is None or price <= 0:
            raise DataError(f"cannot price {name}: equity {equity:g}, usdValue {usd:g}", f"{path}.usdValue")
        if name not in tiers:
            raise DataError(
                f"no collateral value ratio for {name} (from /v5/spot-margin-trade/collateral)",
                "extras.bybit_collateral",
            )
        asset: dict[str, Any] = {
            "asset": name,
            # equity holds the PnL of every position in the coin: the snapshot's own
            # positions add theirs back as prices move; the rest (unfetched) stays as value
            "amount": equity - upl.get(name, 0.0) - (isolated if name == doc["collateral"] else 0.0),
            "price": price,
            "collateral_tiers": tiers[name],
            "price_symbol": price_symbol(name, data),
        }
        assets.append(asset)  # walletBalance is net of any loan: a negative one counts in full
    if doc["collateral"] not in {a["asset"] for a in assets}:
        assets.append({"asset": doc["collateral"], "amount": 0.0, "price": 1.0, "collateral_ratio": 1.0})
    return {
        "account_mode": "multi_asset",
        "valuation_currency": "USD",
        "assets": assets,
        "exchange_native_ratio": optional(account, "accountMMRate", where),
    }


def _pnl_by_settle(positions: Sequence[Mapping[str, Any]], doc: Mapping[str, Any]) -> dict[str, float]:
    """Unrealized PnL of the snapshot's positions (cross and isolated), by the coin they
    settle in: a coin's equity holds it, and the engine adds it back from the positions."""
    result: dict[str, float] = {}
    for raw, pos in zip(positions, doc["positions"], strict=True):
        settle = pos.get("settle") or str(raw.get("symbol", "")).partition(":")[2] or doc["collateral"]
        pnl = pos["contracts"] * pos["contract_size"] * (pos["mark_price"] - pos["entry_price"])
        result[settle] = result.get(settle, 0.0) + (pnl if pos["side"] == "long" else -pnl)
    return result


def doc_isolated_margin(doc: Mapping[str, Any]) -> float:
    return sum(p.get("isolated_margin") or 0.0 for p in doc["positions"] if p["margin_mode"] == "isolated")


def _bybit_tiers(payload: Any) -> dict[str, list[dict[str, Any]]]:
    if payload is None:
        raise DataError(
            "a unified account with several collateral coins needs the collateral value ratios, which were not read",
            "extras.bybit_collateral",
        )
    result = mapping(mapping(payload, "extras.bybit_collateral").get("result"), "extras.bybit_collateral.result")
    rows = result.get("list")
    if not isinstance(rows, list):
        raise DataError("expected a list", "extras.bybit_collateral.result.list")
    return _band_tables(
        rows,
        "extras.bybit_collateral.result.list",
        ("currency", "collateralRatioList"),
        {"min_amount": "minQty", "max_amount": "maxQty", "ratio": "collateralRatio"},
    )


def _okx(doc: dict[str, Any], data: Any, positions: Sequence[Mapping[str, Any]]) -> dict:
    config = data.extras.get("okx_config")
    if config is None:
        if not needs_mode(_okx_held(data), doc["collateral"]):
            return {}  # only the collateral currency: it counts the same at every level
        raise DataError("several currencies held and the account level (acctLv) was not read", "extras.okx_config")
    rows = mapping(config, "extras.okx_config").get("data")
    if not isinstance(rows, list) or not rows:
        raise DataError("expected a non-empty list", "extras.okx_config.data")
    level = str(mapping(rows[0], "extras.okx_config.data[0]").get("acctLv"))
    if level in ("1", "2"):
        return {}
    if level == "4":
        raise DataError("OKX portfolio margin (acctLv 4) is not modelled yet", "extras.okx_config.data[0].acctLv")
    if level != "3":
        raise DataError(f"unknown account level {level!r}", "extras.okx_config.data[0].acctLv")
    info = mapping(data.balance.get("info"), "balance.info")
    account = mapping((info.get("data") or [None])[0], "balance.info.data[0]")
    details = account.get("details")
    if not isinstance(details, list):
        raise DataError("expected a list", "balance.info.data[0].details")
    tiers = _okx_tiers(data.extras.get("okx_discount"))
    cross_upl: dict[str, float] = {}
    for i, p in enumerate(positions):
        pinfo = mapping(p.get("info"), f"positions[{i}].info")
        if pinfo.get("mgnMode") == "cross":
            ccy = str(pinfo.get("ccy") or doc["collateral"])
            cross_upl[ccy] = cross_upl.get(ccy, 0.0) + (optional(pinfo, "upl", f"positions[{i}].info") or 0.0)
    assets = []
    for i, raw in enumerate(details):
        path = f"balance.info.data[0].details[{i}]"
        detail = mapping(raw, path)
        name = text(detail, "ccy", path)
        eq = required(detail, "eq", path)
        if eq == 0.0:
            continue
        usd = required(detail, "eqUsd", path)
        if usd / eq <= 0:
            raise DataError(f"cannot price {name}: eq {eq:g}, eqUsd {usd:g}", f"{path}.eqUsd")
        if name not in tiers:
            raise DataError(f"no discount rate tiers for {name}", "extras.okx_discount")
        assets.append(
            {
                "asset": name,
                "amount": eq - (optional(detail, "isoEq", path) or 0.0) - cross_upl.get(name, 0.0),
                "price": usd / eq,
                "collateral_tiers": tiers[name],
                "price_symbol": price_symbol(name, data),
            }
        )
    if doc["collateral"] not in {a["asset"] for a in assets}:
        assets.append({"asset": doc["collateral"], "amount": 0.0, "price": 1.0, "collateral_ratio": 1.0})
    return {
        "account_mode": "multi_asset",
        "valuation_currency": "USD",
        "assets": assets,
        "exchange_native_ratio": optional(account, "mgnRatio", "balance.info.data[0]"),
    }


def _okx_held(data: Any) -> list[str]:
    info = mapping(data.balance.get("info"), "balance.info")
    rows = info.get("data")
    details = rows[0].get("details") if isinstance(rows, list) and rows and isinstance(rows[0], Mapping) else None
    if not isinstance(details, list):
        return []
    where = "balance.info.data[0].details"
    return [
        str(mapping(d, f"{where}[{i}]").get("ccy"))
        for i, d in enumerate(details)
        if (optional(mapping(d, f"{where}[{i}]"), "eq", f"{where}[{i}]") or 0.0) != 0.0
    ]


def _okx_tiers(payload: Any) -> dict[str, list[dict[str, Any]]]:
    if payload is None:
        raise DataError("a multi-currency account needs the discount rates, which were not read", "extras.okx_discount")
    rows = mapping(payload, "extras.okx_discount").get("data")
    if not isinstance(rows, list):
        raise DataError("expected a list", "extras.okx_discount.data")
    return _band_tables(
        rows,
        "extras.okx_discount.data",
        ("ccy", "discountInfo"),
        {"min_value": "minAmt", "max_value": "maxAmt", "ratio": "discountRate"},
    )


def _band_tables(
    rows: list[Any], where: str, keys: tuple[str, str], fields: Mapping[str, str]
) -> dict[str, list[dict[str, Any]]]:
    """Per currency, its haircut bands as the venue lists them: `keys` are the row's
    currency and band-list keys; `fields` our band field -> the venue's (a lower bound
    first, then an optional upper bound, then the ratio)."""
    currency_key, bands_key = keys
    (low, low_key), (high, high_key), (ratio, ratio_key) = fields.items()
    tiers: dict[str, list[dict[str, Any]]] = {}
    for i, raw in enumerate(rows):
        path = f"{where}[{i}]"
        row = mapping(raw, path)
        bands = row.get(bands_key)
        if not isinstance(bands, list) or not bands:
            raise DataError("expected a non-empty list", f"{path}.{bands_key}")
        tiers[text(row, currency_key, path)] = [
            {
                low: required(mapping(b, f"{path}.{bands_key}[{j}]"), low_key, path),
                high: optional(b, high_key, f"{path}.{bands_key}[{j}]"),
                ratio: required(b, ratio_key, f"{path}.{bands_key}[{j}]"),
            }
            for j, b in enumerate(bands)
        ]
    return tiers
