"""Bybit v5 (api.bybit.com), unified trading account, linear perpetuals, as ccxt's bybit
calls it.

Signed requests carry X-BAPI-API-KEY, X-BAPI-TIMESTAMP, X-BAPI-RECV-WINDOW and X-BAPI-SIGN,
the hex HMAC-SHA256 of timestamp + key + recvWindow + query string. Every answer has
`retCode` (ccxt treats a JSON body without it as an error; Bybit answers refusals with
HTTP 200 and a non-zero retCode), numbers as strings, as in the responses recorded in
ccxt's tests (tests/fixtures/ccxt/bybit.*.json).

Money: a coin's `walletBalance` is the whole wallet (the scenario's `wallet_balance` plus
isolated position margins); the account-level `totalMarginBalance`,
`totalMaintenanceMargin`, `totalInitialMargin`, `accountMMRate` and `accountIMRate` are
those of the cross pool. Risk-limit rates are fractions ("0.005"), as Bybit sends them for
linear contracts.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from margin.collateral import AssetFigures
from simulator.common import (
    Route,
    SimRequest,
    VenueError,
    VenueSpec,
    int_param,
    negated,
    places_of,
    plain,
    signed,
)
from simulator.figures import AccountFigures, PositionFigures, market_tiers
from simulator.market import HOUR_MS, Candle, next_funding_ms, order_book, window
from simulator.scenario import AccountSpec, MarketSpec
from simulator.state import SimState

HOST = "api.bybit.com"
DEFAULT_RECV_WINDOW = 5000
RISK_LIMIT_PAGE = 10  # rows per risk-limit page: ccxt follows nextPageCursor
UNBOUNDED_RISK_LIMIT = 1_000_000_000
INTERVALS = {"60": 1, "120": 2, "240": 4, "360": 6, "720": 12, "D": 24}  # hours; the simulator's
KLINE_LIMIT = (200, 1000)  # default, max
ORDERBOOK_LIMIT = (25, 500)  # linear
EXECUTION_LIMIT = (50, 100)
WEEK_MS = 7 * 24 * HOUR_MS


def market_id(symbol: str) -> str:
    """BTC/USDT:USDT -> BTCUSDT."""
    return symbol.split(":")[0].replace("/", "")


def envelope(result: object, now_ms: int, code: int = 0, msg: str = "OK") -> dict:
    return {"retCode": code, "retMsg": msg, "result": result, "retExtInfo": {}, "time": now_ms}


def _error(status: int, code: int, msg: str, req: SimRequest) -> VenueError:
    return VenueError(status, envelope({}, req.now_ms, code, msg))


def error(kind: str, req: SimRequest) -> VenueError:
    """Bybit's answers for the simulator's generic faults."""
    if kind == "rate_limit":
        return _error(429, 10006, "Too many visits!", req)
    if kind == "maintenance":
        # Bybit's system-error code; ccxt maps 10016 to a plain ExchangeError.
        return _error(503, 10016, "System error. Please try again later.", req)
    if kind == "stale_timestamp":
        ts = req.headers.get("X-BAPI-TIMESTAMP", "")
        window = req.headers.get("X-BAPI-RECV-WINDOW", str(DEFAULT_RECV_WINDOW))
        return _error(
            200,
            10002,
            "invalid request, please check your server timestamp or recv_window "
            f"param. req_timestamp[{ts}],server_timestamp[{req.now_ms}],recv_window[{window}]",
            req,
        )
    return VenueError(404, "")


def authenticate(req: SimRequest, state: SimState) -> AccountSpec:
    """Check key, timestamp window and signature like Bybit (10003, 10002, 10004)."""
    key = req.headers.get("X-BAPI-API-KEY", "")
    account = state.account("bybit", key) if key else None
    if account is None:
        raise _error(200, 10003, "API key is invalid.", req)
    stamp = req.headers.get("X-BAPI-TIMESTAMP", "")
    window = req.headers.get("X-BAPI-RECV-WINDOW", str(DEFAULT_RECV_WINDOW))
    try:
        timestamp, recv_window = int(stamp), int(window)
    except ValueError:
        raise error("stale_timestamp", req) from None
    # Bybit: server_time - recv_window <= timestamp < server_time + 1000.
    if not req.now_ms - recv_window <= timestamp < req.now_ms + 1000:
        raise error("stale_timestamp", req)
    origin = stamp + key + window + (req.raw_query if req.method == "GET" else req.body)
    expected = hmac.new(account.secret.encode(), origin.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(req.headers.get("X-BAPI-SIGN", ""), expected):
        # Bybit echoes the signed string, API key included, in this message.
        raise _error(200, 10004, f"error sign! origin_string[{origin}]", req)
    return account


# --- public --------------------------------------------------------------------------


def _time(req: SimRequest, account: AccountSpec | None, state: SimState) -> dict:
    return envelope({"timeSecond": str(req.now_ms // 1000), "timeNano": str(req.now_ms * 1_000_000)}, req.now_ms)


def _instruments(req: SimRequest, account: AccountSpec | None, state: SimState) -> dict:
    category = req.query.get("category", "")
    items = []
    # Only Trading perpetuals exist here (linear, and inverse ones settled in their base):
    # a PreLaunch query answers an empty list.
    if category in ("linear", "inverse") and req.query.get("status", "Trading") == "Trading":
        for market in _of_category(state, category):
            if req.query.get("symbol") not in (None, market_id(market.symbol)):
                continue
            tick, step = plain(market.price_tick), plain(market.amount_step)
            items.append(
                {
                    "symbol": market_id(market.symbol),
                    "contractType": "InversePerpetual" if market.inverse else "LinearPerpetual",
                    "status": "Trading",
                    "baseCoin": market.base,
                    "quoteCoin": market.quote,
                    "launchTime": "1585526400000",
                    "deliveryTime": "0",
                    "deliveryFeeRate": "",
                    "priceScale": str(places_of(market.price_tick)),
                    "leverageFilter": {
                        "minLeverage": "1",
                        "maxLeverage": f"{market.tiers[0].max_leverage:.2f}",
                        "leverageStep": "0.01",
                    },
                    "priceFilter": {"minPrice": tick, "maxPrice": "1999999.80", "tickSize": tick},
                    "lotSizeFilter": {
                        "maxOrderQty": "1190.000",
                        "minOrderQty": step,
                        "qtyStep": step,
                        "postOnlyMaxOrderQty": "1190.000",
                        "maxMktOrderQty": "500.000",
                        "minNotionalValue": "5",
                    },
                    "unifiedMarginTrade": True,
                    "fundingInterval": 480,
                    "settleCoin": market.base if market.inverse else market.quote,
                    "copyTrading": "both",
                    "upperFundingRate": "0.00375",
                    "lowerFundingRate": "-0.00375",
                    "isPreListing": False,
                    "preListingInfo": None,
                    "displayName": "",
                }
            )
    elif category not in ("linear", "inverse", "spot", "option"):
        raise _error(200, 10001, "params error: Category is invalid", req)
    return envelope({"category": category, "list": items, "nextPageCursor": ""}, req.now_ms)


def _of_category(state: SimState, category: str) -> list[MarketSpec]:
    """The venue's markets of a v5 category: "inverse" (settled in the coin, riskLimitValue
    and money in the coin) or "linear"."""
    return [m for m in state.markets.get("bybit", {}).values() if m.inverse == (category == "inverse")]


def _risk_limit(req: SimRequest, account: AccountSpec | None, state: SimState) -> dict:
    rows = []
    for market in _of_category(state, req.query.get("category", "linear")):
        if req.query.get("symbol") not in (None, market_id(market.symbol)):
            continue
        for i, t in enumerate(market_tiers(market)):
            rows.append(
                {
                    "id": i + 1,
                    "symbol": market_id(market.symbol),
                    "riskLimitValue": plain(UNBOUNDED_RISK_LIMIT if t.max_notional == float("inf") else t.max_notional),
                    "maintenanceMargin": plain(t.maintenance_margin_rate),
                    "initialMargin": plain(1 / (t.max_leverage or 1), 6),
                    "isLowestRisk": 1 if i == 0 else 0,
                    "maxLeverage": f"{t.max_leverage or 1:.2f}",
                    "mmDeduction": plain(t.maintenance_amount),
                }
            )
    # Pages of RISK_LIMIT_PAGE rows; the cursor is the offset of the next page.
    start = int(req.query.get("cursor") or 0)
    page = rows[start : start + RISK_LIMIT_PAGE]
    more = start + RISK_LIMIT_PAGE < len(rows)
    return envelope(
        {
            "category": req.query.get("category", "linear"),
            "list": page,
            "nextPageCursor": str(start + RISK_LIMIT_PAGE) if more else "",
        },
        req.now_ms,
    )


# --- signed --------------------------------------------------------------------------


def _coin_info(req: SimRequest, account: AccountSpec | None, state: SimState) -> dict:
    coins = sorted({c for m in state.markets.get("bybit", {}).values() for c in (m.base, m.quote)})
    rows = [
        {
            "name": c,
            "coin": c,
            "remainAmount": "1000000",
            "chains": [
                {
                    "chainType": "ERC20",
                    "confirmation": "12",
                    "withdrawFee": "1",
                    "depositMin": "0",
                    "withdrawMin": "2",
                    "chain": "ETH",
                    "chainDeposit": "1",
                    "chainWithdraw": "1",
                    "minAccuracy": "8",
                    "withdrawPercentageFee": "0",
                }
            ],
        }
        for c in coins
    ]
    return envelope({"rows": rows}, req.now_ms)


def _query_api(req: SimRequest, account: AccountSpec | None, state: SimState) -> dict:
    account = signed(account)
    trade, withdraw = account.can_trade, account.can_withdraw
    wallet = ["AccountTransfer", "SubMemberTransfer"] + (["Withdraw"] if withdraw else [])
    key_id = str(int(hashlib.sha256(account.api_key.encode()).hexdigest()[:7], 16))
    return envelope(
        {
            "id": key_id,
            "note": account.name,
            "apiKey": account.api_key,
            "readOnly": 0 if (trade or withdraw) else 1,
            "secret": "",
            "permissions": {
                "ContractTrade": ["Order", "Position"] if trade else [],
                "Spot": ["SpotTrade"] if trade else [],
                "Wallet": wallet,
                "Options": [],
                "Derivatives": ["DerivativesTrade"] if trade else [],
                "CopyTrading": [],
                "BlockTrade": [],
                "Exchange": [],
                "NFT": [],
                "Affiliate": [],
                "Earn": [],
            },
            "ips": ["*"],
            "type": 1,
            "deadlineDay": 83,
            "expiredAt": "",
            "createdAt": "2024-01-01T00:00:00Z",
            "unified": 0,
            "uta": 1,
            "userID": 24600000,
            "inviterID": 0,
            "vipLevel": "No VIP",
            "mktMakerLevel": "0",
            "affiliateID": 0,
            "rsaPublicKey": "",
            "isMaster": True,
            "parentUid": "0",
            "kycLevel": "LEVEL_1",
            "kycRegion": "",
        },
        req.now_ms,
    )


def _account_info(req: SimRequest, account: AccountSpec | None, state: SimState) -> dict:
    account = signed(account)
    isolated = any(p.margin_mode == "isolated" for p in account.positions)
    return envelope(
        {
            "marginMode": "ISOLATED_MARGIN" if isolated else "REGULAR_MARGIN",
            "updatedTime": str(state.started_ms),
            "unifiedMarginStatus": 5,
            "dcpStatus": "OFF",
            "timeWindow": 10,
            "smpGroup": 0,
            "isMasterTrader": False,
            "spotHedgingStatus": "OFF",
        },
        req.now_ms,
    )


def _wallet_balance(req: SimRequest, account: AccountSpec | None, state: SimState) -> dict:
    account = signed(account)
    if req.query.get("accountType") != "UNIFIED":
        raise _error(200, 10001, "accountType only support UNIFIED.", req)
    return envelope({"list": [wallet_row(account, state.figures(account))]}, req.now_ms)


def wallet_row(account: AccountSpec, fig: AccountFigures) -> dict:
    """The unified account's wallet, as wallet-balance's list[0] and the `wallet` stream's
    data[0] carry it."""
    wallet = fig.wallet_balance + fig.isolated_margin
    equity = wallet + fig.total_upl
    coin = {
        "availableToBorrow": "",
        "bonus": "0",
        "accruedInterest": "0",
        "availableToWithdraw": "",
        "totalOrderIM": "0",
        "equity": plain(equity, 8),
        "totalPositionMM": plain(sum(p.maintenance_margin for p in fig.positions), 8),
        "usdValue": plain(equity, 8),
        "unrealisedPnl": plain(fig.total_upl, 8),
        "collateralSwitch": True,
        "spotHedgingQty": "0",
        "borrowAmount": "0.000000000000000000",
        "totalPositionIM": plain(sum(p.initial_margin for p in fig.positions), 8),
        "walletBalance": plain(wallet, 8),
        "cumRealisedPnl": "0",
        "locked": "0",
        "marginCollateral": True,
        "coin": account.collateral,
    }
    cross_eq = fig.cross_equity
    coins: list[dict[str, Any]] = [coin]
    maintenance = fig.cross_maintenance
    if fig.collateral:  # issue 13: a unified account holding several collateral coins
        coins = [_coin_row(coin, row, account, fig) for row in fig.collateral]
        equity = sum(float(c["usdValue"]) for c in coins)
        wallet = sum(float(c["walletBalance"]) * row.price for c, row in zip(coins, fig.collateral, strict=True))
        maintenance = fig.venue_maintenance or 0.0
    return {
        "totalEquity": plain(equity, 8),
        "accountIMRate": plain(fig.cross_initial / cross_eq if cross_eq > 0 else 0, 4),
        "totalMarginBalance": plain(cross_eq, 8),
        "totalInitialMargin": plain(fig.cross_initial, 8),
        "accountType": "UNIFIED",
        "totalAvailableBalance": plain(max(0.0, cross_eq - fig.cross_initial), 8),
        "accountMMRate": plain(maintenance / cross_eq if cross_eq > 0 else 0, 6),
        "totalPerpUPL": plain(fig.total_upl, 8),
        "totalWalletBalance": plain(wallet, 8),
        "accountLTV": "0",
        "totalMaintenanceMargin": plain(maintenance, 8),
        "coin": coins,
    }


def _coin_row(template: dict, row: AssetFigures, account: AccountSpec, fig: AccountFigures) -> dict:
    """One collateral coin of a multi-collateral unified account: the settle coin's wallet
    holds the isolated margins and its equity every position's PnL (Bybit's coin equity)."""
    settle = row.asset == account.collateral
    wallet = row.amount + (fig.isolated_margin if settle else 0.0)
    equity = wallet + (fig.total_upl if settle else 0.0)
    return {
        **template,
        "coin": row.asset,
        "walletBalance": plain(wallet, 8),
        "equity": plain(equity, 8),
        "usdValue": plain(equity * row.price, 8),
        "unrealisedPnl": plain(fig.total_upl if settle else 0.0, 8),
        "totalPositionMM": template["totalPositionMM"] if settle else "0",
        "totalPositionIM": template["totalPositionIM"] if settle else "0",
    }


def _collateral_ratios(req: SimRequest, account: AccountSpec | None, state: SimState) -> dict:
    """GET /v5/spot-margin-trade/collateral (public): the bands of every collateral coin the
    scenario's Bybit accounts hold (the first account's, where two give one coin)."""
    bands: dict[str, list[dict]] = {}
    for spec in state.accounts():
        if spec.venue != "bybit":
            continue
        for asset in spec.collateral_assets:
            bands.setdefault(
                asset.asset,
                [
                    {"minQty": plain(lo), "maxQty": "" if hi is None else plain(hi), "collateralRatio": plain(r)}
                    for lo, hi, r in asset.tiers
                ],
            )
    bands.setdefault("USDT", [{"minQty": "0", "maxQty": "", "collateralRatio": "1"}])
    rows = [{"currency": c, "collateralRatioList": b} for c, b in sorted(bands.items())]
    return envelope({"list": rows}, req.now_ms)


def _position_list(req: SimRequest, account: AccountSpec | None, state: SimState) -> dict:
    account = signed(account)
    category = req.query.get("category")
    if category not in ("linear", "inverse"):
        raise _error(200, 10001, "params error: category only support linear or inverse", req)
    symbol, settle = req.query.get("symbol"), req.query.get("settleCoin")
    if category == "linear" and not symbol and not settle:  # Bybit: inverse needs neither
        raise _error(200, 10001, "Missing some parameters that must filled in, symbol or settleCoin", req)
    fig = state.figures(account)
    items = [
        position_row(p, fig.hedge_mode, state.started_ms)
        for p in fig.positions
        if symbol in (None, market_id(p.spec.symbol))
        and settle in (None, account.collateral)
        and p.market.inverse == (category == "inverse")
    ]
    return envelope({"nextPageCursor": "", "category": category, "list": items}, req.now_ms)


def position_row(p: PositionFigures, hedge_mode: bool, created: int) -> dict:
    """One position as /v5/position/list and the `position` stream send it."""
    tier = market_tiers(p.market)[p.tier_index]
    price_places = places_of(p.market.price_tick)
    balance = p.spec.isolated_margin if p.spec.margin_mode == "isolated" else p.initial_margin
    return {
        "symbol": market_id(p.spec.symbol),
        "leverage": plain(p.leverage),
        "autoAddMargin": "0",
        "avgPrice": plain(p.spec.entry_price, 8),
        "liqPrice": plain(p.liquidation_price, price_places),
        "riskLimitValue": plain(UNBOUNDED_RISK_LIMIT if tier.max_notional == float("inf") else tier.max_notional),
        "takeProfit": "",
        "positionValue": plain(p.entry_value, 8),
        "isReduceOnly": False,
        "tpslMode": "Full",
        "riskId": p.tier_index + 1,
        "trailingStop": "0",
        "unrealisedPnl": plain(p.unrealized_pnl, 8),
        "markPrice": plain(p.mark, price_places + 2),
        "adlRankIndicator": 2,
        "cumRealisedPnl": "0",
        "positionMM": plain(p.maintenance_margin, 8),
        "createdTime": str(created),
        "positionIdx": (0 if not hedge_mode else 1 if p.spec.side == "long" else 2),
        "positionIM": plain(p.initial_margin, 8),
        "seq": 15411084098,
        "updatedTime": str(created),
        "side": "Buy" if p.spec.side == "long" else "Sell",
        "bustPrice": plain(p.bankruptcy_price, price_places),
        "positionBalance": plain(balance, 8),
        "leverageSysUpdatedTime": "",
        "curRealisedPnl": "0",
        "size": plain(p.spec.contracts),
        "positionStatus": "Normal",
        "mmrSysUpdatedTime": "",
        "stopLoss": "",
        "sessionAvgPrice": "",
        "tradeMode": 1 if p.spec.margin_mode == "isolated" else 0,
    }


# --- market data ---------------------------------------------------------------------


def _params_error(req: SimRequest, what: str) -> VenueError:
    return _error(200, 10001, f"params error: {what}", req)


def _market(req: SimRequest, state: SimState) -> MarketSpec | None:
    """The market of `symbol` in the request's category (linear or inverse), None without one."""
    category = req.query.get("category")
    if category not in ("linear", "inverse"):
        raise _params_error(req, "category only support linear or inverse")
    wanted = req.query.get("symbol")
    if not wanted:
        return None
    for market in _of_category(state, category):
        if market_id(market.symbol) == wanted:
            return market
    raise _params_error(req, "symbol invalid")


