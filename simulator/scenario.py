"""The simulator's scenario: markets, tier tables and accounts, read from one JSON document.

The format is documented in docs/simulator.md. `parse_scenario` checks a decoded document
and returns frozen dataclasses, or raises `ScenarioError` naming the first bad field by its
path (``accounts[1].positions[0].contracts``), like the snapshot parser does.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

VENUES = ("binanceusdm", "binancecoinm", "bybit", "okx", "hyperliquid")
COINM = "binancecoinm"  # Binance COIN-M: inverse contracts, contract size in USD, money in the coin
HYPERLIQUID = "hyperliquid"
WALLET_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")  # an EVM address: a Hyperliquid account

# Market data defaults (docs/simulator.md, "Market data").
FACTOR_BASE = "BTC"  # markets of this base are the market factor (beta 1)
DEFAULT_FACTOR_VOLATILITY = 0.005  # hourly log-return sigma of the factor (BTC)
DEFAULT_IDIOSYNCRATIC_VOLATILITY = 0.005
DEFAULT_FUNDING_RATE = 0.0001  # per 8 h funding interval
# Hyperliquid pays funding every hour; its interest component alone is 0.01 % per 8 h.
DEFAULT_HOURLY_FUNDING_RATE = 0.0000125
DEFAULT_BOOK_LEVELS = 50
DEFAULT_LEVEL_NOTIONAL = 10_000.0  # quote value of the best level when book_level_size is absent
DEFAULT_HISTORY_DAYS = 30
# Liquidation fee as a fraction of the closed notional. Binance publishes 0.0125
# (exchangeInfo `liquidationFee`); Bybit and OKX publish no single figure; Hyperliquid
# publishes no liquidation fee: its market liquidation order pays the base taker fee.
DEFAULT_LIQUIDATION_FEE = {
    "binanceusdm": 0.0125,
    "binancecoinm": 0.015,
    "bybit": 0.005,
    "okx": 0.005,
    "hyperliquid": 0.00045,
}


class ScenarioError(ValueError):
    """A scenario document that does not follow the format; `path` names the field."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}" if path else message)
        self.path = path


@dataclass(frozen=True)
class TierSpec:
    """One maintenance tier in quote notional: [min_notional, max_notional)."""

    min_notional: float
    max_notional: float | None
    maintenance_margin_rate: float
    max_leverage: float


@dataclass(frozen=True)
class MarketSpec:
    """A linear perpetual: `contract_size` is base units per contract (OKX ctVal). Or, with
    `inverse`, a coin-margined contract (BTC/USD:BTC, BTC/USD:BTC-261225): `contract_size`
    in quote currency (100 USD), tier bounds in the coin."""

    symbol: str
    base: str
    quote: str
    mark_price: float
    contract_size: float
    price_tick: float
    amount_step: float
    tiers: tuple[TierSpec, ...]
    # Market data. hourly_volatility is the total sigma of hourly log returns; the series is
    # r = beta x r_factor + idiosyncratic noise (factor: the venue's BTC market).
    hourly_volatility: float = DEFAULT_FACTOR_VOLATILITY
    beta: float = 1.0
    funding_rate: float = DEFAULT_FUNDING_RATE
    book_depth_levels: int = DEFAULT_BOOK_LEVELS
    book_level_size: float = 1.0  # contracts at the best level (the scenario default is computed)
    book_level_ticks: int = 1  # ticks between two levels
    liquidation_fee_rate: float = 0.005
    inverse: bool = False

    @property
    def is_factor(self) -> bool:
        return self.base == FACTOR_BASE


@dataclass(frozen=True)
class PositionSpec:
    """A position as the scenario gives it; `contracts` in the venue's contracts."""

    symbol: str
    side: str
    contracts: float
    entry_price: float
    margin_mode: str
    isolated_margin: float | None = None
    leverage: float | None = None


@dataclass(frozen=True)
class AccountSpec:
    """An account, identified on its venue by its API key (Hyperliquid: by its wallet
    address, lower-cased, with no secret: its reads are unsigned)."""

    venue: str
    api_key: str
    secret: str
    passphrase: str | None
    can_trade: bool
    can_withdraw: bool
    collateral: str
    wallet_balance: float
    positions: tuple[PositionSpec, ...]
    name: str = ""
    taker_fee: float | None = None
    # issue 13: a multi-collateral account (Bybit UTA, OKX multi-currency): its money is in
    # `collateral_assets`, each valued at a haircut; `wallet_balance` is not read
    account_mode: str = "single_asset"
    collateral_assets: tuple[CollateralAssetSpec, ...] = ()


