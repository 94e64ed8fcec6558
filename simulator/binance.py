"""Binance USD-M futures (fapi.binance.com) and the key-permission endpoint of the spot API
(api.binance.com), as ccxt's binanceusdm calls them.

Signed requests carry X-MBX-APIKEY and `timestamp`, `recvWindow` and `signature` in the
query; the signature is the hex HMAC-SHA256 of the query string before "&signature=".
Payload shapes follow Binance's responses recorded in ccxt's tests
(tests/fixtures/ccxt/binance.*.json): numbers as strings, except leverageBracket's.

Money: `walletBalance` is the whole wallet (cross wallet + isolated wallets), as on Binance;
`crossWalletBalance` is the scenario's `wallet_balance`.
"""

from __future__ import annotations

import hashlib
import hmac

from margin.collateral import AssetFigures
from simulator.common import (
    Route,
    SimRequest,
    VenueError,
    VenueSpec,
    fixed,
    int_param,
    negated,
    places_of,
    plain,
    signed,
)
from simulator.figures import AccountFigures, PositionFigures, market_tiers
from simulator.liquidation import LiquidationRecord
from simulator.market import HOUR_MS, Candle, next_funding_ms, order_book, window
from simulator.scenario import AccountSpec, MarketSpec
from simulator.state import SimState

FAPI = "fapi.binance.com"
SPOT = "api.binance.com"
PAPI = "papi.binance.com"  # Portfolio Margin
DEFAULT_RECV_WINDOW = 5000  # Binance's default when the request gives none
UNBOUNDED_CAP = 9_000_000_000  # Binance always publishes a finite last cap
INTERVALS = {"1h": 1, "2h": 2, "4h": 4, "6h": 6, "8h": 8, "12h": 12, "1d": 24}  # hours; the simulator's
KLINE_LIMIT = (500, 1500)  # default, max
DEPTH_LIMITS = (5, 10, 20, 50, 100, 500, 1000)
DEPTH_DEFAULT = 500
FORCE_ORDERS_LIMIT = (50, 100)
USER_TRADES_LIMIT = (500, 1000)
WEEK_MS = 7 * 24 * HOUR_MS


def market_id(symbol: str) -> str:
    """BTC/USDT:USDT -> BTCUSDT."""
    return symbol.split(":")[0].replace("/", "")


def _error(status: int, code: int, msg: str) -> VenueError:
    return VenueError(status, {"code": code, "msg": msg})


def error(kind: str, req: SimRequest) -> VenueError:
    """Binance's answers for the simulator's generic faults."""
    if kind == "rate_limit":
        return _error(
            429,
            -1003,
            "Too many requests; current limit of IP(127.0.0.1) is 2400 requests "
            "per minute. Please use the websocket for live updates to avoid polling the API.",
        )
    if kind == "maintenance":
        # ccxt maps this message (exact match) to OnMaintenance.
        return _error(503, 1, "System is under maintenance.")
    if kind == "stale_timestamp":
        return _error(400, -1021, "Timestamp for this request is outside of the recvWindow.")
    return VenueError(404, "<html><body><h2>404 Not found</h2></body></html>")


def authenticate(req: SimRequest, state: SimState) -> AccountSpec:
    """Check key, timestamp window and signature like Binance (codes -2014, -2015, -1102,
    -1021, -1022). The spot host's key check answers for COIN-M keys too (one Binance
    key reaches every Binance API)."""
    venues = ("binanceusdm", "binancecoinm") if req.host == SPOT else ("binanceusdm",)
    return authenticate_on(req, state, venues)


