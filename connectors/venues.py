"""Per-venue differences: capability flags as data, and thin normaliser subclasses where a
venue's payload differs from ccxt's unified fields.

Field sources (each venue's REST v5/v3 documentation, as ccxt 4.5 returns them in `info`):
- Binance USD-M `/fapi/v3/account` assets[].crossWalletBalance; `/fapi/v3/positionRisk`
  isolatedWallet, liquidationPrice; leverage brackets' `cum` (maintenance amount).
  Binance COIN-M the same from `/dapi/v1/account`, `/dapi/v1/positionRisk` and
  `/dapi/v2/leverageBracket` (qtyFloor / qtyCap and cum in the coin).
- Bybit v5 unified `/v5/account/wallet-balance` coin[].walletBalance (includes isolated
  position margin); `/v5/position/list` tradeMode (0 cross, 1 isolated), positionBalance,
  liqPrice; `/v5/market/risk-limit` mmDeduction.
- OKX v5 `/api/v5/account/balance` details[].eq and isoEq; `/api/v5/account/positions`
  mgnMode, margin, liqPx, upl; position tiers are bounded in contracts, so the tier is
  chosen by the position's size and given to the engine as a flat rate.
- Hyperliquid clearinghouseState crossMarginSummary.accountValue (includes unrealized
  PnL); positions' liquidationPx and marginUsed; maintenance rate from the market's max
  leverage (1 / (2 x max leverage)). Reads are unsigned info requests naming the wallet
  address: a Hyperliquid account is watched with the address alone, and a private key is
  refused (marginwatch never signs, and ccxt given one signs actions when it loads markets).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from connectors.errors import DataError
from connectors.fields import mapping, optional, required
from connectors.normalise import AccountData, Normaliser, notional_tiers
from margin.inverse import money_places


def _info(pos: Mapping[str, Any], path: str) -> Mapping[str, Any]:
    return mapping(pos.get("info"), f"{path}.info")


def _find(items: Any, key: str, value: str, path: str) -> Mapping[str, Any]:
    if not isinstance(items, list):
        raise DataError("expected a list", path)
    for item in items:
        if isinstance(item, Mapping) and item.get(key) == value:
            return item
    raise DataError(f"no entry with {key} = {value!r}", path)


class BinanceNormaliser(Normaliser):
    venue = "binanceusdm"

    def cross_wallet(
        self, balance: Mapping[str, Any], collateral: str, positions: Sequence[Mapping[str, Any]]
    ) -> float:
        info = mapping(balance.get("info"), "balance.info")
        asset = _find(info.get("assets"), "asset", collateral, "balance.info.assets")
        return required(asset, "crossWalletBalance", f"balance.info.assets[{collateral}]")

    def margin_mode(self, pos: Mapping[str, Any], path: str) -> str:
        if pos.get("marginMode") in ("cross", "isolated"):
            return str(pos["marginMode"])
        # positionRisk v3 carries no margin type: a position with an isolated wallet is isolated
        wallet = optional(_info(pos, path), "isolatedWallet", f"{path}.info") or 0.0
        return "isolated" if wallet > 0 else "cross"

    def isolated_margin(self, pos: Mapping[str, Any], path: str) -> float:
        return required(_info(pos, path), "isolatedWallet", f"{path}.info")

    def exchange_liquidation_price(self, pos: Mapping[str, Any], path: str) -> float | None:
        return optional(_info(pos, path), "liquidationPrice", f"{path}.info") or None

    def maintenance(
        self, pos: Mapping[str, Any], path: str, contracts: float, size: float, data: AccountData
    ) -> dict[str, Any]:
        symbol = str(pos["symbol"])
        if data.tiers.get(symbol):
            return {"tiers": notional_tiers(data.tiers[symbol], f"tiers.{symbol}", amount_key="cum")}
        return super().maintenance(pos, path, contracts, size, data)


class BinanceCoinmNormaliser(BinanceNormaliser):
    """Binance COIN-M (`/dapi`): the same payload shapes as USD-M, money in the coin;
    brackets bounded in the coin (qtyFloor / qtyCap) with their `cum` in the coin."""

    venue = "binancecoinm"


class BybitNormaliser(Normaliser):
    venue = "bybit"

    def cross_wallet(
        self, balance: Mapping[str, Any], collateral: str, positions: Sequence[Mapping[str, Any]]
    ) -> float:
        info = mapping(balance.get("info"), "balance.info")
        accounts = mapping(info.get("result"), "balance.info.result").get("list")
        if not isinstance(accounts, list) or not accounts:
            raise DataError("expected a non-empty list", "balance.info.result.list")
        account = mapping(accounts[0], "balance.info.result.list[0]")
        coin = _find(account.get("coin"), "coin", collateral, "balance.info.result.list[0].coin")
        wallet = required(coin, "walletBalance", f"balance.info.result.list[0].coin[{collateral}]")
        isolated = sum(
            required(_info(p, f"positions[{i}]"), "positionBalance", f"positions[{i}].info")
            for i, p in enumerate(positions)
            if self.margin_mode(p, f"positions[{i}]") == "isolated"
        )
        return wallet - isolated

    def margin_mode(self, pos: Mapping[str, Any], path: str) -> str:
        trade_mode = _info(pos, path).get("tradeMode")
        if str(trade_mode) not in ("0", "1"):
            raise DataError(f"expected 0 (cross) or 1 (isolated), got {trade_mode!r}", f"{path}.info.tradeMode")
        return "isolated" if str(trade_mode) == "1" else "cross"

    def isolated_margin(self, pos: Mapping[str, Any], path: str) -> float:
        return required(_info(pos, path), "positionBalance", f"{path}.info")

    def exchange_liquidation_price(self, pos: Mapping[str, Any], path: str) -> float | None:
        return optional(_info(pos, path), "liqPrice", f"{path}.info") or None

    def maintenance(
        self, pos: Mapping[str, Any], path: str, contracts: float, size: float, data: AccountData
    ) -> dict[str, Any]:
        symbol = str(pos["symbol"])
        if data.tiers.get(symbol):
            tiers = notional_tiers(data.tiers[symbol], f"tiers.{symbol}", amount_key="mmDeduction")
            return {"tiers": tiers}
        return super().maintenance(pos, path, contracts, size, data)


class OkxNormaliser(Normaliser):
    venue = "okx"

    def cross_wallet(
        self, balance: Mapping[str, Any], collateral: str, positions: Sequence[Mapping[str, Any]]
    ) -> float:
        info = mapping(balance.get("info"), "balance.info")
        data = info.get("data")
        if not isinstance(data, list) or not data:
            raise DataError("expected a non-empty list", "balance.info.data")
        details = mapping(data[0], "balance.info.data[0]").get("details")
        detail = _find(details, "ccy", collateral, "balance.info.data[0].details")
        where = f"balance.info.data[0].details[{collateral}]"
        cross_upl = sum(
            optional(_info(p, f"positions[{i}]"), "upl", f"positions[{i}].info") or 0.0
            for i, p in enumerate(positions)
            if self.margin_mode(p, f"positions[{i}]") == "cross"
        )
        # eq = cross wallet + cross PnL + isolated equity
        return required(detail, "eq", where) - (optional(detail, "isoEq", where) or 0.0) - cross_upl

    def margin_mode(self, pos: Mapping[str, Any], path: str) -> str:
        mode = _info(pos, path).get("mgnMode")
        if mode not in ("cross", "isolated"):
            raise DataError(f"expected 'cross' or 'isolated', got {mode!r}", f"{path}.info.mgnMode")
        return str(mode)

    def isolated_margin(self, pos: Mapping[str, Any], path: str) -> float:
        return required(_info(pos, path), "margin", f"{path}.info")

    def exchange_liquidation_price(self, pos: Mapping[str, Any], path: str) -> float | None:
        return optional(_info(pos, path), "liqPx", f"{path}.info") or None

    def maintenance(
        self, pos: Mapping[str, Any], path: str, contracts: float, size: float, data: AccountData
    ) -> dict[str, Any]:
        symbol = str(pos["symbol"])
        tiers = data.tiers.get(symbol)
        if not tiers:
            return super().maintenance(pos, path, contracts, size, data)
        # OKX bounds tiers by position size in contracts (ccxt calls them minNotional /
        # maxNotional); the first tier whose ceiling holds the size applies.
        ordered = sorted(enumerate(tiers), key=lambda t: optional(t[1], "minNotional", "") or 0.0)
        for i, tier in ordered:
            where = f"tiers.{symbol}[{i}]"
            ceiling = optional(tier, "maxNotional", where)
            if ceiling is None or contracts <= ceiling:
                rate = required(tier, "maintenanceMarginRate", where)
                return {"maintenance_margin_rate": rate, "maintenance_amount": 0.0}
        raise DataError(f"no tier holds a position of {contracts:g} contracts", f"tiers.{symbol}")


class HyperliquidNormaliser(Normaliser):
    venue = "hyperliquid"

    def cross_wallet(
        self, balance: Mapping[str, Any], collateral: str, positions: Sequence[Mapping[str, Any]]
    ) -> float:
        info = mapping(balance.get("info"), "balance.info")
        summary = mapping(info.get("crossMarginSummary"), "balance.info.crossMarginSummary")
        value = required(summary, "accountValue", "balance.info.crossMarginSummary")
        cross_pnl = sum(
            optional(p, "unrealizedPnl", f"positions[{i}]") or 0.0
            for i, p in enumerate(positions)
            if p.get("marginMode") == "cross"
        )
        return value - cross_pnl

    def isolated_margin(self, pos: Mapping[str, Any], path: str) -> float:
        position = mapping(_info(pos, path).get("position"), f"{path}.info.position")
        used = required(position, "marginUsed", f"{path}.info.position")
        return used - (optional(pos, "unrealizedPnl", path) or 0.0)

    def exchange_liquidation_price(self, pos: Mapping[str, Any], path: str) -> float | None:
        position = mapping(_info(pos, path).get("position"), f"{path}.info.position")
        return optional(position, "liquidationPx", f"{path}.info.position") or None

    def maintenance(
        self, pos: Mapping[str, Any], path: str, contracts: float, size: float, data: AccountData
    ) -> dict[str, Any]:
        symbol = str(pos["symbol"])
        market = data.markets.get(symbol) or {}
        limits = (market.get("limits") or {}).get("leverage") or {}
        max_leverage = optional(limits, "max", f"markets.{symbol}.limits.leverage") if limits else None
        if max_leverage:
            return {"tiers": [{"min_notional": 0.0, "max_notional": None, "max_leverage": max_leverage}]}
        return super().maintenance(pos, path, contracts, size, data)


@dataclass(frozen=True)
class VenueProfile:
    """What the connector needs to know of a venue, as data."""

    ccxt_id: str
    normaliser: type[Normaliser]
    options: Mapping[str, Any] = field(default_factory=dict)
    needs_passphrase: bool = False
    uses_wallet: bool = False  # a wallet address instead of key + secret (no private key)
    permission_check: str | None = None  # "binance" | "bybit" | "okx"; None: venue has none
    tiers: str = "none"  # "all": one fetch_leverage_tiers; "per_market"; "none"
    fetch_balance_params: Mapping[str, Any] = field(default_factory=dict)
    fetch_positions_params: Mapping[str, Any] = field(default_factory=dict)
    ohlcv_per_call: int = 1000  # candles one request returns; beyond it ccxt paginates
    # where the venue tells a liquidation: ccxt's fetch_my_liquidations, or OKX fills whose
    # subType 104-107 mark a liquidation; None: the venue shows none
    liquidation_history: str | None = "liquidations"
    benchmark: str = "BTC/USDT:USDT"  # the market betas are measured against
    # an account whose collateral is a coin (BTC, ETH) watches the venue's coin-margined
    # (inverse) contracts settled in it: these options and position params replace the
    # linear ones ("{coin}" is the collateral); None: the venue's profile serves both as is
    coin_options: Mapping[str, Any] | None = None
    coin_positions_params: Mapping[str, Any] | None = None

    def client_options(self, collateral: str) -> dict[str, Any]:
        """ccxt options for an account with `collateral`."""
        if is_coin(collateral) and self.coin_options is not None:
            return {**self.options, **self.coin_options}
        return dict(self.options)

    def positions_params(self, collateral: str) -> dict[str, Any]:
        """fetch_positions params for an account with `collateral`."""
        if is_coin(collateral) and self.coin_positions_params is not None:
            return {
                k: (v.format(coin=collateral) if isinstance(v, str) else v)
                for k, v in self.coin_positions_params.items()
            }
        return dict(self.fetch_positions_params)


def is_coin(collateral: str) -> bool:
    """A coin collateral (BTC, ETH): money shown to more than cents (margin.inverse)."""
    return money_places(collateral) > 2


PROFILES: dict[str, VenueProfile] = {
    "binanceusdm": VenueProfile(
        "binanceusdm",
        BinanceNormaliser,
        options={"fetchCurrencies": False, "adjustForTimeDifference": True},
        permission_check="binance",
        tiers="all",
    ),
    "binancecoinm": VenueProfile(
        "binancecoinm",
        BinanceCoinmNormaliser,
        options={"fetchCurrencies": False, "adjustForTimeDifference": True},
        permission_check="binance",
        tiers="all",
        benchmark="BTC/USD:BTC",
    ),
    "bybit": VenueProfile(
        "bybit",
        BybitNormaliser,
        options={
            "fetchMarkets": {"types": ["linear"]},
            "fetchCurrencies": False,
            "defaultType": "swap",
            "defaultSubType": "linear",
        },
        permission_check="bybit",
        tiers="per_market",
        fetch_positions_params={"settleCoin": "USDT", "category": "linear"},
        # Bybit inverse (BTCUSD perpetual and dated contracts), margined in the coin
        coin_options={"fetchMarkets": {"types": ["inverse"]}, "defaultSubType": "inverse"},
        coin_positions_params={"subType": "inverse", "settleCoin": "{coin}"},
    ),
    "okx": VenueProfile(
        "okx",
        OkxNormaliser,
        options={"fetchMarkets": {"types": ["swap"]}, "fetchCurrencies": False, "defaultType": "swap"},
        needs_passphrase=True,
        permission_check="okx",
        tiers="per_market",
        fetch_positions_params={"instType": "SWAP"},
        ohlcv_per_call=300,
        liquidation_history="okx_fills",
    ),
    "hyperliquid": VenueProfile(
        "hyperliquid",
        HyperliquidNormaliser,
        # perpetuals of the first dex only: no spot markets, no builder-deployed (HIP-3) dexes
        options={"fetchMarkets": {"types": ["swap"]}, "defaultType": "swap"},
        uses_wallet=True,
        ohlcv_per_call=5000,
        benchmark="BTC/USDC:USDC",
    ),
}


def profile_for(exchange_id: str) -> VenueProfile:
    """The venue's profile; any other ccxt exchange gets the generic path."""
    return PROFILES.get(exchange_id) or VenueProfile(exchange_id, Normaliser)