@dataclass(frozen=True)
class CollateralAssetSpec:
    """A collateral asset: `price` fixed, or the mark of `price_symbol`; `tiers` are
    (min_amount, max_amount or None, ratio) bands in asset units."""

    asset: str
    amount: float
    price: float | None
    price_symbol: str | None
    tiers: tuple[tuple[float, float | None, float], ...]


@dataclass(frozen=True)
class RandomWalk:
    """Geometric random walk of every mark: ln(p) moves by N(0, volatility) per step."""

    enabled: bool = False
    interval_seconds: float = 1.0
    volatility: float = 0.002


@dataclass(frozen=True)
class StreamSettings:
    """The websocket streams: every subscribed mark is pushed again, unchanged, each
    `mark_interval_seconds` (None: only when it changes)."""

    mark_interval_seconds: float | None = 1.0


@dataclass(frozen=True)
class Scenario:
    seed: int
    random_walk: RandomWalk
    markets: dict[str, dict[str, MarketSpec]] = field(default_factory=dict)
    accounts: tuple[AccountSpec, ...] = ()
    auto_liquidate: bool = True
    ohlcv_history_days: int = DEFAULT_HISTORY_DAYS
    streams: StreamSettings = field(default_factory=StreamSettings)


def factor_volatility(markets: Mapping[str, MarketSpec]) -> float:
    """Hourly sigma of a venue's market factor: its first BTC market's, or the default."""
    for market in markets.values():
        if market.is_factor:
            return market.hourly_volatility
    return DEFAULT_FACTOR_VOLATILITY


def idiosyncratic_volatility(market: MarketSpec, factor_sigma: float) -> float:
    """The noise sigma that, with beta x the factor, makes up the market's total sigma."""
    if market.is_factor:
        return 0.0
    return math.sqrt(max(0.0, market.hourly_volatility**2 - (market.beta * factor_sigma) ** 2))


def load_scenario(path: str | Path) -> dict[str, Any]:
    """Read a scenario JSON file (checked when the simulator is built)."""
    with open(path, encoding="utf-8") as fh:
        doc = json.load(fh)
    parse_scenario(doc)  # fail early, naming the field
    return doc


def parse_scenario(doc: Any) -> Scenario:
    """Validate a decoded scenario document."""
    obj = _mapping(doc, "", "the scenario")
    walk = _mapping(obj.get("random_walk") or {}, "random_walk", "random_walk")
    random_walk = RandomWalk(
        enabled=bool(walk.get("enabled", False)),
        interval_seconds=_number(walk, "interval_seconds", "random_walk", default=1.0, positive=True),
        volatility=_number(walk, "volatility", "random_walk", default=0.002, minimum=0.0),
    )
    markets_doc = _mapping(obj.get("markets"), "markets", "markets")
    markets: dict[str, dict[str, MarketSpec]] = {}
    for venue, items in markets_doc.items():
        if venue not in VENUES:
            raise ScenarioError(f"markets.{venue}", f"unknown venue; use one of {', '.join(VENUES)}")
        if not isinstance(items, list):
            raise ScenarioError(f"markets.{venue}", "must be a list")
        specs = [_market(m, f"markets.{venue}[{i}]", venue) for i, m in enumerate(items)]
        specs = _resolve_volatility(specs, items, f"markets.{venue}")
        markets[venue] = {m.symbol: m for m in specs}
    accounts_doc = obj.get("accounts")
    if not isinstance(accounts_doc, list):
        raise ScenarioError("accounts", "must be a list")
    accounts = tuple(_account(a, f"accounts[{i}]", markets) for i, a in enumerate(accounts_doc))
    seen: set[tuple[str, str]] = set()
    for i, acc in enumerate(accounts):
        if (acc.venue, acc.api_key) in seen:
            key = "wallet_address" if acc.venue == HYPERLIQUID else "api_key"
            raise ScenarioError(f"accounts[{i}].{key}", "used twice on the same venue")
        seen.add((acc.venue, acc.api_key))
    seed = obj.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ScenarioError("seed", f"must be an integer, got {seed!r}")
    auto_liquidate = obj.get("auto_liquidate", True)
    if not isinstance(auto_liquidate, bool):
        raise ScenarioError("auto_liquidate", f"must be true or false, got {auto_liquidate!r}")
    days = _integer(obj, "ohlcv_history_days", "", default=DEFAULT_HISTORY_DAYS, minimum=1, maximum=365)
    streams_doc = _mapping(obj.get("streams") or {}, "streams", "streams")
    # absent: every second; null: only on change
    interval = (
        _number(streams_doc, "mark_interval_seconds", "streams", default=1.0, positive=True)
        if streams_doc.get("mark_interval_seconds", 1.0) is not None
        else None
    )
    streams = StreamSettings(interval)
    return Scenario(
        seed=seed,
        random_walk=random_walk,
        markets=markets,
        accounts=accounts,
        auto_liquidate=auto_liquidate,
        ohlcv_history_days=days,
        streams=streams,
    )


