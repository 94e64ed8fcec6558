"""Binance COIN-M futures (dapi.binance.com), as ccxt's binancecoinm calls them: inverse
contracts (BTCUSD_PERP, BTCUSD_261225) of `contract_size` USD each, margined in the coin.

Same signing and error shapes as USD-M (simulator.binance). Money is in the coin;
positionRisk's `notionalValue` (coin, signed like the position: ccxt reads the side from
it) replaces USD-M's `notional`; brackets are bounded in the coin (`qtyFloor`, `qtyCap`),
with `cum` in the coin ("How to Calculate Liquidation Price of COIN-M Futures Contracts").
"""

from __future__ import annotations

from datetime import UTC, datetime

from simulator.binance import (
    DEPTH_DEFAULT,
    DEPTH_LIMITS,
    INTERVALS,
    KLINE_LIMIT,
    UNBOUNDED_CAP,
    _bad_param,
    _error,
    authenticate_on,
    error,
)
from simulator.common import Route, SimRequest, VenueSpec, fixed, int_param, places_of, plain, signed
from simulator.figures import AccountFigures, PositionFigures, market_tiers
from simulator.market import HOUR_MS, Candle, next_funding_ms, order_book, window
from simulator.scenario import COINM, AccountSpec, MarketSpec
from simulator.state import SimState

DAPI = "dapi.binance.com"
PERPETUAL_DELIVERY = 4133404800000  # what Binance gives a perpetual as its delivery date


def market_id(symbol: str) -> str:
    """BTC/USD:BTC -> BTCUSD_PERP; BTC/USD:BTC-261225 -> BTCUSD_261225."""
    pair, _, settle = symbol.partition(":")
    _, _, expiry = settle.partition("-")
    return pair.replace("/", "") + "_" + (expiry or "PERP")


def _delivery_ms(symbol: str) -> int:
    expiry = symbol.partition(":")[2].partition("-")[2]
    if not expiry:
        return PERPETUAL_DELIVERY
    day = datetime.strptime(expiry, "%y%m%d").replace(hour=8, tzinfo=UTC)
    return int(day.timestamp() * 1000)


def authenticate(req: SimRequest, state: SimState) -> AccountSpec:
    return authenticate_on(req, state, (COINM,))


def _markets(state: SimState) -> list[MarketSpec]:
    return list(state.markets.get(COINM, {}).values())


def _time(req: SimRequest, account: AccountSpec | None, state: SimState) -> dict:
    return {"serverTime": req.now_ms}


def _exchange_info(req: SimRequest, account: AccountSpec | None, state: SimState) -> dict:
    symbols = []
    for market in _markets(state):
        tick, step = plain(market.price_tick), plain(market.amount_step)
        perpetual = _delivery_ms(market.symbol) == PERPETUAL_DELIVERY
        symbols.append(
            {
                "symbol": market_id(market.symbol),
                "pair": market.base + market.quote,
                "contractType": "PERPETUAL" if perpetual else "CURRENT_QUARTER",
                "deliveryDate": _delivery_ms(market.symbol),
                "onboardDate": 1597042800000,
                "contractStatus": "TRADING",
                "contractSize": int(market.contract_size)
                if market.contract_size == int(market.contract_size)
                else market.contract_size,
                "marginAsset": market.base,
                "maintMarginPercent": "2.5000",
                "requiredMarginPercent": "5.0000",
                "baseAsset": market.base,
                "quoteAsset": market.quote,
                # ccxt derives cross collateral from these precisions: keep them
                "pricePrecision": places_of(market.price_tick),
                "quantityPrecision": places_of(market.amount_step),
                "baseAssetPrecision": 8,
                "quotePrecision": 8,
                "equalQtyPrecision": 4,
                "triggerProtect": "0.0500",
                "underlyingType": "COIN",
                "underlyingSubType": [],
                "liquidationFee": f"{market.liquidation_fee_rate:.6f}",
                "marketTakeBound": "0.05",
                "filters": [
                    {"filterType": "PRICE_FILTER", "minPrice": tick, "maxPrice": "4520958", "tickSize": tick},
                    {"filterType": "LOT_SIZE", "stepSize": step, "maxQty": "1000000", "minQty": step},
                    {"filterType": "MARKET_LOT_SIZE", "stepSize": step, "maxQty": "60000", "minQty": step},
                    {"filterType": "MAX_NUM_ORDERS", "limit": 200},
                    {
                        "filterType": "PERCENT_PRICE",
                        "multiplierUp": "1.0500",
                        "multiplierDown": "0.9500",
                        "multiplierDecimal": 4,
                    },
                ],
                "orderTypes": ["LIMIT", "MARKET", "STOP", "STOP_MARKET", "TAKE_PROFIT", "TAKE_PROFIT_MARKET"],
                "timeInForce": ["GTC", "IOC", "FOK", "GTX"],
            }
        )
    return {
        "timezone": "UTC",
        "serverTime": req.now_ms,
        "rateLimits": [
            {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 2400},
            {"rateLimitType": "ORDERS", "interval": "MINUTE", "intervalNum": 1, "limit": 1200},
        ],
        "exchangeFilters": [],
        "symbols": symbols,
    }


