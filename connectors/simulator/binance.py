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

from connectors.simulator.common import (
    Route,
    SimRequest,
    VenueError,
    VenueSpec,
    fixed,
    places_of,
    plain,
    signed,
)
from connectors.simulator.figures import AccountFigures, PositionFigures, market_tiers
from connectors.simulator.scenario import AccountSpec
from connectors.simulator.state import SimState

FAPI = "fapi.binance.com"
SPOT = "api.binance.com"
DEFAULT_RECV_WINDOW = 5000  # Binance's default when the request gives none
UNBOUNDED_CAP = 9_000_000_000  # Binance always publishes a finite last cap


def market_id(symbol: str) -> str:
    """BTC/USDT:USDT -> BTCUSDT."""
    return symbol.split(":")[0].replace("/", "")


def _error(status: int, code: int, msg: str) -> VenueError:
    return VenueError(status, {"code": code, "msg": msg})


def error(kind: str, req: SimRequest) -> VenueError:
    """Binance's answers for the simulator's generic faults."""
    if kind == "rate_limit":
        return _error(429, -1003, "Too many requests; current limit of IP(127.0.0.1) is 2400 requests "
                      "per minute. Please use the websocket for live updates to avoid polling the API.")
    if kind == "maintenance":
        # ccxt maps this message (exact match) to OnMaintenance.
        return _error(503, 1, "System is under maintenance.")
    if kind == "stale_timestamp":
        return _error(400, -1021, "Timestamp for this request is outside of the recvWindow.")
    return VenueError(404, "<html><body><h2>404 Not found</h2></body></html>")


def authenticate(req: SimRequest, state: SimState) -> AccountSpec:
    """Check key, timestamp window and signature like Binance (codes -2014, -2015, -1102,
    -1021, -1022)."""
    key = req.headers.get("X-MBX-APIKEY", "")
    if not key:
        raise _error(401, -2014, "API-key format invalid.")
    account = state.account("binanceusdm", key)
    if account is None:
        raise _error(401, -2015, "Invalid API-key, IP, or permissions for action.")
    try:
        timestamp = int(req.query["timestamp"])
        recv_window = int(req.query.get("recvWindow", DEFAULT_RECV_WINDOW))
    except (KeyError, ValueError):
        raise _error(400, -1102, "Mandatory parameter 'timestamp' was not sent, was empty/null, "
                     "or malformed.") from None
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
        symbols.append({
            "symbol": market_id(market.symbol), "pair": market_id(market.symbol),
            "contractType": "PERPETUAL", "deliveryDate": 4133404800000, "onboardDate": 1569398400000,
            "status": "TRADING", "maintMarginPercent": "2.5000", "requiredMarginPercent": "5.0000",
            "baseAsset": market.base, "quoteAsset": market.quote, "marginAsset": market.quote,
            # ccxt derives cross collateral and marginRatio from these precisions: keep them.
            "pricePrecision": places_of(market.price_tick),
            "quantityPrecision": places_of(market.amount_step),
            "baseAssetPrecision": 8, "quotePrecision": 8,
            "underlyingType": "COIN", "underlyingSubType": [], "settlePlan": 0,
            "triggerProtect": "0.0500", "liquidationFee": "0.012500", "marketTakeBound": "0.05",
            "maxMoveOrderLimit": 10000,
            "filters": [
                {"filterType": "PRICE_FILTER", "minPrice": tick, "maxPrice": "4529764", "tickSize": tick},
                {"filterType": "LOT_SIZE", "stepSize": step, "maxQty": "1000", "minQty": step},
                {"filterType": "MARKET_LOT_SIZE", "stepSize": step, "maxQty": "120", "minQty": step},
                {"filterType": "MAX_NUM_ORDERS", "limit": 200},
                {"filterType": "MAX_NUM_ALGO_ORDERS", "limit": 10},
                {"filterType": "MIN_NOTIONAL", "notional": "100"},
                {"filterType": "PERCENT_PRICE", "multiplierUp": "1.0500", "multiplierDown": "0.9500",
                 "multiplierDecimal": "4"},
            ],
            "orderTypes": ["LIMIT", "MARKET", "STOP", "STOP_MARKET", "TAKE_PROFIT",
                           "TAKE_PROFIT_MARKET", "TRAILING_STOP_MARKET"],
            "timeInForce": ["GTC", "IOC", "FOK", "GTX", "GTD"],
        })
    return {
        "timezone": "UTC", "serverTime": req.now_ms, "futuresType": "U_MARGINED",
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
        "walletBalance": fixed(wallet), "unrealizedProfit": fixed(fig.total_upl),
        "marginBalance": fixed(wallet + fig.total_upl), "maintMargin": fixed(maint),
        "initialMargin": fixed(initial), "positionInitialMargin": fixed(initial),
        "openOrderInitialMargin": fixed(0.0), "crossWalletBalance": fixed(fig.wallet_balance),
        "crossUnPnl": fixed(fig.cross_upl), "availableBalance": fixed(available),
        "maxWithdrawAmount": fixed(min(available, fig.wallet_balance)),
    }
    return {
        "totalInitialMargin": money["initialMargin"], "totalMaintMargin": money["maintMargin"],
        "totalWalletBalance": money["walletBalance"], "totalUnrealizedProfit": money["unrealizedProfit"],
        "totalMarginBalance": money["marginBalance"],
        "totalPositionInitialMargin": money["positionInitialMargin"],
        "totalOpenOrderInitialMargin": money["openOrderInitialMargin"],
        "totalCrossWalletBalance": money["crossWalletBalance"], "totalCrossUnPnl": money["crossUnPnl"],
        "availableBalance": money["availableBalance"], "maxWithdrawAmount": money["maxWithdrawAmount"],
        # ccxt skips an asset whose updateTime is 0.
        "assets": [{"asset": account.collateral, **money, "marginAvailable": True, "updateTime": updated}],
        "positions": [{
            "symbol": market_id(p.spec.symbol), "positionSide": _position_side(fig, p),
            "positionAmt": plain(p.sign * p.spec.contracts), "unrealizedProfit": fixed(p.unrealized_pnl),
            "isolatedMargin": _isolated_margin(p), "notional": fixed(p.sign * p.notional),
            "isolatedWallet": fixed(p.spec.isolated_margin or 0.0), "initialMargin": fixed(p.initial_margin),
            "maintMargin": fixed(p.maintenance_margin), "updateTime": updated,
        } for p in fig.positions],
    }


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
        rows.append({
            "symbol": market_id(p.spec.symbol), "positionSide": _position_side(fig, p),
            "positionAmt": plain(p.sign * p.spec.contracts), "entryPrice": plain(p.spec.entry_price),
            "breakEvenPrice": plain(break_even, 8), "markPrice": fixed(p.mark),
            "unRealizedProfit": fixed(p.unrealized_pnl),
            "liquidationPrice": fixed(p.liquidation_price, none="0"),
            "isolatedMargin": _isolated_margin(p), "notional": fixed(p.sign * p.notional),
            "marginAsset": account.collateral, "isolatedWallet": fixed(p.spec.isolated_margin or 0.0),
            "initialMargin": fixed(p.initial_margin), "maintMargin": fixed(p.maintenance_margin),
            "positionInitialMargin": fixed(p.initial_margin), "openOrderInitialMargin": "0",
            "adl": 2, "bidNotional": "0", "askNotional": "0", "updateTime": state.started_ms,
        })
    return rows


