"""The extra fetches multi-collateral accounts need (connectors.collateral reads them):
Bybit's collateral value ratio bands, OKX's account level and discount-rate tiers,
Binance's Multi-Assets flag and asset index (prices and haircuts).

Public tables (ratio bands, discount tiers) are kept for a day. The account's mode (OKX's
account level, Binance's Multi-Assets flag, which Binance weighs 30) is read only for an
account whose balance holds an asset besides its collateral (the collateral alone counts
the same in every mode), and then kept for an hour when it says multi-collateral, ten
minutes when it says single (the user may switch, and reading a multi-collateral account as
single is the wrong way to be out of date). A failed fetch is logged and
left out: the normaliser then names what is missing for an account that needs it, and
a single-asset account is not held up by it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from connectors.errors import classify

log = logging.getLogger(__name__)
DAY = 24 * 3600.0
HOUR = 3600.0
# a mode read as single is read again sooner: holding another asset in single mode is
# common (BNB for fees), and a switch to multi must not go unseen for long
SINGLE_RECHECK = 600.0

Call = Callable[[Callable[[], Awaitable[Any]]], Awaitable[Any]]


class CollateralFetcher:
    """One account's extra fetches; `call` runs a ccxt call under the poll's budget."""

    def __init__(
        self, venue: str, clock: Callable[[], float] = time.time, portfolio: bool = False, collateral: str = "USDT"
    ) -> None:
        self.venue = venue
        self.portfolio = portfolio
        self.collateral = collateral
        self._clock = clock
        self._tables: dict[str, tuple[float, Any]] = {}
        self.warnings: list[str] = []

    async def extras(self, client: Any, balance: Mapping[str, Any], call: Call) -> dict[str, Any]:
        if self.venue == "bybit" and _bybit_unified(balance):
            table = await self._daily(
                "bybit_collateral", call, lambda: client.public_get_v5_spot_margin_trade_collateral()
            )
            return {} if table is None else {"bybit_collateral": table}
        if self.venue == "binanceusdm" and self.portfolio:
            return await self._binance_portfolio(client, call)
        if self.venue == "binanceusdm":
            # Only a wallet of several assets needs the mode (one asset counts the same in
            # both); Binance weighs the call 30, so it is read hourly, and again at once when
            # the flag said single
            if not needs_mode(_binance_assets(balance), self.collateral):
                return {}
            held = self._tables.get("binance_multi_assets")
            ttl = HOUR if held is not None and _multi_flag(held[1]) else SINGLE_RECHECK
            flag = await self._cached(
                "binance_multi_assets", call, lambda: client.fapiprivate_get_multiassetsmargin(), ttl
            )
            if flag is None:
                return {}
            extras: dict[str, Any] = {"binance_multi_assets": flag}
            if _multi_flag(flag):
                # the index prices move: read them every poll, like the balance
                index = await self._once("binance_asset_index", call, lambda: client.fapipublic_get_assetindex())
                if index is not None:
                    extras["binance_asset_index"] = index
            return extras
        if self.venue == "okx":
            extras = {}
            # only an account holding several currencies needs its level (one currency counts
            # the same at every level): read hourly, and again at once when it said single
            if not needs_mode(_okx_currencies(balance), self.collateral):
                return {}
            held = self._tables.get("okx_config")
            ttl = HOUR if held is not None and _okx_level(held[1]) == "3" else SINGLE_RECHECK
            config = await self._cached("okx_config", call, lambda: client.private_get_account_config(), ttl)
            if config is not None:
                extras["okx_config"] = config
                if _okx_level(config) == "3":
                    table = await self._daily(
                        "okx_discount", call, lambda: client.public_get_public_discount_rate_interest_free_quota()
                    )
                    if table is not None:
                        extras["okx_discount"] = table
            return extras
        return {}

    async def _binance_portfolio(self, client: Any, call: Call) -> dict[str, Any]:
        """Portfolio Margin: uniMMR and totals (papi account), each asset's index price and
        collateral rate (sapi portfolio endpoints; the rates kept for a day)."""
        extras: dict[str, Any] = {"binance_portfolio": True}
        for name, make in (
            ("binance_pm_account", lambda: client.papi_get_account()),
            ("binance_pm_prices", lambda: client.sapi_get_portfolio_asset_index_price()),
        ):
            value = await self._once(name, call, make)
            if value is not None:
                extras[name] = value
        rates = await self._daily("binance_pm_rates", call, lambda: client.sapi_get_portfolio_collateralrate())
        if rates is not None:
            extras["binance_pm_rates"] = rates
        return extras

    async def _daily(self, name: str, call: Call, make: Callable[[], Awaitable[Any]]) -> Any:
        return await self._cached(name, call, make, DAY)

    async def _cached(self, name: str, call: Call, make: Callable[[], Awaitable[Any]], ttl: float) -> Any:
        held = self._tables.get(name)
        if held is not None and self._clock() - held[0] < ttl:
            return held[1]
        value = await self._once(name, call, make)
        if value is not None:
            self._tables[name] = (self._clock(), value)
        return value if value is not None else (held[1] if held else None)

    async def _once(self, name: str, call: Call, make: Callable[[], Awaitable[Any]]) -> Any:
        try:
            return await call(make)
        except Exception as exc:  # the normaliser names what is missing where it matters
            message = f"{name} not read: {classify(exc).message}"
            log.warning("%s", message)
            self.warnings.append(message)
            return None


def _bybit_unified(balance: Mapping[str, Any]) -> bool:
    rows = ((balance.get("info") or {}).get("result") or {}).get("list") or []
    return bool(rows) and isinstance(rows[0], Mapping) and rows[0].get("accountType") == "UNIFIED"


def _okx_level(config: Any) -> str | None:
    rows = config.get("data") if isinstance(config, Mapping) else None
    return str(rows[0].get("acctLv")) if isinstance(rows, list) and rows and isinstance(rows[0], Mapping) else None


def needs_mode(held: list[str], collateral: str) -> bool:
    """Whether the account's mode decides its numbers: it does unless the only asset held
    (if any) is the collateral currency."""
    return len(held) > 1 or (len(held) == 1 and held[0] != collateral)


def _multi_flag(flag: Any) -> bool:
    return isinstance(flag, Mapping) and flag.get("multiAssetsMargin") in (True, "true")


def _binance_assets(balance: Mapping[str, Any]) -> list[str]:
    """The assets of /fapi/v3/account with a non-zero wallet."""
    rows = (balance.get("info") or {}).get("assets") if isinstance(balance.get("info"), Mapping) else None
    return _held(rows, "asset", "walletBalance")


def _held(rows: Any, name: str, amount: str) -> list[str]:
    if not isinstance(rows, list):
        return []
    held = []
    for row in rows:
        try:
            if isinstance(row, Mapping) and float(row.get(amount) or 0) != 0:
                held.append(str(row.get(name)))
        except (TypeError, ValueError):
            held.append(str(row.get(name)))  # unreadable: the normaliser names it
    return held


def _okx_currencies(balance: Mapping[str, Any]) -> list[str]:
    """The currencies of /api/v5/account/balance with a non-zero equity."""
    info = balance.get("info")
    data = info.get("data") if isinstance(info, Mapping) else None
    details = data[0].get("details") if isinstance(data, list) and data and isinstance(data[0], Mapping) else None
    return _held(details, "ccy", "eq")