def _position_side(fig: AccountFigures, p: PositionFigures) -> str:
    if not fig.hedge_mode:
        return "BOTH"
    return "LONG" if p.spec.side == "long" else "SHORT"


def _isolated_margin(p: PositionFigures) -> str:
    if p.spec.margin_mode == "cross":
        return "0"
    return fixed((p.spec.isolated_margin or 0.0) + p.unrealized_pnl)


def _account(req: SimRequest, account: AccountSpec | None, state: SimState) -> dict:
    """GET /dapi/v1/account: one asset (the account's coin), money in the coin."""
    account = signed(account)
    fig = state.figures(account)
    wallet = fig.wallet_balance + fig.isolated_margin
    maint = sum(p.maintenance_margin for p in fig.positions)
    initial = sum(p.initial_margin for p in fig.positions)
    available = max(0.0, fig.wallet_balance + fig.cross_upl - fig.cross_initial)
    return {
        "assets": [
            {
                "asset": account.collateral,
                "walletBalance": fixed(wallet),
                "unrealizedProfit": fixed(fig.total_upl),
                "marginBalance": fixed(wallet + fig.total_upl),
                "maintMargin": fixed(maint),
                "initialMargin": fixed(initial),
                "positionInitialMargin": fixed(initial),
                "openOrderInitialMargin": fixed(0.0),
                "maxWithdrawAmount": fixed(min(available, fig.wallet_balance)),
                "crossWalletBalance": fixed(fig.wallet_balance),
                "crossUnPnl": fixed(fig.cross_upl),
                "availableBalance": fixed(available),
                "updateTime": state.started_ms,
            }
        ],
        "positions": [
            {
                "symbol": market_id(p.spec.symbol),
                "positionAmt": plain(p.sign * p.spec.contracts),
                "initialMargin": fixed(p.initial_margin),
                "maintMargin": fixed(p.maintenance_margin),
                "unrealizedProfit": fixed(p.unrealized_pnl),
                "positionInitialMargin": fixed(p.initial_margin),
                "openOrderInitialMargin": "0",
                "leverage": plain(p.leverage),
                "isolated": p.spec.margin_mode == "isolated",
                "positionSide": _position_side(fig, p),
                "entryPrice": plain(p.spec.entry_price),
                "maxQty": "1000000",
                "updateTime": state.started_ms,
            }
            for p in fig.positions
        ],
        "canDeposit": True,
        "canTrade": account.can_trade,
        "canWithdraw": account.can_withdraw,
        "feeTier": 0,
        "updateTime": state.started_ms,
    }


def _position_risk(req: SimRequest, account: AccountSpec | None, state: SimState) -> list:
    """GET /dapi/v1/positionRisk."""
    account = signed(account)
    fig = state.figures(account)
    rows = []
    for p in fig.positions:
        rows.append(
            {
                "symbol": market_id(p.spec.symbol),
                "positionAmt": plain(p.sign * p.spec.contracts),
                "entryPrice": plain(p.spec.entry_price),
                "breakEvenPrice": plain(p.spec.entry_price * (1 + p.sign * fig.taker_fee), 8),
                "markPrice": fixed(p.mark),
                "unRealizedProfit": fixed(p.unrealized_pnl),
                "liquidationPrice": fixed(p.liquidation_price, none="0"),
                "leverage": plain(p.leverage),
                "maxQty": "1000000",
                "marginType": p.spec.margin_mode,
                "isolatedMargin": _isolated_margin(p),
                "isAutoAddMargin": "false",
                "positionSide": _position_side(fig, p),
                "notionalValue": fixed(p.sign * p.notional),
                "isolatedWallet": fixed(p.spec.isolated_margin or 0.0),
                "updateTime": state.started_ms,
            }
        )
    return rows


def _leverage_bracket(req: SimRequest, account: AccountSpec | None, state: SimState) -> list:
    """GET /dapi/v2/leverageBracket: brackets per symbol, bounded in the coin."""
    signed(account)
    wanted = req.query.get("symbol")
    entries = []
    for market in _markets(state):
        if wanted and market_id(market.symbol) != wanted:
            continue
        brackets = [
            {
                "bracket": i + 1,
                "initialLeverage": int(t.max_leverage or 1),
                "qtyCap": UNBOUNDED_CAP if t.max_notional == float("inf") else t.max_notional,
                "qtyFloor": t.min_notional,
                "maintMarginRatio": t.maintenance_margin_rate,
                "cum": t.maintenance_amount,
            }
            for i, t in enumerate(market_tiers(market))
        ]
        entries.append({"symbol": market_id(market.symbol), "brackets": brackets})
    if wanted and not entries:
        raise _error(400, -1121, "Invalid symbol.")
    return entries