def authenticate_on(req: SimRequest, state: SimState, venues: tuple[str, ...]) -> AccountSpec:
    """Binance's key, timestamp and signature checks for an account of one of `venues`."""
    key = req.headers.get("X-MBX-APIKEY", "")
    if not key:
        raise _error(401, -2014, "API-key format invalid.")
    account = next((a for v in venues if (a := state.account(v, key)) is not None), None)
    if account is None:
        raise _error(401, -2015, "Invalid API-key, IP, or permissions for action.")
    try:
        timestamp = int(req.query["timestamp"])
        recv_window = int(req.query.get("recvWindow", DEFAULT_RECV_WINDOW))
    except (KeyError, ValueError):
        raise _error(
            400, -1102, "Mandatory parameter 'timestamp' was not sent, was empty/null, or malformed."
        ) from None
    if recv_window > 60000:
        raise _error(400, -1131, "recvWindow must be less than 60000")
    # Binance accepts a timestamp at most 1 s ahead and recvWindow ms behind its clock.
    if timestamp >= req.now_ms + 1000 or req.now_ms - timestamp > recv_window:
        raise error("stale_timestamp", req)
    payload, sep, signature = req.raw_query.rpartition("&signature=")
    expected = hmac.new(account.secret.encode(), payload.encode(), hashlib.sha256).hexdigest()
    if not sep or not hmac.compare_digest(signature, expected):
        raise _error(400, -1022, "Signature for this request is not valid.")
    return account


# --- public --------------------------------------------------------------------------


def _time(req: SimRequest, account: AccountSpec | None, state: SimState) -> dict:
    return {"serverTime": req.now_ms}


def _exchange_info(req: SimRequest, account: AccountSpec | None, state: SimState) -> dict:
    symbols = []
    for market in state.markets.get("binanceusdm", {}).values():
        tick, step = plain(market.price_tick), plain(market.amount_step)
        symbols.append(
            {
                "symbol": market_id(market.symbol),
                "pair": market_id(market.symbol),
                "contractType": "PERPETUAL",
                "deliveryDate": 4133404800000,
                "onboardDate": 1569398400000,
                "status": "TRADING",
                "maintMarginPercent": "2.5000",
                "requiredMarginPercent": "5.0000",
                "baseAsset": market.base,
                "quoteAsset": market.quote,
                "marginAsset": market.quote,
                # ccxt derives cross collateral and marginRatio from these precisions: keep them.
                "pricePrecision": places_of(market.price_tick),
                "quantityPrecision": places_of(market.amount_step),
                "baseAssetPrecision": 8,
                "quotePrecision": 8,
                "underlyingType": "COIN",
                "underlyingSubType": [],
                "settlePlan": 0,
                "triggerProtect": "0.0500",
                "liquidationFee": f"{market.liquidation_fee_rate:.6f}",
                "marketTakeBound": "0.05",
                "maxMoveOrderLimit": 10000,
                "filters": [
                    {"filterType": "PRICE_FILTER", "minPrice": tick, "maxPrice": "4529764", "tickSize": tick},
                    {"filterType": "LOT_SIZE", "stepSize": step, "maxQty": "1000", "minQty": step},
                    {"filterType": "MARKET_LOT_SIZE", "stepSize": step, "maxQty": "120", "minQty": step},
                    {"filterType": "MAX_NUM_ORDERS", "limit": 200},
                    {"filterType": "MAX_NUM_ALGO_ORDERS", "limit": 10},
                    {"filterType": "MIN_NOTIONAL", "notional": "100"},
                    {
                        "filterType": "PERCENT_PRICE",
                        "multiplierUp": "1.0500",
                        "multiplierDown": "0.9500",
                        "multiplierDecimal": "4",
                    },
                ],
                "orderTypes": [
                    "LIMIT",
                    "MARKET",
                    "STOP",
                    "STOP_MARKET",
                    "TAKE_PROFIT",
                    "TAKE_PROFIT_MARKET",
                    "TRAILING_STOP_MARKET",
                ],
                "timeInForce": ["GTC", "IOC", "FOK", "GTX", "GTD"],
            }
        )
    return {
        "timezone": "UTC",
        "serverTime": req.now_ms,
        "futuresType": "U_MARGINED",
        "rateLimits": [
            {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 2400},
            {"rateLimitType": "ORDERS", "interval": "MINUTE", "intervalNum": 1, "limit": 1200},
        ],
        "exchangeFilters": [],
        "assets": [{"asset": "USDT", "marginAvailable": True, "autoAssetExchange": "-10000"}],
        "symbols": symbols,
    }


# --- signed --------------------------------------------------------------------------


def _position_side(fig: AccountFigures, p: PositionFigures) -> str:
    if not fig.hedge_mode:
        return "BOTH"
    return "LONG" if p.spec.side == "long" else "SHORT"