def _required_market(req: SimRequest, state: SimState) -> MarketSpec:
    market = _market(req, state)
    if market is None:
        raise _params_error(req, "symbol is required")
    return market


def _candles(req: SimRequest, state: SimState) -> tuple[MarketSpec, list[Candle]]:
    """The klines a kline request selects, newest first as Bybit sends them: the candle
    holding `start` and later ones; with start only the `limit` oldest of those, otherwise
    the `limit` newest up to `end`."""
    market = _required_market(req, state)
    hours = INTERVALS.get(req.query.get("interval", ""))
    if hours is None:
        raise _params_error(req, "interval invalid")
    limit = int_param(req.query, "limit", KLINE_LIMIT[0], lambda: _params_error(req, "limit invalid"))
    start = int_param(req.query, "start", None, lambda: _params_error(req, "start invalid"))
    end = int_param(req.query, "end", None, lambda: _params_error(req, "end invalid"))
    if limit is None or not 1 <= limit <= KLINE_LIMIT[1]:
        raise _params_error(req, "limit invalid")
    width = hours * HOUR_MS
    candles = state.candles.candles("bybit", market.symbol, req.now_ms, hours)
    first = None if start is None else start - start % width  # the candle that holds `start`
    chosen = window(candles, start=first, end=end, limit=limit, oldest_first=start is not None and end is None)
    return market, chosen[::-1]


