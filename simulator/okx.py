"""OKX v5 (www.okx.com), USDT-margined perpetual swaps, as ccxt's okx calls it.

Signed requests carry OK-ACCESS-KEY, OK-ACCESS-PASSPHRASE, OK-ACCESS-TIMESTAMP (ISO 8601,
milliseconds) and OK-ACCESS-SIGN, the base64 HMAC-SHA256 of timestamp + METHOD +
request path with its query + body. Every answer has `code` (ccxt treats a JSON body
without "0" as an error); shapes follow tests/fixtures/ccxt/okx.fetchPosition.json.

Sizes are in contracts (`pos`, `minSz`/`maxSz` of the position tiers); a contract is
`ctVal` base units (the scenario's contract_size). Money: a currency's `cashBal` is the
scenario's `wallet_balance` plus isolated margins; `mmr` (account, currency and position)
is notional x tier rate without the closing fee, while `mgnRatio` is equity over
maintenance *with* the closing fee, which is where OKX liquidates (the engine's health).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac

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
from simulator.figures import AccountFigures, PositionFigures
from simulator.liquidation import LiquidationRecord
from simulator.market import (
    FUNDING_INTERVAL_MS,
    HOUR_MS,
    Candle,
    next_funding_ms,
    order_book,
)
from simulator.scenario import AccountSpec, MarketSpec
from simulator.state import SimState

HOST = "www.okx.com"
TIMESTAMP_WINDOW_MS = 30_000  # OKX refuses a request timestamp more than 30 s off
UNBOUNDED_SZ = 100_000_000
HK_OFFSET_MS = 8 * HOUR_MS  # bars of 6 h and more without "utc" are aligned on Hong Kong time
BARS = {
    "1H": (1, 0),
    "2H": (2, 0),
    "4H": (4, 0),
    "6H": (6, HK_OFFSET_MS),
    "12H": (12, HK_OFFSET_MS),
    "1D": (24, HK_OFFSET_MS),
    "6Hutc": (6, 0),
    "12Hutc": (12, 0),
    "1Dutc": (24, 0),
}  # the simulator's
RECENT_CANDLES = 1440  # /market/candles serves only the latest 1440 bars
CANDLE_LIMIT = (100, 300)  # default, max (candles and history-candles)
MARK_CANDLE_LIMIT = (100, 100)
BOOKS_MAX = {"/api/v5/market/books": 400, "/api/v5/market/books-full": 5000}
FILLS_LIMIT = (100, 100)
FILLS_RECENT_MS = 3 * 24 * HOUR_MS  # /trade/fills: the last 3 days


def inst_id(symbol: str) -> str:
    """BTC/USDT:USDT -> BTC-USDT-SWAP."""
    return symbol.split(":")[0].replace("/", "-") + "-SWAP"


def inst_family(market: MarketSpec) -> str:
    return f"{market.base}-{market.quote}"


def envelope(data: list, code: str = "0", msg: str = "") -> dict:
    return {"code": code, "data": data, "msg": msg}


def _error(status: int, code: str, msg: str) -> VenueError:
    return VenueError(status, envelope([], code, msg))


def error(kind: str, req: SimRequest) -> VenueError:
    """OKX's answers for the simulator's generic faults."""
    if kind == "rate_limit":
        return _error(429, "50011", "Too Many Requests")
    if kind == "maintenance":
        return _error(503, "50001", "Service temporarily unavailable. Please try again later.")
    if kind == "stale_timestamp":
        return _error(401, "50102", "Timestamp request expired.")
    return VenueError(404, "")


def authenticate(req: SimRequest, state: SimState) -> AccountSpec:
    """Check key, timestamp, passphrase and signature like OKX (50103..50107, 50111,
    50112, 50102, 50105, 50113)."""
    h = req.headers
    for header, code in (
        ("OK-ACCESS-KEY", "50103"),
        ("OK-ACCESS-PASSPHRASE", "50104"),
        ("OK-ACCESS-SIGN", "50106"),
        ("OK-ACCESS-TIMESTAMP", "50107"),
    ):
        if not h.get(header):
            raise _error(401, code, f"Request header {header} can not be empty.")
    account = state.account("okx", h["OK-ACCESS-KEY"])
    if account is None:
        raise _error(401, "50111", "Invalid OK-ACCESS-KEY.")
    stamp = h["OK-ACCESS-TIMESTAMP"]
    try:
        sent_ms = int(dt.datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp() * 1000)
    except ValueError:
        raise _error(401, "50112", "Invalid OK-ACCESS-TIMESTAMP.") from None
    if abs(req.now_ms - sent_ms) > TIMESTAMP_WINDOW_MS:
        raise error("stale_timestamp", req)
    if not hmac.compare_digest(h["OK-ACCESS-PASSPHRASE"], account.passphrase or ""):
        raise _error(401, "50105", "Request header OK-ACCESS-PASSPHRASE incorrect.")
    path = req.path + (f"?{req.raw_query}" if req.raw_query else "")
    digest = hmac.new(account.secret.encode(), (stamp + req.method + path + req.body).encode(), hashlib.sha256).digest()
    if not hmac.compare_digest(h["OK-ACCESS-SIGN"], base64.b64encode(digest).decode()):
        raise _error(401, "50113", "Invalid Sign.")
    return account


# --- public --------------------------------------------------------------------------


def _time(req: SimRequest, account: AccountSpec | None, state: SimState) -> dict:
    return envelope([{"ts": str(req.now_ms)}])


def _instruments(req: SimRequest, account: AccountSpec | None, state: SimState) -> dict:
    kind = req.query.get("instType")
    if not kind:
        raise _error(400, "50014", "Parameter instType can not be empty.")
    data = []
    for n, market in enumerate(state.markets.get("okx", {}).values() if kind == "SWAP" else []):
        family = inst_family(market)
        if req.query.get("instFamily", family) != family or req.query.get("uly", family) != family:
            continue
        step, tick = plain(market.amount_step), plain(market.price_tick)
        data.append(
            {
                "alias": "",
                "auctionEndTime": "",
                "baseCcy": "",
                "category": "1",
                "ctMult": "1",
                "ctType": "inverse" if market.inverse else "linear",
                "ctVal": plain(market.contract_size),
                "ctValCcy": market.quote if market.inverse else market.base,
                "expTime": "",
                "instFamily": family,
                "instId": inst_id(market.symbol),
                "instIdCode": 10000 + n,
                "instType": "SWAP",
                "lever": str(int(market.tiers[0].max_leverage)),
                "listTime": "1573557408000",
                "lotSz": step,
                "maxIcebergSz": "100000000",
                "maxLmtAmt": "20000000",
                "maxLmtSz": "100000000",
                "maxMktAmt": "",
                "maxMktSz": "12000",
                "maxStopSz": "12000",
                "maxTriggerSz": "100000000",
                "maxTwapSz": "100000000",
                "minSz": step,
                "optType": "",
                "quoteCcy": "",
                "ruleType": "normal",
                "settleCcy": market.base if market.inverse else market.quote,
                "state": "live",
                "stk": "",
                "tickSz": tick,
                "uly": family,
            }
        )
    return envelope(data)


def _position_tiers(req: SimRequest, account: AccountSpec | None, state: SimState) -> dict:
    if not req.query.get("instType") or req.query.get("tdMode") not in ("cross", "isolated"):
        raise _error(400, "50014", "Parameter instType or tdMode can not be empty.")
    family = req.query.get("instFamily") or req.query.get("uly")
    if not family:
        raise _error(400, "50014", "Parameter instFamily can not be empty.")
    data = []
    for market in state.markets.get("okx", {}).values():
        if inst_family(market) != family or req.query["instType"] != "SWAP":
            continue
        for t in state.okx_tiers[market.symbol]:
            data.append(
                {
                    "baseMaxLoan": "",
                    "imr": plain(1 / t.max_lever, 6),
                    "instFamily": family,
                    "instId": "",
                    "maxLever": plain(t.max_lever),
                    "minSz": plain(t.min_sz),
                    "maxSz": plain(UNBOUNDED_SZ if t.max_sz is None else t.max_sz),
                    "mmr": plain(t.mmr),
                    "optMgnFactor": "0",
                    "quoteMaxLoan": "",
                    "tier": str(t.tier),
                    "uly": family,
                }
            )
    return envelope(data)


# --- signed --------------------------------------------------------------------------


def _currencies(req: SimRequest, account: AccountSpec | None, state: SimState) -> dict:
    coins = sorted({c for m in state.markets.get("okx", {}).values() for c in (m.base, m.quote)})
    return envelope(
        [
            {
                "ccy": c,
                "chain": f"{c}-ERC20",
                "canDep": True,
                "canWd": True,
                "canInternal": True,
                "minWd": "1",
                "maxWd": "10000000",
                "wdTickSz": "6",
                "wdQuota": "10000000",
                "usedWdQuota": "0",
                "fee": "1",
                "minFee": "1",
                "maxFee": "2",
                "mainNet": False,
                "needTag": False,
                "name": c,
                "logoLink": "",
                "minDep": "0.00000001",
                "minDepArrivalConfirm": "12",
                "minWdUnlockConfirm": "12",
                "depQuotaFixed": "",
                "usedDepQuotaFixed": "",
                "depQuoteDailyLayer2": "",
                "ctAddr": "",
                "burningFeeRate": "",
                "depEstOpenTime": "",
                "wdEstOpenTime": "",
            }
            for c in coins
        ]
    )


def _ratio(fig: AccountFigures) -> str:
    health = fig.cross_health
    return "" if health is None else plain(health, 8)


def _balance(req: SimRequest, account: AccountSpec | None, state: SimState) -> dict:
    account = signed(account)
    now = str(req.now_ms)
    if req.query.get("ccy") not in (None, account.collateral):
        return envelope([{"adjEq": "", "details": [], "totalEq": "0", "uTime": now}])
    return envelope([balance_row(account, state.figures(account), req.now_ms)])


def balance_row(account: AccountSpec, fig: AccountFigures, now_ms: int) -> dict:
    """The trading account, as /account/balance's data[0] and the `account` stream send it."""
    cross_mmr = sum(p.maintenance_margin - p.closing_fee for p in fig.positions if p.spec.margin_mode == "cross")
    cash = fig.wallet_balance + fig.isolated_margin
    equity = cash + fig.total_upl
    iso_eq = fig.isolated_margin + fig.isolated_upl
    available = max(0.0, fig.cross_equity - fig.cross_initial)
    notional = sum(p.notional for p in fig.positions)  # the collateral's (a coin's for inverse swaps)
    usd = sum(p.size if p.market.inverse else p.notional for p in fig.positions)
    now = str(now_ms)
    detail = {
        "accAvgPx": "",
        "availBal": plain(available, 8),
        "availEq": plain(available, 8),
        "borrowFroz": "",
        "cashBal": plain(cash, 8),
        "ccy": account.collateral,
        "clSpotInUseAmt": "",
        "crossLiab": "",
        "disEq": plain(equity, 8),
        "eq": plain(equity, 8),
        "eqUsd": plain(equity, 8),
        "fixedBal": "0",
        "frozenBal": plain(fig.isolated_margin + fig.cross_initial, 8),
        "imr": plain(fig.cross_initial, 8),
        "interest": "",
        "isoEq": plain(iso_eq, 8),
        "isoLiab": "",
        "isoUpl": plain(fig.isolated_upl, 8),
        "liab": "",
        "maxLoan": "",
        "mgnRatio": _ratio(fig),
        "mmr": plain(cross_mmr, 8),
        "notionalLever": plain(notional / equity if equity > 0 else 0, 8),
        "ordFrozen": "0",
        "rewardBal": "0",
        "smtSyncEq": "0",
        "spotCopyTradingEq": "0",
        "spotInUseAmt": "",
        "spotIsoBal": "0",
        "stgyEq": "0",
        "twap": "0",
        "uTime": now,
        "upl": plain(fig.total_upl, 8),
        "uplLiab": "",
    }
    details = [detail]
    mgn_ratio = _ratio(fig)
    if fig.collateral:  # issue 13: multi-currency margin (acctLv 3), one detail per currency
        details = [_detail(detail, row, account, fig) for row in fig.collateral]
        equity = sum(float(d["eqUsd"]) for d in details)
        venue_mm = fig.venue_maintenance or 0.0
        mgn_ratio = plain(fig.cross_equity / venue_mm, 8) if venue_mm > 0 else ""
    return {
        "adjEq": plain(fig.cross_equity, 8),
        "availEq": plain(available, 8),
        "borrowFroz": "",
        "details": details,
        "imr": plain(fig.cross_initial, 8),
        "isoEq": plain(iso_eq, 8),
        "mgnRatio": mgn_ratio,
        "mmr": plain(cross_mmr, 8),
        "notionalUsd": plain(usd, 8),
        "notionalUsdForBorrow": "",
        "notionalUsdForFutures": "0",
        "notionalUsdForOption": "0",
        "notionalUsdForSwap": plain(usd, 8),
        "ordFroz": "",
        "totalEq": plain(equity, 8),
        "uTime": now,
        "upl": plain(fig.total_upl, 8),
    }