def _account(req: SimRequest, account: AccountSpec | None, state: SimState) -> dict:
    account = signed(account)
    fig = state.figures(account)
    wallet = fig.wallet_balance + fig.isolated_margin
    maint = sum(p.maintenance_margin for p in fig.positions)
    initial = sum(p.initial_margin for p in fig.positions)
    available = max(0.0, fig.wallet_balance + fig.cross_upl - fig.cross_initial)
    updated = state.started_ms
    money = {
        "walletBalance": fixed(wallet),
        "unrealizedProfit": fixed(fig.total_upl),
        "marginBalance": fixed(wallet + fig.total_upl),
        "maintMargin": fixed(maint),
        "initialMargin": fixed(initial),
        "positionInitialMargin": fixed(initial),
        "openOrderInitialMargin": fixed(0.0),
        "crossWalletBalance": fixed(fig.wallet_balance),
        "crossUnPnl": fixed(fig.cross_upl),
        "availableBalance": fixed(available),
        "maxWithdrawAmount": fixed(min(available, fig.wallet_balance)),
    }
    assets = [{"asset": account.collateral, **money, "marginAvailable": True, "updateTime": updated}]
    if fig.collateral:  # issue 13: Multi-Assets mode, one row per margin asset, totals in USD
        assets = [_asset_row(money, row, account, fig, updated) for row in fig.collateral]
        money = {
            **money,
            "maintMargin": fixed(fig.venue_maintenance or 0.0),
            "marginBalance": fixed(fig.cross_equity),
            "walletBalance": fixed(sum(r.amount * r.price for r in fig.collateral)),
        }
    return {
        "totalInitialMargin": money["initialMargin"],
        "totalMaintMargin": money["maintMargin"],
        "totalWalletBalance": money["walletBalance"],
        "totalUnrealizedProfit": money["unrealizedProfit"],
        "totalMarginBalance": money["marginBalance"],
        "totalPositionInitialMargin": money["positionInitialMargin"],
        "totalOpenOrderInitialMargin": money["openOrderInitialMargin"],
        "totalCrossWalletBalance": money["crossWalletBalance"],
        "totalCrossUnPnl": money["crossUnPnl"],
        "availableBalance": money["availableBalance"],
        "maxWithdrawAmount": money["maxWithdrawAmount"],
        # ccxt skips an asset whose updateTime is 0.
        "assets": assets,
        "positions": [
            {
                "symbol": market_id(p.spec.symbol),
                "positionSide": _position_side(fig, p),
                "positionAmt": plain(p.sign * p.spec.contracts),
                "unrealizedProfit": fixed(p.unrealized_pnl),
                "isolatedMargin": _isolated_margin(p),
                "notional": fixed(p.sign * p.notional),
                "isolatedWallet": fixed(p.spec.isolated_margin or 0.0),
                "initialMargin": fixed(p.initial_margin),
                "maintMargin": fixed(p.maintenance_margin),
                "updateTime": updated,
            }
            for p in fig.positions
        ],
    }


def _asset_row(money: dict, row: AssetFigures, account: AccountSpec, fig: AccountFigures, updated: int) -> dict:
    """One margin asset in Multi-Assets mode: the settle asset holds the positions' PnL."""
    settle = row.asset == account.collateral
    upl = fig.total_upl if settle else 0.0
    return {
        **money,
        "asset": row.asset,
        "walletBalance": fixed(row.amount),
        "crossWalletBalance": fixed(row.amount),
        "unrealizedProfit": fixed(upl),
        "crossUnPnl": fixed(upl),
        "marginBalance": fixed(row.amount + upl),
        "maintMargin": money["maintMargin"] if settle else fixed(0.0),
        "marginAvailable": True,
        "updateTime": updated,
    }


def _multi_assets_margin(req: SimRequest, account: AccountSpec | None, state: SimState) -> dict:
    """GET /fapi/v1/multiAssetsMargin: whether the account is in Multi-Assets mode."""
    spec = signed(account)
    return {"multiAssetsMargin": spec.account_mode == "multi_asset"}