def _resolve_volatility(specs: list[MarketSpec], docs: list[Any], path: str) -> list[MarketSpec]:
    """Fill in each market's total hourly volatility from its beta and the venue's factor:
    absent, it is sqrt((beta x factor sigma)^2 + default idiosyncratic sigma^2); given, it
    must be at least |beta| x factor sigma (the idiosyncratic part cannot be negative)."""
    factor = next((m for m in specs if m.is_factor), None)
    factor_sigma = factor.hourly_volatility if factor else DEFAULT_FACTOR_VOLATILITY
    resolved = []
    for i, (market, doc) in enumerate(zip(specs, docs, strict=True)):
        if not market.is_factor:
            if doc.get("hourly_volatility") is None:
                sigma = math.hypot(market.beta * factor_sigma, DEFAULT_IDIOSYNCRATIC_VOLATILITY)
                market = dataclasses.replace(market, hourly_volatility=sigma)
            elif market.hourly_volatility < abs(market.beta) * factor_sigma - 1e-12:
                floor = abs(market.beta) * factor_sigma
                raise ScenarioError(
                    f"{path}[{i}].hourly_volatility",
                    f"must be >= |beta| x the {FACTOR_BASE} market's ({floor:g}), got {market.hourly_volatility:g}",
                )
        resolved.append(market)
    return resolved


def parse_positions(
    docs: Any, path: str, venue: str, markets: Mapping[str, Mapping[str, MarketSpec]]
) -> tuple[PositionSpec, ...]:
    """Validate a list of positions for an account on `venue`."""
    if not isinstance(docs, list):
        raise ScenarioError(path, "must be a list")
    positions = tuple(_position(p, f"{path}[{i}]", venue, markets) for i, p in enumerate(docs))
    modes: dict[str, str] = {}
    for i, p in enumerate(positions):
        if venue == HYPERLIQUID and p.symbol in modes:
            # One signed position per coin (szi): Hyperliquid has no hedge mode.
            raise ScenarioError(f"{path}[{i}].symbol", f"{p.symbol} is held already; {venue} has one position per coin")
        # Binance and Bybit set the margin mode per symbol; OKX allows both on one instrument.
        if venue != "okx" and modes.setdefault(p.symbol, p.margin_mode) != p.margin_mode:
            raise ScenarioError(
                f"{path}[{i}].margin_mode",
                f"{p.symbol} is held {modes[p.symbol]} already; {venue} has one margin mode per symbol",
            )
    return positions


def split_symbol(symbol: str, path: str, venue: str = "") -> tuple[str, str]:
    """("BTC", "USDT") from the ccxt symbol "BTC/USDT:USDT"; linear swaps everywhere, and
    on Binance COIN-M inverse contracts settled in the base (BTC/USD:BTC, with an expiry
    BTC/USD:BTC-261225)."""
    try:
        pair, settle = symbol.split(":")
        base, quote = pair.split("/")
    except ValueError:
        raise ScenarioError(path, f"must look like BASE/QUOTE:SETTLE, got {symbol!r}") from None
    if not base or not quote:
        raise ScenarioError(path, f"must look like BASE/QUOTE:SETTLE, got {symbol!r}")
    if venue == COINM:
        if settle.partition("-")[0] != base:
            raise ScenarioError(path, f"Binance COIN-M contracts settle in their base (BASE/USD:BASE), got {symbol!r}")
    elif venue in ("bybit", "okx") and settle == base:
        pass  # an inverse perpetual: Bybit BTC/USD:BTC (1 USD a contract), OKX BTC-USD-SWAP (ctVal USD)
    elif settle != quote:
        raise ScenarioError(path, f"only linear swaps (settle = quote) are simulated, got {symbol!r}")
    return base, quote


