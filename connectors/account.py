"""One watched account: a long-lived ccxt.async_support client and the fetches of a poll.

The shell around the pure parts: venue profile (connectors.venues), normalisation
(connectors.normalise), key permissions (connectors.permissions) and the error policy
(connectors.errors). One client per account, so each keeps its own rate limiter.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar

import ccxt.async_support as ccxt_async

from config.settings import AccountConfig
from connectors.client import rest_client
from connectors.collateral_fetch import CollateralFetcher
from connectors.errors import ConnectorError, DataError, KeyRefused, classify, with_retries
from connectors.guards import redact
from connectors.normalise import AccountData
from connectors.permissions import (
    UNVERIFIED,
    KeyPermissions,
    binance_permissions,
    bybit_permissions,
    okx_permissions,
)
from connectors.redirect import quiet_ccxt_logger
from connectors.venues import VenueProfile, normalise, profile_for

quiet_ccxt_logger()  # ccxt logs request headers (Binance's API key among them) at DEBUG
log = logging.getLogger(__name__)

T = TypeVar("T")
DAY = 24 * 3600.0

_PERMISSION_CALLS: dict[str, tuple[str, Callable[[Any], KeyPermissions]]] = {
    "binance": ("sapi_get_account_apirestrictions", binance_permissions),
    "bybit": ("private_get_v5_user_query_api", bybit_permissions),
    "okx": ("private_get_account_config", okx_permissions),
}


_OKX_LIQUIDATION = {"104", "105", "106", "107"}  # fills subType: liquidation (partial, full, ADL)


def _liquidation(row: Mapping[str, Any], source: str) -> dict[str, Any]:
    """A liquidation record: the closing order's side is the opposite of the position's."""
    info = row.get("info") or {}
    order_side = str(row.get("side") or info.get("side") or "").lower()
    side = {"sell": "long", "buy": "short"}.get(order_side)
    timestamp = row.get("timestamp")
    return {
        "occurred_at": datetime.fromtimestamp(timestamp / 1000, UTC) if timestamp else None,
        "price": row.get("price"),
        "contracts": row.get("contracts") if row.get("contracts") is not None else row.get("amount"),
        "side": side,
        "source": source,
    }


def _retry_after(headers: Mapping[str, Any] | None) -> float | None:
    for key, value in (headers or {}).items():
        if str(key).lower() == "retry-after":
            try:
                return float(value)
            except (TypeError, ValueError):
                return None
    return None


class SharedMarkets:
    """Markets loaded once per venue and handed to every client of that venue: a fund's
    hundred Binance accounts need one exchangeInfo, not a hundred."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._markets: dict[str, tuple[Any, Any]] = {}
        self._tiers: dict[tuple[str, str], tuple[float, Any]] = {}
        self._locks: dict[Any, asyncio.Lock] = {}
        self._clock = clock

    async def load(self, key: str, client: ccxt_async.Exchange, load: Callable[[], Awaitable[Any]]) -> None:
        async with self._locks.setdefault(key, asyncio.Lock()):
            if key in self._markets:
                markets, currencies = self._markets[key]
                client.set_markets(markets, currencies)
                return
            await load()
            self._markets[key] = (client.markets, client.currencies)

    async def market_tiers(self, key: str, symbol: str, fetch: Callable[[], Awaitable[Any]]) -> Any:
        """A market's public tier table (Bybit risk limits, OKX position tiers), fetched
        once a day for every account of the venue. Binance's brackets are per account
        (signed, and a venue may grant an account its own), so they are not shared."""
        async with self._locks.setdefault((key, symbol), asyncio.Lock()):
            held = self._tiers.get((key, symbol))
            if held is not None and self._clock() - held[0] < DAY:
                return held[1]
            tiers = await fetch()
            self._tiers[(key, symbol)] = (self._clock(), tiers)
            return tiers