def _asset_index(req: SimRequest, account: AccountSpec | None, state: SimState) -> list:
    """GET /fapi/v1/assetIndex: each margin asset's USD index and haircut (bidBuffer) as the
    scenario's Binance accounts give them (a flat ratio: the first band)."""
    rows: dict[str, dict] = {}
    marks = state.marks("binanceusdm")
    for spec in state.accounts():
        if spec.venue != "binanceusdm":
            continue
        for asset in spec.collateral_assets:
            price = marks[asset.price_symbol] if asset.price_symbol else float(asset.price or 0.0)
            buffer = 1.0 - asset.tiers[0][2]
            rows.setdefault(
                asset.asset,
                {
                    "symbol": f"{asset.asset}USD",
                    "time": req.now_ms,
                    "index": fixed(price),
                    "bidBuffer": fixed(buffer),
                    "askBuffer": fixed(buffer),
                    "bidRate": fixed(price * (1 - buffer)),
                    "askRate": fixed(price * (1 + buffer)),
                },
            )
    return [rows[a] for a in sorted(rows)]


def _pm_balance(req: SimRequest, account: AccountSpec | None, state: SimState) -> list:
    """GET /papi/v1/balance: one row per asset of a Portfolio Margin account."""
    account = signed(account)
    fig = state.figures(account)
    rows = []
    for row in fig.collateral:
        upl = fig.total_upl if row.asset == account.collateral else 0.0
        rows.append(
            {
                "asset": row.asset,
                "totalWalletBalance": fixed(row.amount),
                "crossMarginAsset": "0.0",
                "crossMarginBorrowed": "0.0",
                "crossMarginFree": "0.0",
                "crossMarginInterest": "0.0",
                "crossMarginLocked": "0.0",
                "umWalletBalance": fixed(row.amount),
                "umUnrealizedPNL": fixed(upl),
                "cmWalletBalance": "0.0",
                "cmUnrealizedPNL": "0.0",
                "updateTime": state.started_ms,
                "negativeBalance": "0.0",
            }
        )
    return rows


def _pm_account(req: SimRequest, account: AccountSpec | None, state: SimState) -> dict:
    """GET /papi/v1/account: uniMMR = adjusted equity / maintenance (the venue's, before the
    1.05 liquidation level the engine applies)."""
    account = signed(account)
    fig = state.figures(account)
    venue_mm = fig.venue_maintenance or 0.0
    return {
        "uniMMR": fixed(fig.cross_equity / venue_mm) if venue_mm > 0 else "0",
        "accountEquity": fixed(fig.cross_equity),
        "actualEquity": fixed(sum(r.value for r in fig.collateral)),
        "accountInitialMargin": fixed(fig.cross_initial),
        "accountMaintMargin": fixed(venue_mm),
        "accountStatus": "NORMAL",
        "virtualMaxWithdrawAmount": fixed(max(0.0, fig.cross_equity - fig.cross_initial)),
        "totalAvailableBalance": fixed(max(0.0, fig.cross_equity - fig.cross_initial)),
        "totalMarginOpenLoss": "0",
        "updateTime": state.started_ms,
    }


def _pm_assets(state: SimState) -> dict[str, tuple[float, float]]:
    """asset -> (price, collateral rate) over the scenario's Binance accounts."""
    marks = state.marks("binanceusdm")
    result: dict[str, tuple[float, float]] = {}
    for spec in state.accounts():
        if spec.venue == "binanceusdm":
            for asset in spec.collateral_assets:
                price = marks[asset.price_symbol] if asset.price_symbol else asset.price
                result.setdefault(asset.asset, (price or 1.0, asset.tiers[0][2]))
    return result


def _pm_collateral_rates(req: SimRequest, account: AccountSpec | None, state: SimState) -> list:
    """GET /sapi/v1/portfolio/collateralRate."""
    return [{"asset": a, "collateralRate": fixed(r, 4)} for a, (_, r) in sorted(_pm_assets(state).items())]


def _pm_index_prices(req: SimRequest, account: AccountSpec | None, state: SimState) -> list:
    """GET /sapi/v1/portfolio/asset-index-price."""
    return [
        {"asset": f"{a}USD", "assetIndexPrice": fixed(p), "time": req.now_ms}
        for a, (p, _) in sorted(_pm_assets(state).items())
    ]