def _market(doc: Any, path: str, venue: str) -> MarketSpec:
    m = _mapping(doc, path, "a market")
    symbol = _string(m, "symbol", path)
    base, quote = split_symbol(symbol, f"{path}.symbol", venue)
    contract_size = _number(m, "contract_size", path, default=100.0 if venue == COINM else 1.0, positive=True)
    if venue not in ("okx", COINM) and contract_size != 1.0:
        # Binance USD-M, Bybit linear and Hyperliquid contracts are one base unit each.
        raise ScenarioError(f"{path}.contract_size", f"must be 1 on {venue}, got {contract_size:g}")
    if venue == HYPERLIQUID and quote != "USDC":
        raise ScenarioError(f"{path}.symbol", f"Hyperliquid perpetuals settle in USDC (BASE/USDC:USDC), got {symbol!r}")
    tiers_doc = m.get("tiers")
    if not isinstance(tiers_doc, list) or not tiers_doc:
        raise ScenarioError(f"{path}.tiers", "must be a non-empty list")
    tiers: list[TierSpec] = []
    floor = 0.0
    for i, t in enumerate(tiers_doc):
        tpath = f"{path}.tiers[{i}]"
        tier = _mapping(t, tpath, "a tier")
        cap = tier.get("max_notional")
        if cap is not None:
            cap = _number(tier, "max_notional", tpath, positive=True)
            if cap <= floor:
                raise ScenarioError(f"{tpath}.max_notional", f"must exceed the previous tier's {floor:g}")
        elif i != len(tiers_doc) - 1:
            raise ScenarioError(f"{tpath}.max_notional", "only the last tier may be unbounded (null)")
        max_leverage = _number(tier, "max_leverage", tpath, positive=True)
        if venue == HYPERLIQUID:
            rate = _hyperliquid_rate(tier, tpath, max_leverage)
        else:
            rate = _number(tier, "maintenance_margin_rate", tpath, minimum=0.0)
        if rate >= 1.0:
            raise ScenarioError(f"{tpath}.maintenance_margin_rate", f"must be < 1, got {rate:g}")
        tiers.append(TierSpec(floor, cap, rate, max_leverage))
        floor = cap if cap is not None else math.inf
    mark = _number(m, "mark_price", path, positive=True)
    step = _number(m, "amount_step", path, default=0.001, positive=True)
    if venue == HYPERLIQUID and not any(abs(step - 10.0**-k) < 1e-15 for k in range(9)):
        # Hyperliquid sizes have szDecimals decimals: the lot is a power of ten.
        raise ScenarioError(f"{path}.amount_step", f"must be 1, 0.1, 0.01, ... (szDecimals) on {venue}, got {step:g}")
    beta = _number(m, "beta", path, default=1.0)
    if base == FACTOR_BASE and beta != 1.0:
        raise ScenarioError(f"{path}.beta", f"{FACTOR_BASE} is the market factor: its beta is 1, got {beta:g}")
    default_funding = DEFAULT_HOURLY_FUNDING_RATE if venue == HYPERLIQUID else DEFAULT_FUNDING_RATE
    funding = _number(m, "funding_rate", path, default=default_funding)
    if abs(funding) >= 1.0:
        raise ScenarioError(f"{path}.funding_rate", f"must be a fraction per interval (|rate| < 1), got {funding:g}")
    fee = _number(m, "liquidation_fee_rate", path, default=DEFAULT_LIQUIDATION_FEE[venue], minimum=0.0)
    if fee >= 1.0:
        raise ScenarioError(f"{path}.liquidation_fee_rate", f"must be < 1, got {fee:g}")
    per_contract = contract_size if venue == COINM else mark * contract_size  # quote value of one contract
    default_size = max(step, round(DEFAULT_LEVEL_NOTIONAL / per_contract / step) * step)
    return MarketSpec(
        symbol=symbol,
        base=base,
        quote=quote,
        mark_price=mark,
        contract_size=contract_size,
        price_tick=_number(m, "price_tick", path, default=0.01, positive=True),
        amount_step=step,
        tiers=tuple(tiers),
        hourly_volatility=_number(m, "hourly_volatility", path, default=DEFAULT_FACTOR_VOLATILITY, positive=True),
        beta=beta,
        funding_rate=funding,
        book_depth_levels=_integer(m, "book_depth_levels", path, default=DEFAULT_BOOK_LEVELS, minimum=1, maximum=1000),
        book_level_size=_number(m, "book_level_size", path, default=default_size, positive=True),
        book_level_ticks=_integer(m, "book_level_ticks", path, default=1, minimum=1, maximum=1_000_000),
        liquidation_fee_rate=fee,
        inverse=venue == COINM or symbol.partition(":")[2] == base,
    )