class AccountConnector:
    """Fetches one account's snapshot. `budget` bounds every call, retries included."""

    def __init__(
        self,
        config: AccountConfig,
        credentials: Mapping[str, str],
        *,
        budget_seconds: float = 20.0,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        shared_markets: SharedMarkets | None = None,
    ) -> None:
        self.config = config
        self.profile: VenueProfile = profile_for(config.exchange)
        self.budget = config.timeout_seconds or budget_seconds
        self._clock = clock
        self._wall_clock = wall_clock
        self._secrets = tuple(credentials.values())
        self.client = self._make_client(credentials)
        self.permissions: KeyPermissions | None = None
        self._unreported_check: KeyPermissions | None = None
        self._permissions_checked = -DAY
        self._tiers: dict[str, list[dict[str, Any]]] = {}
        self._tiers_fetched: dict[str, float] = {}
        self._markets_loaded = False
        self._shared_markets = shared_markets
        self.warnings: list[str] = []
        self._collateral = CollateralFetcher(
            config.exchange, portfolio=config.portfolio_margin
        )  # issue 13: multi-collateral extras

    @property
    def shared_markets(self) -> SharedMarkets | None:
        """The markets this connector shares with the venue's other clients (streams too)."""
        return self._shared_markets

    def _make_client(self, credentials: Mapping[str, str]) -> ccxt_async.Exchange:
        if self.profile.uses_wallet:
            # Reads need only the address. Given a private key too, ccxt's load_markets
            # signs and sends actions (approveBuilderFee, setReferrer) to /exchange.
            credentials = {k: v for k, v in credentials.items() if k == "walletAddress"}
        return rest_client(
            self.config.exchange,
            credentials=credentials,
            timeout_seconds=self.budget,
            base_url=self.config.base_url,
            options={
                **self.profile.client_options(self.config.collateral),
                **({"portfolioMargin": True} if self.config.portfolio_margin else {}),
            },
        )

    async def close(self) -> None:
        await self.client.close()

    async def _call(self, make: Callable[[], Awaitable[T]], deadline: float) -> T:
        try:
            return await with_retries(
                make,
                deadline=deadline,
                on_stale_timestamp=self.client.load_time_difference,
                retry_after=lambda: _retry_after(getattr(self.client, "last_response_headers", None)),
                clock=self._clock,
            )
        except ConnectorError as exc:
            exc.message = redact(exc.message, self._secrets)
            exc.args = (exc.message,)
            raise

    # --- key permissions ---------------------------------------------------------------

    async def check_key(self, deadline: float | None = None) -> KeyPermissions:
        """Ask the venue what the key may do (at start, then daily)."""
        deadline = deadline if deadline is not None else self._clock() + self.budget
        call = _PERMISSION_CALLS.get(self.profile.permission_check or "")
        if call is None:
            self.permissions = UNVERIFIED
        else:
            method, parse = call
            payload = await self._call(lambda: getattr(self.client, method)(), deadline)
            self.permissions = parse(payload)
        # the next daily check comes up to 2.4 h early, at random: a fund's hundreds of keys
        # checked at start must not all come due in the same cycle a day later
        self._permissions_checked = self._wall_clock() - random.uniform(0.0, 0.1 * DAY)  # noqa: S311
        self._unreported_check = self.permissions
        return self.permissions

    def take_key_check(self) -> KeyPermissions | None:
        """The key check made since the last call, if any (for the store)."""
        check, self._unreported_check = self._unreported_check, None
        return check

    async def prepare(self) -> KeyPermissions:
        """What a start needs before the first poll: the key's permissions and the markets
        (shared per venue). Raises like a poll does."""
        deadline = self._clock() + self.budget
        permissions = await self.check_key(deadline)
        await self._load_markets(deadline)
        return permissions

    async def _load_markets(self, deadline: float) -> None:
        if self._markets_loaded:
            return

        async def load() -> None:
            await self._call(lambda: self.client.load_markets(), deadline)

        if self._shared_markets is None:
            await load()
        else:
            # a coin account's client may load other market types (Bybit inverse)
            options = self.profile.client_options(self.config.collateral)
            key = f"{self.config.exchange} {self.config.base_url} {options.get('fetchMarkets')}"
            await self._shared_markets.load(key, self.client, load)
        self._markets_loaded = True

    # --- the poll ----------------------------------------------------------------------

    async def fetch_snapshot(self) -> dict[str, Any]:
        """The account's snapshot document now. Raises a ConnectorError subclass."""
        deadline = self._clock() + self.budget
        if self.permissions is None or self._wall_clock() - self._permissions_checked >= DAY:
            await self.check_key(deadline)
        assert self.permissions is not None  # noqa: S101 - set by check_key
        if self.permissions.status == "refused":
            raise KeyRefused(self.permissions.message)
        await self._load_markets(deadline)
        balance = await self._call(lambda: self.client.fetch_balance(dict(self.profile.fetch_balance_params)), deadline)
        positions = await self._call(
            lambda: self.client.fetch_positions(None, self.profile.positions_params(self.config.collateral)),
            deadline,
        )
        if not isinstance(positions, list):
            raise DataError(f"expected a list of positions, got {type(positions).__name__}", "positions")
        symbols = sorted({str(p.get("symbol")) for p in positions if isinstance(p, Mapping)})
        tiers = await self._tiers_for(symbols, deadline)
        extras = await self._collateral.extras(self.client, balance, lambda make: self._call(make, deadline))
        self.warnings += [redact(w, self._secrets) for w in self._collateral.warnings]
        self._collateral.warnings.clear()
        data = AccountData(
            balance=balance,
            positions=positions,
            markets=self.client.markets or {},
            tiers=tiers,
            extras=extras,
            timestamp=datetime.fromtimestamp(self._wall_clock(), UTC).isoformat(),
        )
        return normalise(self.config.exchange, self.config.name, self.config.collateral, data)

    async def recent_liquidations(self, symbol: str, since: datetime) -> list[dict[str, Any]]:
        """The venue's record of liquidations of `symbol` since `since` (empty where the
        venue keeps none): occurred_at, price, contracts, side (of the position), source."""
        deadline = self._clock() + self.budget
        since_ms = int(since.timestamp() * 1000)
        kind = self.profile.liquidation_history
        if kind == "liquidations" and self.client.has.get("fetchMyLiquidations"):
            rows = await self._call(lambda: self.client.fetch_my_liquidations(symbol, since_ms), deadline)
            return [_liquidation(r, "fetch_my_liquidations") for r in rows or [] if isinstance(r, Mapping)]
        if kind == "okx_fills":
            rows = await self._call(
                lambda: self.client.fetch_my_trades(symbol, since_ms, None, {"type": "swap"}), deadline
            )
            return [
                _liquidation(r, "fetch_my_trades")
                for r in rows or []
                if isinstance(r, Mapping) and str((r.get("info") or {}).get("subType")) in _OKX_LIQUIDATION
            ]
        return []

    async def _tiers_for(self, symbols: list[str], deadline: float) -> dict[str, list[dict[str, Any]]]:
        """Tier tables for `symbols`, cached for a day. A failed refresh keeps the old table
        (or lets the normaliser fall back to the rate the venue applied), with a warning."""
        now = self._wall_clock()
        stale = [s for s in symbols if now - self._tiers_fetched.get(s, -DAY) >= DAY]
        if not stale or self.profile.tiers == "none":
            return {s: self._tiers[s] for s in symbols if s in self._tiers}
        try:
            if self.profile.tiers == "all":
                fetched = await self._call(lambda: self.client.fetch_leverage_tiers(stale), deadline)
            else:
                fetched = {}
                venue = f"{self.config.exchange} {self.config.base_url}"
                for symbol in stale:
                    fetch = lambda symbol=symbol: self._call(  # noqa: E731 - one fetch, two ways to run it
                        lambda: self.client.fetch_market_leverage_tiers(symbol), deadline
                    )
                    fetched[symbol] = await (
                        self._shared_markets.market_tiers(venue, symbol, fetch) if self._shared_markets else fetch()
                    )
        except Exception as exc:  # tiers are an enhancement: the poll goes on
            message = redact(f"leverage tiers not refreshed: {classify(exc).message}", self._secrets)
            log.warning("%s: %s", self.config.label, message)
            self.warnings.append(message)
        else:
            for symbol in stale:
                if fetched.get(symbol):
                    self._tiers[symbol] = list(fetched[symbol])
                    self._tiers_fetched[symbol] = now
        return {s: self._tiers[s] for s in symbols if s in self._tiers}