def _isolated_margin(p: PositionFigures) -> str:
    """Binance's isolatedMargin is the isolated wallet plus unrealized PnL; "0" for cross
    (ccxt reads the margin mode from it)."""
    if p.spec.margin_mode == "cross":
        return "0"
    return fixed((p.spec.isolated_margin or 0.0) + p.unrealized_pnl)


def _position_risk(req: SimRequest, account: AccountSpec | None, state: SimState) -> list:
    account = signed(account)
    fig = state.figures(account)
    wanted = req.query.get("symbol")
    rows = []
    for p in fig.positions:
        if wanted and market_id(p.spec.symbol) != wanted:
            continue
        break_even = p.spec.entry_price * (1 + p.sign * fig.taker_fee)
        rows.append(
            {
                "symbol": market_id(p.spec.symbol),
                "positionSide": _position_side(fig, p),
                "positionAmt": plain(p.sign * p.spec.contracts),
                "entryPrice": plain(p.spec.entry_price),
                "breakEvenPrice": plain(break_even, 8),
                "markPrice": fixed(p.mark),
                "unRealizedProfit": fixed(p.unrealized_pnl),
                "liquidationPrice": fixed(p.liquidation_price, none="0"),
                "isolatedMargin": _isolated_margin(p),
                "notional": fixed(p.sign * p.notional),
                "marginAsset": account.collateral,
                "isolatedWallet": fixed(p.spec.isolated_margin or 0.0),
                "initialMargin": fixed(p.initial_margin),
                "maintMargin": fixed(p.maintenance_margin),
                "positionInitialMargin": fixed(p.initial_margin),
                "openOrderInitialMargin": "0",
                "adl": 2,
                "bidNotional": "0",
                "askNotional": "0",
                "updateTime": state.started_ms,
            }
        )
    return rows


def _listen_key(req: SimRequest, account: AccountSpec | None, state: SimState) -> dict:
    """POST/PUT/DELETE /fapi/v1/listenKey: the user-data stream key, by API key only (no
    signature). POST returns the account's active key (the same one again, as Binance
    does: ccxt re-POSTs every 20 minutes and relies on it); PUT keeps it alive."""
    key = req.headers.get("X-MBX-APIKEY", "")
    if not key:
        raise _error(401, -2014, "API-key format invalid.")
    if state.account("binanceusdm", key) is None:
        raise _error(401, -2015, "Invalid API-key, IP, or permissions for action.")
    if req.method == "POST":
        return {"listenKey": state.listen_key("binanceusdm", key)}
    if req.method == "DELETE":
        state.delete_listen_key("binanceusdm", key)
        return {}
    if not state.has_listen_key("binanceusdm", key):  # PUT
        raise _error(400, -1125, "This listenKey does not exist.")
    return {}


def _leverage_bracket(req: SimRequest, account: AccountSpec | None, state: SimState) -> list | dict:
    wanted = req.query.get("symbol")
    entries = []
    for market in state.markets.get("binanceusdm", {}).values():
        if wanted and market_id(market.symbol) != wanted:
            continue
        brackets = [
            {
                "bracket": i + 1,
                "initialLeverage": int(t.max_leverage or 1),
                "notionalCap": UNBOUNDED_CAP if t.max_notional == float("inf") else t.max_notional,
                "notionalFloor": t.min_notional,
                "maintMarginRatio": t.maintenance_margin_rate,
                "cum": t.maintenance_amount,
            }
            for i, t in enumerate(market_tiers(market))
        ]
        entries.append({"symbol": market_id(market.symbol), "notionalCoef": 1.0, "brackets": brackets})
    if wanted:
        if not entries:
            raise _error(400, -1121, "Invalid symbol.")
        return entries[0]  # with a symbol Binance answers one object, not a list
    return entries


def _api_restrictions(req: SimRequest, account: AccountSpec | None, state: SimState) -> dict:
    account = signed(account)
    return {
        "ipRestrict": account.can_withdraw,
        "createTime": state.started_ms - 86_400_000,
        "enableReading": True,
        "enableWithdrawals": account.can_withdraw,
        "enableInternalTransfer": False,
        "enableMargin": False,
        "enableFutures": account.can_trade,
        "permitsUniversalTransfer": False,
        "enableVanillaOptions": False,
        "enableFixApiTrade": False,
        "enableFixReadOnly": False,
        "enableSpotAndMarginTrading": account.can_trade,
        "enablePortfolioMarginTrading": False,
    }