def _leverage_bracket(req: SimRequest, account: AccountSpec | None, state: SimState) -> list | dict:
    wanted = req.query.get("symbol")
    entries = []
    for market in state.markets.get("binanceusdm", {}).values():
        if wanted and market_id(market.symbol) != wanted:
            continue
        brackets = [{
            "bracket": i + 1, "initialLeverage": int(t.max_leverage or 1),
            "notionalCap": UNBOUNDED_CAP if t.max_notional == float("inf") else t.max_notional,
            "notionalFloor": t.min_notional, "maintMarginRatio": t.maintenance_margin_rate,
            "cum": t.maintenance_amount,
        } for i, t in enumerate(market_tiers(market))]
        entries.append({"symbol": market_id(market.symbol), "notionalCoef": 1.0, "brackets": brackets})
    if wanted:
        if not entries:
            raise _error(400, -1121, "Invalid symbol.")
        return entries[0]  # with a symbol Binance answers one object, not a list
    return entries


def _api_restrictions(req: SimRequest, account: AccountSpec | None, state: SimState) -> dict:
    account = signed(account)
    return {
        "ipRestrict": account.can_withdraw, "createTime": state.started_ms - 86_400_000,
        "enableReading": True, "enableWithdrawals": account.can_withdraw,
        "enableInternalTransfer": False, "enableMargin": False, "enableFutures": account.can_trade,
        "permitsUniversalTransfer": False, "enableVanillaOptions": False,
        "enableFixApiTrade": False, "enableFixReadOnly": False,
        "enableSpotAndMarginTrading": account.can_trade, "enablePortfolioMarginTrading": False,
    }


def _neg(value: object) -> str:
    return "-" + str(value).lstrip("-")


VENUE = VenueSpec(
    name="binanceusdm",
    hosts=(FAPI, SPOT),
    routes={
        ("GET", "/fapi/v1/time"): Route(_time, host=FAPI),
        ("GET", "/fapi/v1/exchangeInfo"): Route(_exchange_info, host=FAPI),
        ("GET", "/fapi/v3/account"): Route(_account, signed=True, host=FAPI),
        ("GET", "/fapi/v3/positionRisk"): Route(_position_risk, signed=True, host=FAPI),
        ("GET", "/fapi/v1/leverageBracket"): Route(_leverage_bracket, signed=True, host=FAPI),
        ("GET", "/sapi/v1/account/apiRestrictions"): Route(_api_restrictions, signed=True, host=SPOT),
    },
    authenticate=authenticate,
    error=error,
    key_fields=("markPrice", "liquidationPrice", "walletBalance", "maintMarginRatio", "pricePrecision"),
    wrong_types={
        "markPrice": lambda v: None, "positionAmt": _neg, "unRealizedProfit": lambda v: "n/a",
        "walletBalance": lambda v: "n/a", "maintMarginRatio": str, "notionalFloor": str,
    },
)