def _positions(req: SimRequest, account: AccountSpec | None, state: SimState) -> dict:
    account = signed(account)
    fig = state.figures(account)
    wanted = set(filter(None, req.query.get("instId", "").split(",")))
    if req.query.get("instType") not in (None, "SWAP"):
        return envelope([])
    return envelope(
        [position_row(p, fig, state) for p in fig.positions if not wanted or inst_id(p.spec.symbol) in wanted]
    )


def position_row(p: PositionFigures, fig: AccountFigures, state: SimState) -> dict:
    """One position as /account/positions and the `positions` stream send it."""
    isolated = p.spec.margin_mode == "isolated"
    margin = p.spec.isolated_margin or 0.0
    ratio = (
        (margin + p.unrealized_pnl) / p.maintenance_margin if isolated and p.maintenance_margin else fig.cross_health
    )
    places = places_of(p.market.price_tick)
    pos = p.spec.contracts if fig.hedge_mode else p.sign * p.spec.contracts
    created = str(state.started_ms)
    return {
        "adl": "1",
        "availPos": plain(p.spec.contracts),
        "avgPx": plain(p.spec.entry_price, 8),
        "baseBal": "",
        "baseBorrowed": "",
        "baseInterest": "",
        "bePx": plain(p.spec.entry_price * (1 + p.sign * fig.taker_fee), 8),
        "bizRefId": "",
        "bizRefType": "",
        "cTime": created,
        "ccy": fig.spec.collateral,
        "clSpotInUseAmt": "",
        "closeOrderAlgo": [],
        "deltaBS": "",
        "deltaPA": "",
        "fee": "0",
        "fundingFee": "0",
        "gammaBS": "",
        "gammaPA": "",
        "hedgedPos": "",
        "idxPx": plain(p.mark, places + 2),
        "imr": "" if isolated else plain(p.initial_margin, 8),
        "instId": inst_id(p.spec.symbol),
        "instType": "SWAP",
        "interest": "",
        "last": plain(p.mark, places + 2),
        "lever": plain(p.leverage),
        "liab": "",
        "liabCcy": "",
        "liqPenalty": "0",
        "liqPx": plain(p.liquidation_price, places + 4),
        "margin": plain(margin, 8) if isolated else "",
        "markPx": plain(p.mark, places + 2),
        "maxSpotInUseAmt": "",
        "mgnMode": p.spec.margin_mode,
        "mgnRatio": "" if ratio is None else plain(ratio, 8),
        "mmr": plain(p.maintenance_margin - p.closing_fee, 8),
        "nonSettleAvgPx": "",
        "notionalUsd": plain(p.size if p.market.inverse else p.notional, 8),  # inverse: contracts x ctVal USD
        "optVal": "",
        "pendingCloseOrdLiabVal": "",
        "pnl": "0",
        "pos": plain(pos),
        "posCcy": "",
        "posId": str(3234547810395054080 + p.index),
        "posSide": ("long" if p.spec.side == "long" else "short") if fig.hedge_mode else "net",
        "quoteBal": "",
        "quoteBorrowed": "",
        "quoteInterest": "",
        "realizedPnl": "0",
        "settledPnl": "",
        "spotInUseAmt": "",
        "spotInUseCcy": "",
        "thetaBS": "",
        "thetaPA": "",
        "tradeId": "269654427",
        "uTime": created,
        "upl": plain(p.unrealized_pnl, 8),
        "uplLastPx": plain(p.unrealized_pnl, 8),
        "uplRatio": plain(p.unrealized_pnl / (margin if isolated else p.initial_margin), 8),
        "uplRatioLastPx": plain(p.unrealized_pnl / (margin if isolated else p.initial_margin), 8),
        "usdPx": "",
        "vegaBS": "",
        "vegaPA": "",
    }