# --- market data ---------------------------------------------------------------------


def _market(req: SimRequest, state: SimState) -> MarketSpec | None:
    """The market of the `symbol` parameter, None without one (-1121 when unknown)."""
    wanted = req.query.get("symbol")
    if not wanted:
        return None
    for market in state.markets.get("binanceusdm", {}).values():
        if market_id(market.symbol) == wanted:
            return market
    raise _error(400, -1121, "Invalid symbol.")


def _required_market(req: SimRequest, state: SimState) -> MarketSpec:
    market = _market(req, state)
    if market is None:
        raise _error(400, -1102, "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed.")
    return market


def _bad_param(name: str) -> VenueError:
    return _error(400, -1130, f"Data sent for parameter '{name}' is not valid.")


def _candles(req: SimRequest, state: SimState) -> tuple[MarketSpec, list[Candle], int]:
    """The klines a /klines-style request selects: with startTime the first `limit` from
    it, otherwise the last `limit` up to endTime (or now); oldest first."""
    market = _required_market(req, state)
    hours = INTERVALS.get(req.query.get("interval", ""))
    if hours is None:
        raise _error(400, -1120, "Invalid interval.")
    limit = int_param(req.query, "limit", KLINE_LIMIT[0], lambda: _bad_param("limit"))
    start = int_param(req.query, "startTime", None, lambda: _bad_param("startTime"))
    end = int_param(req.query, "endTime", None, lambda: _bad_param("endTime"))
    if limit is None or not 1 <= limit <= KLINE_LIMIT[1]:
        raise _bad_param("limit")
    candles = state.candles.candles("binanceusdm", market.symbol, req.now_ms, hours)
    return market, window(candles, start=start, end=end, limit=limit, oldest_first=start is not None), hours * HOUR_MS


def _klines(req: SimRequest, account: AccountSpec | None, state: SimState) -> list:
    market, candles, width = _candles(req, state)
    places = places_of(market.price_tick)
    rows = []
    for c in candles:
        quote = c.volume * c.close
        rows.append(
            [
                c.ts,
                plain(c.open, places + 4),
                plain(c.high, places + 4),
                plain(c.low, places + 4),
                plain(c.close, places + 4),
                plain(c.volume, 8),
                c.ts + width - 1,
                fixed(quote, 5),
                max(1, int(quote / 5000)),
                plain(c.volume / 2, 8),
                fixed(quote / 2, 5),
                "0",
            ]
        )
    return rows