def _kline(req: SimRequest, account: AccountSpec | None, state: SimState) -> dict:
    market, candles = _candles(req, state)
    places = places_of(market.price_tick) + 4
    rows = [
        [
            str(c.ts),
            plain(c.open, places),
            plain(c.high, places),
            plain(c.low, places),
            plain(c.close, places),
            plain(c.volume, 8),
            plain(c.volume * c.close, 8),
        ]
        for c in candles
    ]
    return envelope({"symbol": market_id(market.symbol), "category": "linear", "list": rows}, req.now_ms)


def _mark_price_kline(req: SimRequest, account: AccountSpec | None, state: SimState) -> dict:
    market, candles = _candles(req, state)
    places = places_of(market.price_tick) + 4
    rows = [
        [str(c.ts), plain(c.open, places), plain(c.high, places), plain(c.low, places), plain(c.close, places)]
        for c in candles
    ]
    return envelope({"symbol": market_id(market.symbol), "category": "linear", "list": rows}, req.now_ms)


def _tickers(req: SimRequest, account: AccountSpec | None, state: SimState) -> dict:
    """Linear tickers, with the funding rate of the running interval (`fundingRate`, paid
    at `nextFundingTime`); 24 h figures from the hourly candles."""
    wanted = _market(req, state)
    rows = [
        ticker_row(market, state, req.now_ms)
        for market in state.markets.get("bybit", {}).values()
        if wanted is None or market is wanted
    ]
    return envelope({"category": "linear", "list": rows}, req.now_ms)