def _detail(template: dict, row: AssetFigures, account: AccountSpec, fig: AccountFigures) -> dict:
    """One currency of a multi-currency account: the settle currency's equity holds the
    positions' PnL and the isolated equity (OKX's eq), disEq is its value after discount."""
    settle = row.asset == account.collateral
    iso_eq = fig.isolated_margin + fig.isolated_upl if settle else 0.0
    eq = row.equity + iso_eq
    return {
        **template,
        "ccy": row.asset,
        "eq": plain(eq, 8),
        "cashBal": plain(row.amount + (fig.isolated_margin if settle else 0.0), 8),
        "eqUsd": plain(eq * row.price, 8),
        "disEq": plain(row.adjusted, 8),
        "isoEq": plain(iso_eq, 8),
        "upl": plain(fig.total_upl if settle else 0.0, 8),
    }


def _discount_rates(req: SimRequest, account: AccountSpec | None, state: SimState) -> dict:
    """GET /api/v5/public/discount-rate-interest-free-quota: each currency's discount bands.
    The scenario gives them in coin amounts; OKX publishes them in USD, so each band edge is
    turned into USD once at the scenario's price (its market's initial mark)."""
    rows: dict[str, dict] = {}
    for spec in state.accounts():
        if spec.venue != "okx":
            continue
        for asset in spec.collateral_assets:
            price = asset.price or state.scenario.markets["okx"][str(asset.price_symbol)].mark_price
            rows.setdefault(
                asset.asset,
                {
                    "ccy": asset.asset,
                    "amt": "0",
                    "discountLv": "",
                    "discountInfo": [
                        {
                            "discountRate": plain(r),
                            "minAmt": plain(lo * price),
                            "maxAmt": "" if hi is None else plain(hi * price),
                        }
                        for lo, hi, r in asset.tiers
                    ],
                },
            )
    rows.setdefault(
        "USDT",
        {
            "ccy": "USDT",
            "amt": "0",
            "discountLv": "",
            "discountInfo": [{"discountRate": "1", "minAmt": "0", "maxAmt": ""}],
        },
    )
    return envelope([rows[c] for c in sorted(rows)])