def _account(doc: Any, path: str, markets: Mapping[str, Mapping[str, MarketSpec]]) -> AccountSpec:
    a = _mapping(doc, path, "an account")
    venue = _string(a, "venue", path)
    if venue not in VENUES:
        raise ScenarioError(f"{path}.venue", f"must be one of {', '.join(VENUES)}, got {venue!r}")
    if venue == HYPERLIQUID:
        return _hyperliquid_account(a, path, markets)
    passphrase = a.get("passphrase")
    if venue == "okx" and not isinstance(passphrase, str):
        raise ScenarioError(f"{path}.passphrase", "OKX keys need a passphrase")
    perms = _mapping(a.get("permissions") or {}, f"{path}.permissions", "permissions")
    mode = str(a.get("account_mode") or "single_asset")
    multi = mode != "single_asset"
    allowed = {"multi_asset": ("binanceusdm", "bybit", "okx"), "portfolio": ("binanceusdm",)}
    if multi and venue not in allowed.get(mode, ()):
        raise ScenarioError(
            f"{path}.account_mode", f"multi_asset on binanceusdm, bybit or okx, portfolio on binanceusdm; got {mode!r}"
        )
    wallet = _number(a, "wallet_balance", path, minimum=0.0, default=0.0 if multi else None)
    fee = a.get("taker_fee")
    positions = parse_positions(a.get("positions", []), f"{path}.positions", venue, markets)
    assets = _collateral_assets(a.get("assets"), f"{path}.assets", markets.get(venue, {})) if multi else ()
    return AccountSpec(
        account_mode=mode,
        collateral_assets=assets,
        venue=venue,
        api_key=_string(a, "api_key", path),
        secret=_string(a, "secret", path),
        passphrase=passphrase if isinstance(passphrase, str) else None,
        can_trade=bool(perms.get("trade", False)),
        can_withdraw=bool(perms.get("withdraw", False)),
        collateral=str(a.get("collateral") or "USDT"),
        wallet_balance=wallet,
        positions=positions,
        name=str(a.get("name") or a.get("api_key")),
        taker_fee=None if fee is None else _number(a, "taker_fee", path, minimum=0.0),
    )


def _collateral_assets(doc: Any, path: str, markets: Mapping[str, MarketSpec]) -> tuple[CollateralAssetSpec, ...]:
    if not isinstance(doc, list) or not doc:
        raise ScenarioError(path, "a multi_asset account needs a non-empty list of assets")
    result = []
    for i, raw in enumerate(doc):
        where = f"{path}[{i}]"
        a = _mapping(raw, where, "an asset")
        symbol = a.get("price_symbol")
        if symbol is not None and symbol not in markets:
            raise ScenarioError(f"{where}.price_symbol", f"no market {symbol!r} on this venue")
        price = None if symbol is not None else _number(a, "price", where, positive=True)
        if a.get("collateral_ratio") is not None:
            tiers: tuple[tuple[float, float | None, float], ...] = ((0.0, None, _number(a, "collateral_ratio", where)),)
        else:
            bands = a.get("collateral_tiers")
            if not isinstance(bands, list) or not bands:
                raise ScenarioError(f"{where}.collateral_tiers", "give collateral_ratio or a list of bands")
            tiers = tuple(
                (
                    _number(b, "min_amount", f"{where}.collateral_tiers[{j}]", minimum=0.0),
                    None if b.get("max_amount") is None else _number(b, "max_amount", f"{where}.collateral_tiers[{j}]"),
                    _number(b, "ratio", f"{where}.collateral_tiers[{j}]", minimum=0.0),
                )
                for j, b in enumerate(
                    _mapping(b, f"{where}.collateral_tiers[{k}]", "a band") for k, b in enumerate(bands)
                )
            )
        result.append(
            CollateralAssetSpec(_string(a, "asset", where), _number(a, "amount", where), price, symbol, tiers)
        )
    return tuple(result)