def ticker_row(market: MarketSpec, state: SimState, now_ms: int) -> dict:
    """One linear ticker, as /v5/market/tickers and the `tickers` stream's snapshot send it."""
    places = places_of(market.price_tick)
    mark = state.mark("bybit", market.symbol)
    day = state.candles.hourly("bybit", market.symbol, now_ms)[-24:]
    previous = day[0].open
    bids, asks = order_book(market, mark)
    volume = sum(c.volume for c in day)
    return {
        "symbol": market_id(market.symbol),
        "lastPrice": plain(mark, places + 2),
        "indexPrice": plain(mark, places + 2),
        "markPrice": plain(mark, places + 2),
        "prevPrice24h": plain(previous, places + 2),
        "price24hPcnt": plain(mark / previous - 1, 6),
        "highPrice24h": plain(max(c.high for c in day), places + 2),
        "lowPrice24h": plain(min(c.low for c in day), places + 2),
        "prevPrice1h": plain(day[-1].open, places + 2),
        "openInterest": plain(volume * 2, 3),
        "openInterestValue": plain(volume * 2 * mark, 2),
        "turnover24h": plain(volume * mark, 4),
        "volume24h": plain(volume, 4),
        "fundingRate": plain(state.funding_rate("bybit", market.symbol), 8),
        "nextFundingTime": str(next_funding_ms(now_ms)),
        "fundingIntervalHour": "8",
        "fundingCap": "0.005",
        "predictedDeliveryPrice": "",
        "basisRate": "",
        "deliveryFeeRate": "",
        "deliveryTime": "0",
        "bid1Price": plain(bids[0][0], places) if bids else "",
        "bid1Size": plain(bids[0][1]) if bids else "",
        "ask1Price": plain(asks[0][0], places),
        "ask1Size": plain(asks[0][1]),
        "basis": "",
        "preOpenPrice": "",
        "preQty": "",
        "curPreListingPhase": "",
    }