def _config(req: SimRequest, account: AccountSpec | None, state: SimState) -> dict:
    account = signed(account)
    fig = state.figures(account)
    perm = ",".join(
        ["read_only"] + (["trade"] if account.can_trade else []) + (["withdraw"] if account.can_withdraw else [])
    )
    uid = str(int(hashlib.sha256(account.api_key.encode()).hexdigest()[:12], 16))
    return envelope(
        [
            {
                "acctLv": "3" if account.collateral_assets else "2",
                "acctStpMode": "cancel_maker",
                "autoLoan": False,
                "ctIsoMode": "automatic",
                "enableSpotBorrow": False,
                "greeksType": "PA",
                "feeType": "0",
                "ip": "",
                "type": "0",
                "kycLv": "2",
                "label": account.name,
                "level": "Lv1",
                "levelTmp": "",
                "liquidationGear": "-1",
                "mainUid": uid,
                "mgnIsoMode": "automatic",
                "opAuth": "0",
                "perm": perm,
                "posMode": "long_short_mode" if fig.hedge_mode else "net_mode",
                "roleType": "0",
                "spotBorrowAutoRepay": False,
                "spotOffsetType": "",
                "spotRoleType": "0",
                "spotTraderInsts": [],
                "traderInsts": [],
                "uid": uid,
                "settleCcy": account.collateral,
                "settleCcyList": ["USD", "USDC", "USDG"],
            }
        ]
    )