def _mark_price_klines(req: SimRequest, account: AccountSpec | None, state: SimState) -> list:
    market, candles, width = _candles(req, state)
    places = places_of(market.price_tick) + 4
    return [
        [
            c.ts,
            plain(c.open, places),
            plain(c.high, places),
            plain(c.low, places),
            plain(c.close, places),
            "0",
            c.ts + width - 1,
            "0",
            60 * (width // HOUR_MS),
            "0",
            "0",
            "0",
        ]
        for c in candles
    ]


def _premium_index(req: SimRequest, account: AccountSpec | None, state: SimState) -> list | dict:
    wanted = _market(req, state)
    rows = []
    for market in state.markets.get("binanceusdm", {}).values():
        if wanted is not None and market is not wanted:
            continue
        mark = fixed(state.mark("binanceusdm", market.symbol))
        rows.append(
            {
                "symbol": market_id(market.symbol),
                "markPrice": mark,
                "indexPrice": mark,
                "estimatedSettlePrice": mark,
                # Binance calls it "last", but it is the rate of the running interval, paid at
                # nextFundingTime (ccxt's fundingRate).
                "lastFundingRate": fixed(state.funding_rate("binanceusdm", market.symbol)),
                "interestRate": "0.00010000",
                "nextFundingTime": next_funding_ms(req.now_ms),
                "time": req.now_ms,
            }
        )
    return rows[0] if wanted is not None else rows  # with a symbol Binance answers one object


def _depth(req: SimRequest, account: AccountSpec | None, state: SimState) -> dict:
    market = _required_market(req, state)
    limit = int_param(req.query, "limit", DEPTH_DEFAULT, lambda: _bad_param("limit"))
    if limit not in DEPTH_LIMITS:
        raise _error(
            400,
            -1100,
            "Illegal characters found in parameter 'limit'; legal range is "
            f"'{', '.join(str(n) for n in DEPTH_LIMITS)}'.",
        )
    bids, asks = order_book(market, state.mark("binanceusdm", market.symbol))
    price_places, qty_places = places_of(market.price_tick), places_of(market.amount_step)

    def levels(side: list[tuple[float, float]]) -> list[list[str]]:
        return [[fixed(p, price_places), fixed(q, qty_places)] for p, q in side[:limit]]

    return {
        "lastUpdateId": req.now_ms * 10,
        "E": req.now_ms,
        "T": req.now_ms,
        "bids": levels(bids),
        "asks": levels(asks),
    }


# --- liquidations and trades ---------------------------------------------------------


def _liquidations(
    req: SimRequest, account: AccountSpec, state: SimState, start: int | None, end: int | None
) -> list[LiquidationRecord]:
    market = _market(req, state)
    return [
        r
        for r in state.liquidations("binanceusdm", account.api_key)
        if (market is None or r.symbol == market.symbol)
        and (start is None or r.time_ms >= start)
        and (end is None or r.time_ms <= end)
    ]


def _record_side(r: LiquidationRecord) -> tuple[str, str]:
    """(order side, positionSide) of the closing order."""
    position_side = ("LONG" if r.side == "long" else "SHORT") if r.hedge_mode else "BOTH"
    return r.close_side.upper(), position_side


def _range(req: SimRequest) -> tuple[int | None, int | None]:
    start = int_param(req.query, "startTime", None, lambda: _bad_param("startTime"))
    end = int_param(req.query, "endTime", None, lambda: _bad_param("endTime"))
    if start is None:  # Binance: the 7 days before endTime (or now)
        start = (end if end is not None else req.now_ms) - WEEK_MS
    return start, end


def _limit(req: SimRequest, bounds: tuple[int, int]) -> int:
    limit = int_param(req.query, "limit", bounds[0], lambda: _bad_param("limit"))
    if limit is None or not 1 <= limit <= bounds[1]:
        raise _bad_param("limit")
    return limit


def _force_orders(req: SimRequest, account: AccountSpec | None, state: SimState) -> list:
    """The account's liquidation orders (autoCloseType LIQUIDATION; ADL: none), oldest first."""
    account = signed(account)
    kind = req.query.get("autoCloseType")
    if kind not in (None, "LIQUIDATION", "ADL"):
        raise _bad_param("autoCloseType")
    limit = _limit(req, FORCE_ORDERS_LIMIT)
    records = [] if kind == "ADL" else _liquidations(req, account, state, *_range(req))
    rows = []
    for r in records[-limit:]:
        places = places_of(state.markets["binanceusdm"][r.symbol].price_tick)
        side, position_side = _record_side(r)
        rows.append(
            {
                "orderId": 6071832819 + r.id,
                "symbol": market_id(r.symbol),
                "status": "FILLED",
                "clientOrderId": f"autoclose-{r.time_ms}{r.id:06d}",
                "price": fixed(r.price, places),
                "avgPrice": fixed(r.price, places + 3),
                "origQty": plain(r.contracts),
                "executedQty": plain(r.contracts),
                "cumQuote": fixed(r.size * r.price, 5),
                "timeInForce": "IOC",
                "type": "LIMIT",
                "reduceOnly": False,
                "closePosition": False,
                "side": side,
                "positionSide": position_side,
                "stopPrice": "0",
                "workingType": "CONTRACT_PRICE",
                "origType": "LIMIT",
                "time": r.time_ms,
                "updateTime": r.time_ms,
            }
        )
    return rows


def _user_trades(req: SimRequest, account: AccountSpec | None, state: SimState) -> list:
    """The account's fills: here only its liquidation fills (the simulator takes no
    orders), oldest first. `symbol` is required, as on Binance."""
    account = signed(account)
    _required_market(req, state)
    limit = _limit(req, USER_TRADES_LIMIT)
    from_id = int_param(req.query, "fromId", None, lambda: _bad_param("fromId"))
    start, end = _range(req) if from_id is None else (None, None)
    rows = []
    for r in _liquidations(req, account, state, start, end):
        trade_id = 698759 + r.id
        if from_id is not None and trade_id < from_id:
            continue
        places = places_of(state.markets["binanceusdm"][r.symbol].price_tick)
        side, position_side = _record_side(r)
        rows.append(
            {
                "buyer": side == "BUY",
                "commission": fixed(r.fee),
                "commissionAsset": account.collateral,
                "id": trade_id,
                "maker": False,
                "orderId": 6071832819 + r.id,
                "price": fixed(r.price, places),
                "qty": plain(r.contracts),
                "quoteQty": fixed(r.size * r.price, 5),
                "realizedPnl": fixed(r.realized_pnl),
                "side": side,
                "positionSide": position_side,
                "symbol": market_id(r.symbol),
                "time": r.time_ms,
            }
        )
    return rows[:limit] if from_id is not None else rows[-limit:]


VENUE = VenueSpec(
    name="binanceusdm",
    hosts=(FAPI, SPOT, PAPI),
    routes={
        ("GET", "/fapi/v1/time"): Route(_time, host=FAPI),
        ("GET", "/fapi/v1/exchangeInfo"): Route(_exchange_info, host=FAPI),
        ("GET", "/fapi/v3/account"): Route(_account, signed=True, host=FAPI),
        ("GET", "/fapi/v1/multiAssetsMargin"): Route(_multi_assets_margin, signed=True, host=FAPI),
        ("GET", "/papi/v1/balance"): Route(_pm_balance, signed=True, host=PAPI),
        ("GET", "/papi/v1/account"): Route(_pm_account, signed=True, host=PAPI),
        ("GET", "/papi/v1/um/positionRisk"): Route(_position_risk, signed=True, host=PAPI),
        ("GET", "/papi/v1/um/leverageBracket"): Route(_leverage_bracket, signed=True, host=PAPI),
        ("GET", "/sapi/v1/portfolio/collateralRate"): Route(_pm_collateral_rates, signed=True, host=SPOT),
        ("GET", "/sapi/v1/portfolio/asset-index-price"): Route(_pm_index_prices, host=SPOT),
        ("GET", "/fapi/v1/assetIndex"): Route(_asset_index, host=FAPI),
        ("GET", "/fapi/v3/positionRisk"): Route(_position_risk, signed=True, host=FAPI),
        ("GET", "/fapi/v1/leverageBracket"): Route(_leverage_bracket, signed=True, host=FAPI),
        ("GET", "/sapi/v1/account/apiRestrictions"): Route(_api_restrictions, signed=True, host=SPOT),
        ("GET", "/fapi/v1/klines"): Route(_klines, host=FAPI),
        ("GET", "/fapi/v1/markPriceKlines"): Route(_mark_price_klines, host=FAPI),
        ("GET", "/fapi/v1/premiumIndex"): Route(_premium_index, host=FAPI),
        ("GET", "/fapi/v1/depth"): Route(_depth, host=FAPI),
        ("GET", "/fapi/v1/forceOrders"): Route(_force_orders, signed=True, host=FAPI),
        ("GET", "/fapi/v1/userTrades"): Route(_user_trades, signed=True, host=FAPI),
        ("POST", "/fapi/v1/listenKey"): Route(_listen_key, host=FAPI),
        ("PUT", "/fapi/v1/listenKey"): Route(_listen_key, host=FAPI),
        ("DELETE", "/fapi/v1/listenKey"): Route(_listen_key, host=FAPI),
    },
    authenticate=authenticate,
    error=error,
    key_fields=(
        "markPrice",
        "liquidationPrice",
        "walletBalance",
        "maintMarginRatio",
        "pricePrecision",
        "lastFundingRate",
        "avgPrice",
    ),
    wrong_types={
        "markPrice": lambda v: None,
        "positionAmt": negated,
        "unRealizedProfit": lambda v: "n/a",
        "walletBalance": lambda v: "n/a",
        "maintMarginRatio": str,
        "notionalFloor": str,
        "lastFundingRate": lambda v: "n/a",
        "avgPrice": lambda v: "n/a",
    },
)