def _orderbook(req: SimRequest, account: AccountSpec | None, state: SimState) -> dict:
    market = _required_market(req, state)
    limit = int_param(req.query, "limit", ORDERBOOK_LIMIT[0], lambda: _params_error(req, "limit invalid"))
    if limit is None or not 1 <= limit <= ORDERBOOK_LIMIT[1]:
        raise _params_error(req, "limit invalid")
    bids, asks = order_book(market, state.mark("bybit", market.symbol))
    places = places_of(market.price_tick)
    return envelope(
        {
            "s": market_id(market.symbol),
            "b": [[plain(p, places), plain(q)] for p, q in bids[:limit]],
            "a": [[plain(p, places), plain(q)] for p, q in asks[:limit]],
            "ts": req.now_ms,
            "u": req.now_ms // 1000,
            "seq": req.now_ms,
            "cts": req.now_ms,
        },
        req.now_ms,
    )


# --- executions --------------------------------------------------------------------------


def _execution_list(req: SimRequest, account: AccountSpec | None, state: SimState) -> dict:
    """The account's executions, newest first: here only its liquidation fills
    (execType BustTrade; the simulator takes no orders). Without startTime/endTime the
    last 7 days; `cursor` is the offset of the next page."""
    account = signed(account)
    market = _market(req, state)
    kind = req.query.get("execType")
    limit = int_param(req.query, "limit", EXECUTION_LIMIT[0], lambda: _params_error(req, "limit invalid"))
    if limit is None or not 1 <= limit <= EXECUTION_LIMIT[1]:
        raise _params_error(req, "limit invalid")
    start = int_param(req.query, "startTime", None, lambda: _params_error(req, "startTime invalid"))
    end = int_param(req.query, "endTime", None, lambda: _params_error(req, "endTime invalid"))
    if start is None and end is None:
        start = req.now_ms - WEEK_MS
    records = [
        r
        for r in state.liquidations("bybit", account.api_key)
        if (market is None or r.symbol == market.symbol)
        and kind in (None, "BustTrade")
        and (start is None or r.time_ms >= start)
        and (end is None or r.time_ms <= end)
    ][::-1]
    offset = int_param(req.query, "cursor", 0, lambda: _params_error(req, "cursor invalid")) or 0
    page = records[offset : offset + limit]
    rows = []
    for r in page:
        places = places_of(state.markets["bybit"][r.symbol].price_tick)
        rows.append(
            {
                "symbol": market_id(r.symbol),
                "orderType": "Market",
                "underlyingPrice": "",
                "orderLinkId": "",
                "side": "Sell" if r.close_side == "sell" else "Buy",
                "indexPrice": "",
                "orderId": f"{r.id:08x}-5b0c-4d1e-9f2a-{r.event:012x}",
                "stopOrderType": "UNKNOWN",
                "leavesQty": "0",
                "execTime": str(r.time_ms),
                "feeCurrency": account.collateral,
                "isMaker": False,
                "execFee": plain(r.fee, 8),
                "feeRate": plain(state.markets["bybit"][r.symbol].liquidation_fee_rate, 6),
                "execId": f"{r.id:08x}-e0cb-4e81-8f18-{r.event:012x}",
                "tradeIv": "",
                "blockTradeId": "",
                "markPrice": plain(r.mark_price, places + 2),
                "execPrice": plain(r.price, places),
                "markIv": "",
                "orderQty": plain(r.contracts),
                "orderPrice": plain(r.price, places),
                "execValue": plain(r.size * r.price, 8),
                "execType": "BustTrade",
                "execQty": plain(r.contracts),
                "closedSize": plain(r.contracts),
                "extraFees": "",
                "seq": 9_000_000_000 + r.id,
                "createType": "CreateByLiq",
            }
        )
    more = offset + limit < len(records)
    return envelope(
        {"nextPageCursor": str(offset + limit) if more else "", "category": "linear", "list": rows}, req.now_ms
    )


