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

from connectors.simulator.common import (
    Route,
    SimRequest,
    VenueError,
    VenueSpec,
    places_of,
    plain,
    signed,
)
from connectors.simulator.figures import AccountFigures, PositionFigures
from connectors.simulator.scenario import AccountSpec, MarketSpec
from connectors.simulator.state import SimState

HOST = "www.okx.com"
TIMESTAMP_WINDOW_MS = 30_000  # OKX refuses a request timestamp more than 30 s off
UNBOUNDED_SZ = 100_000_000


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
    for header, code in (("OK-ACCESS-KEY", "50103"), ("OK-ACCESS-PASSPHRASE", "50104"),
                         ("OK-ACCESS-SIGN", "50106"), ("OK-ACCESS-TIMESTAMP", "50107")):
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
    digest = hmac.new(account.secret.encode(), (stamp + req.method + path + req.body).encode(),
                      hashlib.sha256).digest()
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
        data.append({
            "alias": "", "auctionEndTime": "", "baseCcy": "", "category": "1", "ctMult": "1",
            "ctType": "linear", "ctVal": plain(market.contract_size), "ctValCcy": market.base,
            "expTime": "", "instFamily": family, "instId": inst_id(market.symbol), "instIdCode": 10000 + n,
            "instType": "SWAP", "lever": str(int(market.tiers[0].max_leverage)),
            "listTime": "1573557408000", "lotSz": step, "maxIcebergSz": "100000000",
            "maxLmtAmt": "20000000", "maxLmtSz": "100000000", "maxMktAmt": "", "maxMktSz": "12000",
            "maxStopSz": "12000", "maxTriggerSz": "100000000", "maxTwapSz": "100000000",
            "minSz": step, "optType": "", "quoteCcy": "", "ruleType": "normal",
            "settleCcy": market.quote, "state": "live", "stk": "", "tickSz": tick, "uly": family,
        })
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
            data.append({
                "baseMaxLoan": "", "imr": plain(1 / t.max_lever, 6), "instFamily": family,
                "instId": "", "maxLever": plain(t.max_lever), "minSz": plain(t.min_sz),
                "maxSz": plain(UNBOUNDED_SZ if t.max_sz is None else t.max_sz),
                "mmr": plain(t.mmr), "optMgnFactor": "0", "quoteMaxLoan": "", "tier": str(t.tier),
                "uly": family,
            })
    return envelope(data)


# --- signed --------------------------------------------------------------------------

def _currencies(req: SimRequest, account: AccountSpec | None, state: SimState) -> dict:
    coins = sorted({c for m in state.markets.get("okx", {}).values() for c in (m.base, m.quote)})
    return envelope([{
        "ccy": c, "chain": f"{c}-ERC20", "canDep": True, "canWd": True, "canInternal": True,
        "minWd": "1", "maxWd": "10000000", "wdTickSz": "6", "wdQuota": "10000000", "usedWdQuota": "0",
        "fee": "1", "minFee": "1", "maxFee": "2", "mainNet": False, "needTag": False, "name": c,
        "logoLink": "", "minDep": "0.00000001", "minDepArrivalConfirm": "12", "minWdUnlockConfirm": "12",
        "depQuotaFixed": "", "usedDepQuotaFixed": "", "depQuoteDailyLayer2": "", "ctAddr": "",
        "burningFeeRate": "", "depEstOpenTime": "", "wdEstOpenTime": "",
    } for c in coins])


def _ratio(fig: AccountFigures) -> str:
    health = fig.cross_health
    return "" if health is None else plain(health, 8)


def _balance(req: SimRequest, account: AccountSpec | None, state: SimState) -> dict:
    account = signed(account)
    fig = state.figures(account)
    cross_mmr = sum(p.maintenance_margin - p.closing_fee for p in fig.positions
                    if p.spec.margin_mode == "cross")
    cash = fig.wallet_balance + fig.isolated_margin
    equity = cash + fig.total_upl
    iso_eq = fig.isolated_margin + fig.isolated_upl
    available = max(0.0, fig.cross_equity - fig.cross_initial)
    notional = sum(p.notional for p in fig.positions)
    now = str(req.now_ms)
    detail = {
        "accAvgPx": "", "availBal": plain(available, 8), "availEq": plain(available, 8),
        "borrowFroz": "", "cashBal": plain(cash, 8), "ccy": account.collateral, "clSpotInUseAmt": "",
        "crossLiab": "", "disEq": plain(equity, 8), "eq": plain(equity, 8), "eqUsd": plain(equity, 8),
        "fixedBal": "0", "frozenBal": plain(fig.isolated_margin + fig.cross_initial, 8),
        "imr": plain(fig.cross_initial, 8), "interest": "", "isoEq": plain(iso_eq, 8), "isoLiab": "",
        "isoUpl": plain(fig.isolated_upl, 8), "liab": "", "maxLoan": "", "mgnRatio": _ratio(fig),
        "mmr": plain(cross_mmr, 8), "notionalLever": plain(notional / equity if equity > 0 else 0, 8),
        "ordFrozen": "0", "rewardBal": "0", "smtSyncEq": "0", "spotCopyTradingEq": "0",
        "spotInUseAmt": "", "spotIsoBal": "0", "stgyEq": "0", "twap": "0", "uTime": now,
        "upl": plain(fig.total_upl, 8), "uplLiab": "",
    }
    if req.query.get("ccy") not in (None, account.collateral):
        return envelope([{"adjEq": "", "details": [], "totalEq": "0", "uTime": now}])
    return envelope([{
        "adjEq": plain(fig.cross_equity, 8), "availEq": plain(available, 8), "borrowFroz": "",
        "details": [detail], "imr": plain(fig.cross_initial, 8), "isoEq": plain(iso_eq, 8),
        "mgnRatio": _ratio(fig), "mmr": plain(cross_mmr, 8), "notionalUsd": plain(notional, 8),
        "notionalUsdForBorrow": "", "notionalUsdForFutures": "0", "notionalUsdForOption": "0",
        "notionalUsdForSwap": plain(notional, 8), "ordFroz": "", "totalEq": plain(equity, 8),
        "uTime": now, "upl": plain(fig.total_upl, 8),
    }])