def _hyperliquid_account(
    a: Mapping[str, Any], path: str, markets: Mapping[str, Mapping[str, MarketSpec]]
) -> AccountSpec:
    """A Hyperliquid account: its wallet address, no key: reads need only the address."""
    for key in ("api_key", "secret", "passphrase"):
        if a.get(key) is not None:
            raise ScenarioError(f"{path}.{key}", "Hyperliquid accounts have a wallet_address and no keys")
    address = _string(a, "wallet_address", path)
    if not WALLET_ADDRESS.match(address):
        raise ScenarioError(f"{path}.wallet_address", f"must be 0x and 40 hex digits, got {address!r}")
    collateral = str(a.get("collateral") or "USDC")
    if collateral != "USDC":
        raise ScenarioError(f"{path}.collateral", f"Hyperliquid perpetuals are margined in USDC, got {collateral!r}")
    fee = a.get("taker_fee")
    return AccountSpec(
        venue=HYPERLIQUID,
        api_key=address.lower(),
        secret="",
        passphrase=None,
        can_trade=False,
        can_withdraw=False,
        collateral=collateral,
        wallet_balance=_number(a, "wallet_balance", path, minimum=0.0),
        positions=parse_positions(a.get("positions", []), f"{path}.positions", HYPERLIQUID, markets),
        name=str(a.get("name") or address),
        taker_fee=None if fee is None else _number(a, "taker_fee", path, minimum=0.0),
    )


def _hyperliquid_rate(tier: Mapping[str, Any], path: str, max_leverage: float) -> float:
    """Hyperliquid's maintenance rate: half the initial rate at the tier's max leverage
    (docs, "Margin tiers"); an integer leverage, as Hyperliquid's tables have."""
    if max_leverage != int(max_leverage):
        raise ScenarioError(f"{path}.max_leverage", f"must be a whole number on Hyperliquid, got {max_leverage:g}")
    rate = 1.0 / (2.0 * max_leverage)
    given = tier.get("maintenance_margin_rate")
    if given is not None and (not isinstance(given, int | float) or abs(given - rate) > 1e-12):
        raise ScenarioError(
            f"{path}.maintenance_margin_rate",
            f"is 1 / (2 x max_leverage) = {rate:g} on Hyperliquid (leave it out), got {given!r}",
        )
    return rate


def _position(doc: Any, path: str, venue: str, markets: Mapping[str, Mapping[str, MarketSpec]]) -> PositionSpec:
    p = _mapping(doc, path, "a position")
    symbol = _string(p, "symbol", path)
    if symbol not in markets.get(venue, {}):
        raise ScenarioError(f"{path}.symbol", f"{symbol} is not among markets.{venue}")
    side = _string(p, "side", path)
    if side not in ("long", "short"):
        raise ScenarioError(f"{path}.side", f"must be long or short, got {side!r}")
    mode = _string(p, "margin_mode", path)
    if mode not in ("cross", "isolated"):
        raise ScenarioError(f"{path}.margin_mode", f"must be cross or isolated, got {mode!r}")
    isolated = p.get("isolated_margin")
    if mode == "isolated":
        isolated = _number(p, "isolated_margin", path, positive=True)
    elif isolated is not None:
        raise ScenarioError(f"{path}.isolated_margin", "only for isolated positions")
    leverage = p.get("leverage")
    return PositionSpec(
        symbol=symbol,
        side=side,
        contracts=_number(p, "contracts", path, positive=True),
        entry_price=_number(p, "entry_price", path, positive=True),
        margin_mode=mode,
        isolated_margin=isolated,
        leverage=None if leverage is None else _number(p, "leverage", path, positive=True),
    )


def _integer(obj: Mapping[str, Any], key: str, path: str, *, default: int, minimum: int, maximum: int) -> int:
    where = f"{path}.{key}" if path else key
    value = obj.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
        raise ScenarioError(where, f"must be an integer from {minimum} to {maximum}, got {value!r}")
    return value


def _mapping(value: Any, path: str, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ScenarioError(path, f"{what} must be a JSON object")
    return value


def _string(obj: Mapping[str, Any], key: str, path: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str) or not value:
        raise ScenarioError(f"{path}.{key}" if path else key, f"must be a non-empty string, got {value!r}")
    return value


def _number(
    obj: Mapping[str, Any],
    key: str,
    path: str,
    *,
    default: float | None = None,
    positive: bool = False,
    minimum: float | None = None,
) -> float:
    where = f"{path}.{key}" if path else key
    value = obj.get(key)
    if value is None:
        if default is None:
            raise ScenarioError(where, "missing")
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ScenarioError(where, f"must be a finite number, got {value!r}")
    if positive and value <= 0:
        raise ScenarioError(where, f"must be > 0, got {value!r}")
    if minimum is not None and value < minimum:
        raise ScenarioError(where, f"must be >= {minimum:g}, got {value!r}")
    return float(value)