# --- market data ---------------------------------------------------------------------


def _param_error(name: str) -> VenueError:
    return _error(400, "51000", f"Parameter {name} error")


def _market(req: SimRequest, state: SimState) -> MarketSpec:
    """The swap of `instId` (51001 when unknown)."""
    wanted = req.query.get("instId")
    if not wanted:
        raise _error(400, "50014", "Parameter instId can not be empty.")
    for market in state.markets.get("okx", {}).values():
        if inst_id(market.symbol) == wanted:
            return market
    raise _error(400, "51001", "Instrument ID does not exist.")


def _candles(
    req: SimRequest, state: SimState, limits: tuple[int, int], recent_only: bool
) -> tuple[MarketSpec, list[Candle], int]:
    """The bars a candles request selects, newest first as OKX sends them: open time
    < `after` and > `before`, the newest `limit` of those."""
    market = _market(req, state)
    bar = BARS.get(req.query.get("bar") or "1m")  # OKX's default bar is 1m, which is not simulated
    if bar is None:
        raise _param_error("bar")
    hours, offset = bar
    limit = int_param(req.query, "limit", limits[0], lambda: _param_error("limit"))
    after = int_param(req.query, "after", None, lambda: _param_error("after"))
    before = int_param(req.query, "before", None, lambda: _param_error("before"))
    if limit is None or not 1 <= limit <= limits[1]:
        raise _param_error("limit")
    candles = state.candles.candles("okx", market.symbol, req.now_ms, hours, offset)
    if recent_only:
        candles = candles[-RECENT_CANDLES:]
    chosen = [c for c in candles if (after is None or c.ts < after) and (before is None or c.ts > before)]
    return market, chosen[-limit:][::-1], hours * HOUR_MS