def _positions(req: SimRequest, account: AccountSpec | None, state: SimState) -> dict:
    account = signed(account)
    fig = state.figures(account)
    wanted = set(filter(None, req.query.get("instId", "").split(",")))
    if req.query.get("instType") not in (None, "SWAP"):
        return envelope([])
    return envelope([_position(p, fig, state) for p in fig.positions
                     if not wanted or inst_id(p.spec.symbol) in wanted])


def _position(p: PositionFigures, fig: AccountFigures, state: SimState) -> dict:
    isolated = p.spec.margin_mode == "isolated"
    margin = p.spec.isolated_margin or 0.0
    ratio = ((margin + p.unrealized_pnl) / p.maintenance_margin if isolated and p.maintenance_margin
             else fig.cross_health)
    places = places_of(p.market.price_tick)
    pos = p.spec.contracts if fig.hedge_mode else p.sign * p.spec.contracts
    created = str(state.started_ms)
    return {
        "adl": "1", "availPos": plain(p.spec.contracts), "avgPx": plain(p.spec.entry_price, 8),
        "baseBal": "", "baseBorrowed": "", "baseInterest": "",
        "bePx": plain(p.spec.entry_price * (1 + p.sign * fig.taker_fee), 8), "bizRefId": "",
        "bizRefType": "", "cTime": created, "ccy": fig.spec.collateral, "clSpotInUseAmt": "",
        "closeOrderAlgo": [], "deltaBS": "", "deltaPA": "", "fee": "0", "fundingFee": "0",
        "gammaBS": "", "gammaPA": "", "hedgedPos": "", "idxPx": plain(p.mark, places + 2),
        "imr": "" if isolated else plain(p.initial_margin, 8), "instId": inst_id(p.spec.symbol),
        "instType": "SWAP", "interest": "", "last": plain(p.mark, places + 2), "lever": plain(p.leverage),
        "liab": "", "liabCcy": "", "liqPenalty": "0",
        "liqPx": plain(p.liquidation_price, places + 4), "margin": plain(margin, 8) if isolated else "",
        "markPx": plain(p.mark, places + 2), "maxSpotInUseAmt": "", "mgnMode": p.spec.margin_mode,
        "mgnRatio": "" if ratio is None else plain(ratio, 8),
        "mmr": plain(p.maintenance_margin - p.closing_fee, 8), "nonSettleAvgPx": "",
        "notionalUsd": plain(p.notional, 8), "optVal": "", "pendingCloseOrdLiabVal": "", "pnl": "0",
        "pos": plain(pos), "posCcy": "", "posId": str(3234547810395054080 + p.index),
        "posSide": ("long" if p.spec.side == "long" else "short") if fig.hedge_mode else "net",
        "quoteBal": "", "quoteBorrowed": "", "quoteInterest": "", "realizedPnl": "0", "settledPnl": "",
        "spotInUseAmt": "", "spotInUseCcy": "", "thetaBS": "", "thetaPA": "", "tradeId": "269654427",
        "uTime": created, "upl": plain(p.unrealized_pnl, 8), "uplLastPx": plain(p.unrealized_pnl, 8),
        "uplRatio": plain(p.unrealized_pnl / (margin if isolated else p.initial_margin), 8),
        "uplRatioLastPx": plain(p.unrealized_pnl / (margin if isolated else p.initial_margin), 8),
        "usdPx": "", "vegaBS": "", "vegaPA": "",
    }


def _config(req: SimRequest, account: AccountSpec | None, state: SimState) -> dict:
    account = signed(account)
    fig = state.figures(account)
    perm = ",".join(["read_only"] + (["trade"] if account.can_trade else [])
                    + (["withdraw"] if account.can_withdraw else []))
    uid = str(int(hashlib.sha256(account.api_key.encode()).hexdigest()[:12], 16))
    return envelope([{
        "acctLv": "2", "acctStpMode": "cancel_maker", "autoLoan": False, "ctIsoMode": "automatic",
        "enableSpotBorrow": False, "greeksType": "PA", "feeType": "0", "ip": "", "type": "0",
        "kycLv": "2", "label": account.name, "level": "Lv1", "levelTmp": "", "liquidationGear": "-1",
        "mainUid": uid, "mgnIsoMode": "automatic", "opAuth": "0", "perm": perm,
        "posMode": "long_short_mode" if fig.hedge_mode else "net_mode", "roleType": "0",
        "spotBorrowAutoRepay": False, "spotOffsetType": "", "spotRoleType": "0",
        "spotTraderInsts": [], "traderInsts": [], "uid": uid, "settleCcy": account.collateral,
        "settleCcyList": ["USD", "USDC", "USDG"],
    }])


def _neg(value: object) -> str:
    return "-" + str(value).lstrip("-")


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
    },
    authenticate=authenticate,
    error=error,
    key_fields=("markPx", "liqPx", "cashBal", "mmr", "ctVal"),
    wrong_types={
        "markPx": lambda v: None, "pos": _neg, "upl": lambda v: "n/a", "cashBal": lambda v: "n/a",
        "mmr": lambda v: "n/a", "ctVal": lambda v: "n/a",
    },
)
