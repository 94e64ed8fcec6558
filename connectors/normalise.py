"""ccxt's balance, positions, markets and tiers -> one snapshot document (docs/snapshot-format.md).

Pure functions over what a poll fetched; no I/O. ccxt fills some position fields itself
(collateral, margin ratio, even a liquidation price for isolated positions), so margin
numbers are read from each venue's raw `info` where the venue sends them, and computed by
the engine otherwise. Each venue's differences live in a thin subclass (connectors.venues);
this base class is also the generic path for any ccxt exchange with fetchPositions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from connectors.errors import DataError
from connectors.fields import mapping, optional, required, text
from margin.inverse import money_places
from margin.snapshot import SnapshotError, parse_snapshot


@dataclass(frozen=True)
class AccountData:
    """One poll's fetches, as ccxt returned them (each with its raw `info`)."""

    balance: Mapping[str, Any]
    positions: Sequence[Mapping[str, Any]]
    markets: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    tiers: Mapping[str, Sequence[Mapping[str, Any]]] = field(default_factory=dict)
    taker_fee: float | None = None
    timestamp: str | None = None
    # venue payloads beyond balance/positions/tiers, by name (connectors.collateral_fetch):
    # account mode and collateral ratios of multi-collateral accounts
    extras: Mapping[str, Any] = field(default_factory=dict)


class Normaliser:
    """The generic path: ccxt's unified fields only."""

    venue = "generic"

    def __init__(self, exchange_id: str | None = None) -> None:
        self.exchange_id = exchange_id or self.venue

    # --- the document ---------------------------------------------------------------

    def snapshot(self, account: str, collateral: str, data: AccountData) -> dict[str, Any]:
        """The snapshot document; DataError names the first field that does not fit."""
        if not isinstance(data.positions, Sequence) or isinstance(data.positions, str | bytes):
            raise DataError(f"expected a list, got {type(data.positions).__name__}", "positions")
        balance = mapping(data.balance, "balance")
        open_positions = []
        for i, raw in enumerate(data.positions):
            pos = mapping(raw, f"positions[{i}]")
            contracts = optional(pos, "contracts", f"positions[{i}]")
            if not contracts:  # ccxt lists flat positions on some venues; they hold nothing
                continue
            if self.other_coin(pos, collateral, data):
                # a coin-margined account has one wallet per coin: this account entry
                # watches the contracts settled in its collateral (docs/snapshot-format.md)
                continue
            open_positions.append((i, pos))
        positions = [self.position(pos, f"positions[{i}]", data) for i, pos in open_positions]
        doc = {
            "exchange": self.exchange_id,
            "account": account,
            "collateral": collateral,
            "taker_fee": data.taker_fee,
            "timestamp": data.timestamp,
            "positions": positions,
        }
        from connectors.collateral import collateral_fields  # issue 13: multi-collateral accounts

        multi = collateral_fields(self.venue, doc, data, [p for _, p in open_positions])
        # a multi-collateral account's money is in its assets; its wallet is not read
        doc["wallet_balance"] = 0.0 if multi else self.cross_wallet(balance, collateral, [p for _, p in open_positions])
        doc.update(multi)
        try:
            parse_snapshot(doc)
        except SnapshotError as exc:
            raise DataError(exc.message, f"snapshot.{exc.path}") from None
        return doc

    def position(self, pos: Mapping[str, Any], path: str, data: AccountData) -> dict[str, Any]:
        symbol = text(pos, "symbol", path)
        side = pos.get("side")
        if side not in ("long", "short"):
            raise DataError(f"expected 'long' or 'short', got {side!r}", f"{path}.side")
        contracts = required(pos, "contracts", path)
        if contracts <= 0:
            raise DataError(f"must be > 0, got {contracts!r}", f"{path}.contracts")
        market = data.markets.get(symbol, {})
        contract_size = (
            optional(market, "contractSize", f"markets.{symbol}") or optional(pos, "contractSize", path) or 1.0
        )
        mark = required(pos, "markPrice", path)
        if mark <= 0:
            raise DataError(f"must be > 0, got {mark!r}", f"{path}.markPrice")
        mode = self.margin_mode(pos, path)
        doc: dict[str, Any] = {
            "symbol": symbol,
            "side": side,
            "contracts": contracts,
            "contract_size": contract_size,
            "entry_price": required(pos, "entryPrice", path),
            "mark_price": mark,
            "margin_mode": mode,
            "isolated_margin": self.isolated_margin(pos, path) if mode == "isolated" else None,
            "leverage": optional(pos, "leverage", path) or None,
            "exchange_liquidation_price": self.exchange_liquidation_price(pos, path),
            "amount_step": _precision(market, "amount"),
            "info": pos.get("info"),
        }
        settle = inverse_settle(symbol, market)
        if settle is not None:
            # coin-margined: contract_size in USD (ccxt's contractSize), money in the coin
            doc["contract_type"] = "inverse"
            doc["settle"] = settle
        doc.update(self.maintenance(pos, path, contracts, contract_size * contracts, data))
        return doc

    def other_coin(self, pos: Mapping[str, Any], collateral: str, data: AccountData) -> bool:
        """A position another account entry watches: an inverse one settled in another coin
        than the collateral, or a linear one in an account whose collateral is a coin (OKX
        lists BTC-USD-SWAP beside BTC-USDT-SWAP; the coin's entry keeps the first)."""
        symbol = str(pos.get("symbol") or "")
        settle = inverse_settle(symbol, data.markets.get(symbol, {}))
        if settle is None:
            return money_places(collateral) > 2
        return settle != collateral

    # --- what differs per venue -------------------------------------------------------

    def cross_wallet(
        self, balance: Mapping[str, Any], collateral: str, positions: Sequence[Mapping[str, Any]]
    ) -> float:
        """Cross wallet balance: the collateral's total less what isolated positions hold."""
        currency = mapping(balance.get(collateral), f"balance.{collateral}")
        total = required(currency, "total", f"balance.{collateral}")
        isolated = sum(
            optional(p, "collateral", f"positions[{i}]") or 0.0
            for i, p in enumerate(positions)
            if p.get("marginMode") == "isolated"
        )
        return total - isolated

    def margin_mode(self, pos: Mapping[str, Any], path: str) -> str:
        mode = pos.get("marginMode")
        if mode not in ("cross", "isolated"):
            raise DataError(f"expected 'cross' or 'isolated', got {mode!r}", f"{path}.marginMode")
        return str(mode)

    def isolated_margin(self, pos: Mapping[str, Any], path: str) -> float:
        return required(pos, "collateral", path)

    def exchange_liquidation_price(self, pos: Mapping[str, Any], path: str) -> float | None:
        return optional(pos, "liquidationPrice", path) or None

    def maintenance(
        self, pos: Mapping[str, Any], path: str, contracts: float, size: float, data: AccountData
    ) -> dict[str, Any]:
        """Tiers (or a flat rate) for the position: the venue's tier table when fetched,
        else the maintenance rate the venue applied to this position."""
        symbol = str(pos["symbol"])
        if data.tiers.get(symbol):
            return {"tiers": notional_tiers(data.tiers[symbol], f"tiers.{symbol}")}
        rate = optional(pos, "maintenanceMarginPercentage", path)
        if rate is None:
            raise DataError(
                "no tier table and no maintenance rate for this market", f"{path}.maintenanceMarginPercentage"
            )
        return {"maintenance_margin_rate": rate, "maintenance_amount": 0.0}