def _premium_index(req: SimRequest, account: AccountSpec | None, state: SimState) -> list:
    """GET /dapi/v1/premiumIndex (always a list on COIN-M)."""
    wanted = req.query.get("symbol")
    rows = []
    for market in _markets(state):
        if wanted and market_id(market.symbol) != wanted:
            continue
        mark = fixed(state.mark(COINM, market.symbol))
        perpetual = _delivery_ms(market.symbol) == PERPETUAL_DELIVERY
        rows.append(
            {
                "symbol": market_id(market.symbol),
                "pair": market.base + market.quote,
                "markPrice": mark,
                "indexPrice": mark,
                "estimatedSettlePrice": mark,
                "lastFundingRate": fixed(state.funding_rate(COINM, market.symbol)) if perpetual else "",
                "interestRate": "0.00010000" if perpetual else "",
                "nextFundingTime": next_funding_ms(req.now_ms) if perpetual else 0,
                "time": req.now_ms,
            }
        )
    return rows


def _required_market(req: SimRequest, state: SimState) -> MarketSpec:
    wanted = req.query.get("symbol")
    if not wanted:
        raise _error(400, -1102, "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed.")
    for market in _markets(state):
        if market_id(market.symbol) == wanted:
            return market
    raise _error(400, -1121, "Invalid symbol.")


def _candles(req: SimRequest, state: SimState) -> tuple[MarketSpec, list[Candle], int]:
    market = _required_market(req, state)
    hours = INTERVALS.get(req.query.get("interval", ""))
    if hours is None:
        raise _error(400, -1120, "Invalid interval.")
    limit = int_param(req.query, "limit", KLINE_LIMIT[0], lambda: _bad_param("limit"))
    start = int_param(req.query, "startTime", None, lambda: _bad_param("startTime"))
    end = int_param(req.query, "endTime", None, lambda: _bad_param("endTime"))
    if limit is None or not 1 <= limit <= KLINE_LIMIT[1]:
        raise _bad_param("limit")
    candles = state.candles.candles(COINM, market.symbol, req.now_ms, hours)
    return market, window(candles, start=start, end=end, limit=limit, oldest_first=start is not None), hours * HOUR_MS


def _klines(req: SimRequest, account: AccountSpec | None, state: SimState) -> list:
    """GET /dapi/v1/klines: the volume is in contracts, the "base asset volume" (index 7)
    in the coin (contracts x contract size / price)."""
    market, candles, width = _candles(req, state)
    places = places_of(market.price_tick)
    rows = []
    for c in candles:
        coins = c.volume * market.contract_size / c.close
        rows.append(
            [
                c.ts,
                plain(c.open, places + 4),
                plain(c.high, places + 4),
                plain(c.low, places + 4),
                plain(c.close, places + 4),
                plain(c.volume, 8),
                c.ts + width - 1,
                fixed(coins, 8),
                max(1, int(c.volume / 50)),
                plain(c.volume / 2, 8),
                fixed(coins / 2, 8),
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
            0,
            "0",
            "0",
            "0",
        ]
        for c in candles
    ]


def _depth(req: SimRequest, account: AccountSpec | None, state: SimState) -> dict:
    """GET /dapi/v1/depth: amounts in contracts."""
    market = _required_market(req, state)
    limit = int_param(req.query, "limit", DEPTH_DEFAULT, lambda: _bad_param("limit"))
    if limit not in DEPTH_LIMITS:
        raise _bad_param("limit")
    bids, asks = order_book(market, state.mark(COINM, market.symbol))
    price_places, qty_places = places_of(market.price_tick), places_of(market.amount_step)

    def levels(side: list[tuple[float, float]]) -> list[list[str]]:
        return [[fixed(p, price_places), fixed(q, qty_places)] for p, q in side[:limit]]

    return {
        "lastUpdateId": req.now_ms * 10,
        "symbol": market_id(market.symbol),
        "pair": market.base + market.quote,
        "E": req.now_ms,
        "T": req.now_ms,
        "bids": levels(bids),
        "asks": levels(asks),
    }


VENUE = VenueSpec(
    name=COINM,
    hosts=(DAPI,),
    routes={
        ("GET", "/dapi/v1/time"): Route(_time, host=DAPI),
        ("GET", "/dapi/v1/exchangeInfo"): Route(_exchange_info, host=DAPI),
        ("GET", "/dapi/v1/account"): Route(_account, signed=True, host=DAPI),
        ("GET", "/dapi/v1/positionRisk"): Route(_position_risk, signed=True, host=DAPI),
        ("GET", "/dapi/v2/leverageBracket"): Route(_leverage_bracket, signed=True, host=DAPI),
        ("GET", "/dapi/v1/premiumIndex"): Route(_premium_index, host=DAPI),
        ("GET", "/dapi/v1/klines"): Route(_klines, host=DAPI),
        ("GET", "/dapi/v1/markPriceKlines"): Route(_mark_price_klines, host=DAPI),
        ("GET", "/dapi/v1/depth"): Route(_depth, host=DAPI),
    },
    authenticate=authenticate,
    error=error,
    key_fields=("markPrice", "liquidationPrice", "walletBalance", "maintMarginRatio", "pricePrecision"),
    wrong_types={
        "markPrice": lambda v: None,
        "unRealizedProfit": lambda v: "n/a",
        "walletBalance": lambda v: "n/a",
        "maintMarginRatio": str,
        "qtyFloor": str,
    },
)