def normalise(exchange_id: str, account: str, collateral: str, data: AccountData) -> dict[str, Any]:
    """The snapshot document of one poll (see Normaliser.snapshot)."""
    profile = profile_for(exchange_id)
    return profile.normaliser(exchange_id).snapshot(account, collateral, data)


def account_problems(entry: Mapping[str, Any]) -> list[tuple[str, str]]:
    """What stops one config account entry from being polled: an exchange id ccxt does not
    know, or a credential the venue needs that names no variable (config.AccountCheck)."""
    exchange = entry.get("exchange")
    if not isinstance(exchange, str):
        return []  # the config's own validation names it
    import ccxt  # only where accounts are polled: reading a config stays fast

    if exchange not in ccxt.exchanges:
        return [("exchange", f"unknown exchange {exchange!r} (not a ccxt exchange id)")]
    profile = profile_for(exchange)
    if profile.uses_wallet and entry.get("private_key_env"):
        return [
            (
                "private_key_env",
                f"{exchange} is read with the wallet address alone: remove private_key_env (marginwatch never "
                "signs, and a private key can trade; a main wallet's can withdraw)",
            )
        ]
    needed = (
        ["wallet_address_env"]
        if profile.uses_wallet
        else ["key_env", "secret_env"] + (["passphrase_env"] if profile.needs_passphrase else [])
    )
    missing = [k for k in needed if not entry.get(k)]
    if missing:
        return [
            ("", f"{exchange} needs {', '.join(missing)} (the names of environment variables holding the credentials)")
        ]
    return []