def _confirm(c: Candle, width: int, now_ms: int) -> str:
    return "1" if c.ts + width <= now_ms else "0"


def _candle_rows(req: SimRequest, state: SimState, recent_only: bool) -> dict:
    market, candles, width = _candles(req, state, CANDLE_LIMIT, recent_only)
    places = places_of(market.price_tick) + 4
    return envelope(
        [
            [
                str(c.ts),
                plain(c.open, places),
                plain(c.high, places),
                plain(c.low, places),
                plain(c.close, places),
                plain(c.volume, 8),
                plain(c.volume * market.contract_size, 8),
                plain(c.volume * market.contract_size * c.close, 8),
                _confirm(c, width, req.now_ms),
            ]
            for c in candles
        ]
    )


def _market_candles(req: SimRequest, account: AccountSpec | None, state: SimState) -> dict:
    return _candle_rows(req, state, recent_only=True)


def _history_candles(req: SimRequest, account: AccountSpec | None, state: SimState) -> dict:
    return _candle_rows(req, state, recent_only=False)


def _mark_rows(req: SimRequest, state: SimState, recent_only: bool) -> dict:
    market, candles, width = _candles(req, state, MARK_CANDLE_LIMIT, recent_only)
    places = places_of(market.price_tick) + 4
    return envelope(
        [
            [
                str(c.ts),
                plain(c.open, places),
                plain(c.high, places),
                plain(c.low, places),
                plain(c.close, places),
                _confirm(c, width, req.now_ms),
            ]
            for c in candles
        ]
    )


def _mark_price_candles(req: SimRequest, account: AccountSpec | None, state: SimState) -> dict:
    return _mark_rows(req, state, recent_only=True)


def _history_mark_price_candles(req: SimRequest, account: AccountSpec | None, state: SimState) -> dict:
    return _mark_rows(req, state, recent_only=False)


def _funding_rate(req: SimRequest, account: AccountSpec | None, state: SimState) -> dict:
    """`fundingRate` is the running interval's, settled at `fundingTime` (the next
    settlement); `nextFundingRate` the prediction for the one after (here the same rate);
    instId=ANY lists every swap."""
    if req.query.get("instId") == "ANY":
        markets = list(state.markets.get("okx", {}).values())
    else:
        markets = [_market(req, state)]
    funding_time = next_funding_ms(req.now_ms)
    rows = []
    for market in markets:
        rate = plain(state.funding_rate("okx", market.symbol), 10)
        rows.append(
            {
                "formulaType": "noRate",
                "fundingRate": rate,
                "fundingTime": str(funding_time),
                "impactValue": "",
                "instId": inst_id(market.symbol),
                "instType": "SWAP",
                "interestRate": "0",
                "maxFundingRate": "0.0075",
                "method": "current_period",
                "minFundingRate": "-0.0075",
                "nextFundingRate": rate,
                "nextFundingTime": str(funding_time + FUNDING_INTERVAL_MS),
                "premium": "0",
                "settFundingRate": rate,
                "settState": "settled",
                "ts": str(req.now_ms),
            }
        )
    return envelope(rows)