VENUE = VenueSpec(
    name="bybit",
    hosts=(HOST,),
    routes={
        ("GET", "/v5/market/time"): Route(_time),
        ("GET", "/v5/market/instruments-info"): Route(_instruments),
        ("GET", "/v5/market/risk-limit"): Route(_risk_limit),
        ("GET", "/v5/asset/coin/query-info"): Route(_coin_info, signed=True),
        ("GET", "/v5/user/query-api"): Route(_query_api, signed=True),
        ("GET", "/v5/account/info"): Route(_account_info, signed=True),
        ("GET", "/v5/account/wallet-balance"): Route(_wallet_balance, signed=True),
        ("GET", "/v5/spot-margin-trade/collateral"): Route(_collateral_ratios),
        ("GET", "/v5/position/list"): Route(_position_list, signed=True),
        ("GET", "/v5/market/kline"): Route(_kline),
        ("GET", "/v5/market/mark-price-kline"): Route(_mark_price_kline),
        ("GET", "/v5/market/tickers"): Route(_tickers),
        ("GET", "/v5/market/orderbook"): Route(_orderbook),
        ("GET", "/v5/execution/list"): Route(_execution_list, signed=True),
    },
    authenticate=authenticate,
    error=error,
    key_fields=(
        "markPrice",
        "liqPrice",
        "walletBalance",
        "maintenanceMargin",
        "positionMM",
        "fundingRate",
        "execPrice",
    ),
    wrong_types={
        "markPrice": lambda v: None,
        "size": negated,
        "unrealisedPnl": lambda v: "n/a",
        "walletBalance": lambda v: "n/a",
        "maintenanceMargin": lambda v: "n/a",
        "fundingRate": lambda v: "n/a",
        "execPrice": lambda v: "n/a",
    },
)