def inverse_settle(symbol: str, market: Mapping[str, Any]) -> str | None:
    """The settlement coin of an inverse (coin-margined) contract, None for a linear one:
    ccxt's market `inverse` flag, or a unified symbol settled in its base
    (BTC/USD:BTC, BTC/USD:BTC-261225)."""
    base_quote, _, settle = symbol.partition(":")
    settle = settle.partition("-")[0]
    if market.get("inverse") is True:
        return str(market.get("settle") or settle or base_quote.partition("/")[0])
    if settle and settle == base_quote.partition("/")[0] and settle != base_quote.partition("/")[2]:
        return settle
    return None


def notional_tiers(
    tiers: Sequence[Mapping[str, Any]], path: str, amount_key: str | None = None
) -> list[dict[str, Any]]:
    """ccxt leverage tiers (bounds in quote notional; in the coin for coin-margined
    contracts, as Binance COIN-M's qtyFloor / qtyCap) -> snapshot tiers. The maintenance
    amount comes from the tier's raw `info` under `amount_key` when the venue sends it;
    otherwise the engine derives it from the table."""
    result = []
    for i, raw in enumerate(tiers):
        tier = mapping(raw, f"{path}[{i}]")
        where = f"{path}[{i}]"
        amount = None
        if amount_key is not None:
            amount = optional(mapping(tier.get("info") or {}, f"{where}.info"), amount_key, f"{where}.info")
        result.append(
            {
                "min_notional": optional(tier, "minNotional", where) or 0.0,
                "max_notional": optional(tier, "maxNotional", where),
                "maintenance_margin_rate": required(tier, "maintenanceMarginRate", where),
                "maintenance_amount": amount,
                "max_leverage": optional(tier, "maxLeverage", where) or None,
            }
        )
    return result


def _precision(market: Mapping[str, Any], key: str) -> float | None:
    precision = market.get("precision") or {}
    value = precision.get(key) if isinstance(precision, Mapping) else None
    try:
        step = float(value) if value is not None else None
    except (TypeError, ValueError):
        return None
    return step if step and step > 0 else None