def _books(req: SimRequest, account: AccountSpec | None, state: SimState) -> dict:
    """Depth in contracts: [price, contracts, "0", number of orders]."""
    market = _market(req, state)
    size = int_param(req.query, "sz", 1, lambda: _param_error("sz"))
    if size is None or not 1 <= size <= BOOKS_MAX[req.path]:
        raise _param_error("sz")
    bids, asks = order_book(market, state.mark("okx", market.symbol))
    places = places_of(market.price_tick)

    def levels(side: list[tuple[float, float]]) -> list[list[str]]:
        return [[plain(p, places), plain(q), "0", str(1 + i % 7)] for i, (p, q) in enumerate(side[:size])]

    return envelope([{"asks": levels(asks), "bids": levels(bids), "ts": str(req.now_ms), "seqId": req.now_ms // 1000}])


# --- liquidation fills and closed positions ------------------------------------------


def _bill_id(r: LiquidationRecord) -> int:
    return 800_000_000_000 + r.id


def _fills(req: SimRequest, account: AccountSpec | None, state: SimState) -> dict:
    """The account's fills, newest first: here only its liquidation fills (the simulator
    takes no orders). subType 104/105 (liquidation long/short) in long/short mode, 106/107
    (liquidation buy/sell) in net mode. /trade/fills-history needs instType;
    /trade/fills covers the last 3 days."""
    account = signed(account)
    history = req.path.endswith("fills-history")
    kind = req.query.get("instType")
    if history and not kind:
        raise _error(400, "50014", "Parameter instType can not be empty.")
    if kind not in (None, "SWAP"):
        return envelope([])
    wanted = req.query.get("instId")
    limit = int_param(req.query, "limit", FILLS_LIMIT[0], lambda: _param_error("limit"))
    if limit is None or not 1 <= limit <= FILLS_LIMIT[1]:
        raise _param_error("limit")
    begin = int_param(req.query, "begin", None, lambda: _param_error("begin"))
    end = int_param(req.query, "end", None, lambda: _param_error("end"))
    after = int_param(req.query, "after", None, lambda: _param_error("after"))
    before = int_param(req.query, "before", None, lambda: _param_error("before"))
    oldest = None if history else req.now_ms - FILLS_RECENT_MS
    records = [
        r
        for r in state.liquidations("okx", account.api_key)
        if (not wanted or inst_id(r.symbol) == wanted)
        and (begin is None or r.time_ms >= begin)
        and (end is None or r.time_ms <= end)
        and (oldest is None or r.time_ms >= oldest)
        and (after is None or _bill_id(r) < after)
        and (before is None or _bill_id(r) > before)
    ]
    rows = []
    for r in records[::-1][:limit]:
        places = places_of(state.markets["okx"][r.symbol].price_tick)
        if r.hedge_mode:
            sub_type, pos_side = ("104", "long") if r.side == "long" else ("105", "short")
        else:
            sub_type, pos_side = ("107" if r.close_side == "sell" else "106"), "net"
        rate = state.markets["okx"][r.symbol].liquidation_fee_rate
        rows.append(
            {
                "instType": "SWAP",
                "instId": inst_id(r.symbol),
                "tradeId": str(400_000_000 + r.id),
                "ordId": str(700_000_000_000 + r.id),
                "clOrdId": "",
                "billId": str(_bill_id(r)),
                "subType": sub_type,
                "tag": "",
                "fillPx": plain(r.price, places),
                "fillSz": plain(r.contracts),
                "fillIdxPx": plain(r.mark_price, places + 2),
                "fillPnl": plain(r.realized_pnl, 8),
                "fillPxVol": "",
                "fillPxUsd": "",
                "fillMarkVol": "",
                "fillFwdPx": "",
                "fillMarkPx": plain(r.mark_price, places + 2),
                "side": r.close_side,
                "posSide": pos_side,
                "execType": "T",
                "feeCcy": account.collateral,
                "fee": plain(-r.fee, 8),
                "ts": str(r.time_ms),
                "fillTime": str(r.time_ms),
                "feeRate": plain(-rate, 6),
            }
        )
    return envelope(rows)


def _positions_history(req: SimRequest, account: AccountSpec | None, state: SimState) -> dict:
    """Closed positions, newest first: here the liquidated ones, `type` "3" (liquidation),
    the liquidation fee in `liqPenalty` (negative)."""
    account = signed(account)
    if req.query.get("instType") not in (None, "SWAP"):
        return envelope([])
    wanted, mode, kind = req.query.get("instId"), req.query.get("mgnMode"), req.query.get("type")
    limit = int_param(req.query, "limit", 100, lambda: _param_error("limit"))
    after = int_param(req.query, "after", None, lambda: _param_error("after"))
    before = int_param(req.query, "before", None, lambda: _param_error("before"))
    if limit is None or not 1 <= limit <= 100:
        raise _param_error("limit")
    rows = []
    for r in state.liquidations("okx", account.api_key)[::-1]:
        if (
            (wanted and inst_id(r.symbol) != wanted)
            or mode not in (None, r.margin_mode)
            or kind not in (None, "3")
            or (after is not None and r.time_ms >= after)
            or (before is not None and r.time_ms <= before)
        ):
            continue
        market = state.markets["okx"][r.symbol]
        places = places_of(market.price_tick)
        margin = r.entry_price * r.size / r.leverage
        rows.append(
            {
                "cTime": str(state.started_ms),
                "ccy": account.collateral,
                "closeAvgPx": plain(r.price, places),
                "closeTotalPos": plain(r.contracts),
                "direction": r.side,
                "fee": "0",
                "fundingFee": "0",
                "instId": inst_id(r.symbol),
                "instType": "SWAP",
                "lever": plain(r.leverage),
                "liqPenalty": plain(-r.fee, 8),
                "mgnMode": r.margin_mode,
                "nonSettleAvgPx": "",
                "openAvgPx": plain(r.entry_price, 8),
                "openMaxPos": plain(r.contracts),
                "pnl": plain(r.realized_pnl, 8),
                "pnlRatio": plain(r.realized_pnl / margin if margin else 0, 8),
                "posId": str(3234547810395054080 + r.id),
                "posSide": (r.side if r.hedge_mode else "net"),
                "realizedPnl": plain(r.realized_pnl - r.fee, 8),
                "settledPnl": "",
                "triggerPx": plain(r.price, places),
                "type": "3",
                "uTime": str(r.time_ms),
                "uly": inst_family(market),
            }
        )
    return envelope(rows[:limit])


VENUE = VenueSpec(
    name="okx",
    hosts=(HOST,),
    routes={
        ("GET", "/api/v5/public/time"): Route(_time),
        ("GET", "/api/v5/public/instruments"): Route(_instruments),
        ("GET", "/api/v5/public/position-tiers"): Route(_position_tiers),
        ("GET", "/api/v5/asset/currencies"): Route(_currencies, signed=True),
        ("GET", "/api/v5/account/balance"): Route(_balance, signed=True),
        ("GET", "/api/v5/account/positions"): Route(_positions, signed=True),
        ("GET", "/api/v5/account/config"): Route(_config, signed=True),
        ("GET", "/api/v5/public/discount-rate-interest-free-quota"): Route(_discount_rates),
        ("GET", "/api/v5/market/candles"): Route(_market_candles),
        ("GET", "/api/v5/market/history-candles"): Route(_history_candles),
        ("GET", "/api/v5/market/mark-price-candles"): Route(_mark_price_candles),
        ("GET", "/api/v5/market/history-mark-price-candles"): Route(_history_mark_price_candles),
        ("GET", "/api/v5/public/funding-rate"): Route(_funding_rate),
        ("GET", "/api/v5/market/books"): Route(_books),
        ("GET", "/api/v5/market/books-full"): Route(_books),
        ("GET", "/api/v5/trade/fills"): Route(_fills, signed=True),
        ("GET", "/api/v5/trade/fills-history"): Route(_fills, signed=True),
        ("GET", "/api/v5/account/positions-history"): Route(_positions_history, signed=True),
    },
    authenticate=authenticate,
    error=error,
    key_fields=("markPx", "liqPx", "cashBal", "mmr", "ctVal", "fundingRate", "fillPx"),
    wrong_types={
        "markPx": lambda v: None,
        "pos": negated,
        "upl": lambda v: "n/a",
        "cashBal": lambda v: "n/a",
        "mmr": lambda v: "n/a",
        "ctVal": lambda v: "n/a",
        "fundingRate": lambda v: "n/a",
        "fillPx": lambda v: "n/a",
    },
)
