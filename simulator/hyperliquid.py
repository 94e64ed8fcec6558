"""Hyperliquid (api.hyperliquid.xyz): the info endpoint, as ccxt's hyperliquid calls it.

Every read is one unsigned `POST /info` whose JSON body names the request `type`; reads
about an account carry its wallet address in `user` and nothing else (no key, no signature,
no timestamp). The request log and the faults name a request by its type as well
("/info:clearinghouseState"); a fault registered for "/info" covers every type.

Shapes follow Hyperliquid's info-endpoint documentation ("Perpetuals" and the info endpoint
page) and the responses recorded in ccxt's tests (tests/fixtures/hyperliquid/): numbers as
decimal strings with at least one decimal ("4.0"), money to 6 decimals, leverage and
maxLeverage as integers. Account figures come from simulator/hyperliquid_margin.py, the
venue's published formulas, not from the margin engine.

Only the first perpetuals dex is served (`dex` absent or ""), with no spot markets; an
unknown request type, or a body the venue could not read, gets Hyperliquid's 422
"Failed to deserialize the JSON body into the target type".
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

from simulator import hyperliquid_margin as hl
from simulator.common import Route, SimRequest, VenueError, VenueSpec, negated, places_of, plain
from simulator.faults import FAULT_KINDS
from simulator.figures import PositionFigures
from simulator.liquidation import LiquidationRecord
from simulator.market import HOUR_MS, Candle, order_book
from simulator.scenario import HYPERLIQUID, WALLET_ADDRESS, AccountSpec, MarketSpec
from simulator.state import SimState

HOST = "api.hyperliquid.xyz"
INFO = "/info"
BOOK_LEVELS = 20  # l2Book: at most 20 levels a side
CANDLE_LIMIT = 5000  # candleSnapshot: only the most recent 5000 candles
FILLS_LIMIT = 2000  # userFills / userFillsByTime: at most 2000 fills a response
INTERVALS = {"1h": 1, "2h": 2, "4h": 4, "8h": 8, "12h": 12, "1d": 24}  # the simulator's
USDC_TOKEN = {
    "name": "USDC",
    "szDecimals": 8,
    "weiDecimals": 8,
    "index": 0,
    "tokenId": "0x6d1e7cde53ba9467b783cb7c530ce054",
    "isCanonical": True,
    "evmContract": None,
    "fullName": None,
}
_ZERO_FUNDING = {"allTime": "0.0", "sinceOpen": "0.0", "sinceChange": "0.0"}  # never charged here

Info = dict[str, Any]


def num(value: float, places: int) -> str:
    """Hyperliquid's decimal strings: at most `places` decimals, at least one ("4.0")."""
    text = plain(value, places)
    return text if "." in text else text + ".0"


def money(value: float) -> str:
    return num(value, 6)


def price(value: float) -> str:
    return num(value, 10)


def request_name(path: str, body: str) -> str:
    """ "/info:<type>" for an info request whose type can be read, else the path."""
    if path != INFO:
        return path
    try:
        doc = json.loads(body)
    except ValueError:
        return path
    kind = doc.get("type") if isinstance(doc, dict) else None
    return f"{INFO}:{kind}" if isinstance(kind, str) and kind else path


def _unreadable(detail: str) -> VenueError:
    return VenueError(
        422, f"Failed to deserialize the JSON body into the target type: {detail}", content_type="text/plain"
    )


def error(kind: str, req: SimRequest) -> VenueError:
    """The simulator's answers for the generic faults. Hyperliquid documents neither its
    rate-limit body nor a maintenance answer: 429 and 503 with a JSON null body."""
    if kind == "rate_limit":
        return VenueError(429, None)
    if kind == "maintenance":
        return VenueError(503, None)
    if kind == "stale_timestamp":  # refused by fault_kinds: reads carry no timestamp
        return _unreadable("unexpected timestamp")
    return VenueError(404, "")


def authenticate(req: SimRequest, state: SimState) -> AccountSpec:
    raise RuntimeError("Hyperliquid reads are unsigned: no route authenticates")


# --- the request ---------------------------------------------------------------------


def _info(req: SimRequest, account: AccountSpec | None, state: SimState) -> Any:
    try:
        doc = json.loads(req.body)
    except ValueError:
        raise _unreadable("expected a JSON object") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("type"), str):
        raise _unreadable("missing field `type`")
    handler = TYPES.get(doc["type"])
    if handler is None:
        raise _unreadable(f"unknown variant `{doc['type']}`")
    return handler(doc, req, state)


def _user(doc: Info) -> str:
    user = doc.get("user")
    if not isinstance(user, str) or not WALLET_ADDRESS.match(user):
        raise _unreadable(f"user: invalid address {user!r}")
    return user.lower()


def _main_dex(doc: Info) -> None:
    if doc.get("dex") not in (None, ""):
        raise _unreadable(f"dex: only the first perp dex is simulated, got {doc.get('dex')!r}")


def _int(doc: Info, key: str) -> int | None:
    """An integer field; None when absent or null."""
    value = doc.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise _unreadable(f"{key}: expected an integer, got {value!r}")
    return value


def _markets(state: SimState) -> list[MarketSpec]:
    return list(state.markets.get(HYPERLIQUID, {}).values())


def _market_of(state: SimState, coin: Any) -> MarketSpec | None:
    return next((m for m in _markets(state) if m.base == coin), None)


def _sz_decimals(market: MarketSpec) -> int:
    return places_of(market.amount_step)


# --- metadata and asset contexts -----------------------------------------------------


def _tables(state: SimState) -> tuple[dict[str, int], list[list[Any]]]:
    """Each market's marginTableId, and the tables: a single tier keeps its max leverage
    as its id ("for IDs less than 50, there is a single tier with max leverage equal to the
    ID"), tiered tables are numbered from 51 as in the docs' example."""
    ids: dict[str, int] = {}
    tables: dict[int, dict[str, Any]] = {}
    tiered: dict[tuple[tuple[float, int], ...], int] = {}
    for market in _markets(state):
        table = hl.margin_table(market)
        rows = tuple((t.lower_bound, t.max_leverage) for t in table)
        if len(table) == 1:
            table_id, description = table[0].max_leverage, ""
        else:
            table_id = tiered.setdefault(rows, 51 + len(tiered))
            description = f"tiered {table[0].max_leverage}x"
        ids[market.symbol] = table_id
        tables[table_id] = {
            "description": description,
            "marginTiers": [{"lowerBound": num(lower, 1), "maxLeverage": lev} for lower, lev in rows],
        }
    return ids, [[i, tables[i]] for i in sorted(tables)]


def _meta(doc: Info, req: SimRequest, state: SimState) -> Info:
    _main_dex(doc)
    ids, tables = _tables(state)
    universe = [
        {
            "szDecimals": _sz_decimals(m),
            "name": m.base,
            "maxLeverage": int(m.tiers[0].max_leverage),
            "marginTableId": ids[m.symbol],
        }
        for m in _markets(state)
    ]
    return {"universe": universe, "marginTables": tables}


def _asset_context(market: MarketSpec, req: SimRequest, state: SimState) -> Info:
    """Mark, mid and impact prices from the simulated book, 24 h figures from the candles;
    openInterest is the simulator's accounts' open size in the coin."""
    mark = state.mark(HYPERLIQUID, market.symbol)
    bids, asks = order_book(market, mark)
    bid, ask = bids[0][0] if bids else mark, asks[0][0]
    day = state.candles.hourly(HYPERLIQUID, market.symbol, req.now_ms)[-24:]
    base_volume = sum(c.volume for c in day)
    held = sum(
        p.contracts
        for a in state.accounts()
        if a.venue == HYPERLIQUID
        for p in a.positions
        if p.symbol == market.symbol
    )
    return {
        "dayNtlVlm": money(sum(c.volume * c.close for c in day)),
        "funding": num(state.funding_rate(HYPERLIQUID, market.symbol), 10),
        "impactPxs": [price(bid), price(ask)],
        "markPx": price(mark),
        "midPx": price((bid + ask) / 2),
        "openInterest": num(held, _sz_decimals(market)),
        "oraclePx": price(mark),
        "premium": "0.0",
        "prevDayPx": price(day[0].open),
        "dayBaseVlm": num(base_volume, _sz_decimals(market)),
    }


def _meta_and_asset_contexts(doc: Info, req: SimRequest, state: SimState) -> list[Any]:
    return [_meta(doc, req, state), [_asset_context(m, req, state) for m in _markets(state)]]


def _spot_meta(doc: Info, req: SimRequest, state: SimState) -> Info:
    return {"universe": [], "tokens": [USDC_TOKEN]}  # no spot markets are simulated


def _spot_meta_and_asset_contexts(doc: Info, req: SimRequest, state: SimState) -> list[Any]:
    return [_spot_meta(doc, req, state), []]


def _perp_dexs(doc: Info, req: SimRequest, state: SimState) -> list[Any]:
    return [None]  # the first dex only (null: the main dex); no builder-deployed dexes


def _margin_table(doc: Info, req: SimRequest, state: SimState) -> Info | None:
    wanted = _int(doc, "id")
    return next((table for table_id, table in _tables(state)[1] if table_id == wanted), None)


def _exchange_status(doc: Info, req: SimRequest, state: SimState) -> Info:
    return {"specialStatuses": None, "time": req.now_ms}


def _all_mids(doc: Info, req: SimRequest, state: SimState) -> Info:
    _main_dex(doc)
    result = {}
    for market in _markets(state):
        bids, asks = order_book(market, state.mark(HYPERLIQUID, market.symbol))
        result[market.base] = price(((bids[0][0] if bids else asks[0][0]) + asks[0][0]) / 2)
    return result


# --- the account ---------------------------------------------------------------------


def _summary(s: hl.MarginSummary) -> Info:
    return {
        "accountValue": money(s.account_value),
        "totalNtlPos": money(s.total_ntl_pos),
        "totalRawUsd": money(s.total_raw_usd),
        "totalMarginUsed": money(s.total_margin_used),
    }


def _position(p: PositionFigures) -> Info:
    leverage: Info = {"type": p.spec.margin_mode, "value": int(p.leverage)}
    if p.spec.margin_mode == "isolated":
        leverage["rawUsd"] = money(hl.raw_usd(p))
    return {
        "coin": p.market.base,
        "szi": num(hl.szi(p), _sz_decimals(p.market)),
        "leverage": leverage,
        "entryPx": price(p.spec.entry_price),
        "positionValue": money(p.notional),
        "unrealizedPnl": money(p.unrealized_pnl),
        "returnOnEquity": num(hl.return_on_equity(p), 10),
        "liquidationPx": None if p.liquidation_price is None else price(p.liquidation_price),
        "marginUsed": money(hl.margin_used(p)),
        "maxLeverage": int(p.market.tiers[0].max_leverage),
        "cumFunding": dict(_ZERO_FUNDING),
    }


def _clearinghouse_state(doc: Info, req: SimRequest, state: SimState) -> Info:
    """The account's perpetuals state; an address without an account reads as an empty
    one, as on Hyperliquid (any address can be asked about)."""
    _main_dex(doc)
    account = state.account(HYPERLIQUID, _user(doc))
    if account is None:
        empty = {"accountValue": "0.0", "totalNtlPos": "0.0", "totalRawUsd": "0.0", "totalMarginUsed": "0.0"}
        return {
            "marginSummary": empty,
            "crossMarginSummary": dict(empty),
            "crossMaintenanceMarginUsed": "0.0",
            "withdrawable": "0.0",
            "assetPositions": [],
            "time": req.now_ms,
        }
    fig = state.figures(account)
    house = hl.clearinghouse(fig)
    return {
        "marginSummary": _summary(house.margin_summary),
        "crossMarginSummary": _summary(house.cross_margin_summary),
        "crossMaintenanceMarginUsed": money(house.cross_maintenance_margin_used),
        "withdrawable": money(house.withdrawable),
        "assetPositions": [{"type": "oneWay", "position": _position(p)} for p in fig.positions],
        "time": req.now_ms,
    }


def _spot_clearinghouse_state(doc: Info, req: SimRequest, state: SimState) -> Info:
    _user(doc)
    return {"balances": []}  # no spot balances are simulated


def _user_abstraction(doc: Info, req: SimRequest, state: SimState) -> str:
    """ "default": a standard account (perpetuals margined by the perps balance alone), not a
    unified or portfolio-margin account (ccxt asks this before fetch_balance)."""
    _user(doc)
    return "default"


def _fill(r: LiquidationRecord, user: str, market: MarketSpec) -> Info:
    """A liquidation fill of the liquidated user, as in ccxt's recorded userFills."""
    decimals = _sz_decimals(market)
    sign = 1 if r.side == "long" else -1
    return {
        "coin": market.base,
        "px": price(r.price),
        "sz": num(r.contracts, decimals),
        "side": "A" if r.close_side == "sell" else "B",
        "time": r.time_ms,
        "startPosition": num(sign * r.contracts, decimals),
        "dir": "Close Long" if r.side == "long" else "Close Short",
        "closedPnl": money(r.realized_pnl),
        "hash": "0x" + hashlib.sha256(f"{user}:{r.id}".encode()).hexdigest(),
        "oid": 300_000_000_000 + r.id,
        "crossed": True,
        "fee": money(r.fee),
        "tid": 800_000_000_000_000 + r.id,
        "liquidation": {"liquidatedUser": user, "markPx": price(r.mark_price), "method": "market"},
        "feeToken": "USDC",
        "twapId": None,
    }


def _user_fills(doc: Info, req: SimRequest, state: SimState) -> list[Info]:
    """The user's fills, newest first: only liquidations (nothing else trades here)."""
    user = _user(doc)
    records = state.liquidations(HYPERLIQUID, user)[::-1][:FILLS_LIMIT]
    return [_fill(r, user, state.markets[HYPERLIQUID][r.symbol]) for r in records]


def _user_fills_by_time(doc: Info, req: SimRequest, state: SimState) -> list[Info]:
    """Fills with `startTime` <= time <= `endTime` (default now), oldest first."""
    user = _user(doc)
    start = _int(doc, "startTime")
    if start is None:
        raise _unreadable("missing field `startTime`")
    end = _int(doc, "endTime")
    until = req.now_ms if end is None else end
    records = [r for r in state.liquidations(HYPERLIQUID, user) if start <= r.time_ms <= until]
    return [_fill(r, user, state.markets[HYPERLIQUID][r.symbol]) for r in records[:FILLS_LIMIT]]


# --- market data ---------------------------------------------------------------------


def _candle_snapshot(doc: Info, req: SimRequest, state: SimState) -> list[Info]:
    """Candles overlapping [startTime, endTime], oldest first, at most the latest 5000;
    [] for an unknown coin. `T` is the candle's last millisecond, `v` in coins, `n` a
    made-up trade count."""
    spec = doc.get("req")
    if not isinstance(spec, dict):
        raise _unreadable("missing field `req`")
    interval = spec.get("interval")
    if interval not in INTERVALS:
        raise _unreadable(f"req.interval: {interval!r} is not simulated (only {', '.join(INTERVALS)})")
    start, end = _int(spec, "startTime"), _int(spec, "endTime")
    if start is None:
        raise _unreadable("missing field `req.startTime`")
    market = _market_of(state, spec.get("coin"))
    if market is None:
        return []
    width = INTERVALS[interval] * HOUR_MS
    candles = state.candles.candles(HYPERLIQUID, market.symbol, req.now_ms, INTERVALS[interval])
    until = req.now_ms if end is None else end
    chosen = [c for c in candles if c.ts + width > start and c.ts <= until][-CANDLE_LIMIT:]
    return [_candle(c, market, interval, width) for c in chosen]


def _candle(c: Candle, market: MarketSpec, interval: str, width: int) -> Info:
    return {
        "t": c.ts,
        "T": c.ts + width - 1,
        "s": market.base,
        "i": interval,
        "o": price(c.open),
        "c": price(c.close),
        "h": price(c.high),
        "l": price(c.low),
        "v": num(c.volume, _sz_decimals(market)),
        "n": max(1, round(c.volume * c.close / 10_000)),
    }


def _l2_book(doc: Info, req: SimRequest, state: SimState) -> Info | None:
    """The simulated book, 20 levels a side, sizes in coins; null for an unknown coin."""
    market = _market_of(state, doc.get("coin"))
    if market is None:
        return None
    bids, asks = order_book(market, state.mark(HYPERLIQUID, market.symbol))
    decimals = _sz_decimals(market)

    def levels(side: list[tuple[float, float]]) -> list[Info]:
        return [{"px": price(p), "sz": num(q, decimals), "n": 1 + i % 7} for i, (p, q) in enumerate(side[:BOOK_LEVELS])]

    return {"coin": market.base, "time": req.now_ms, "levels": [levels(bids), levels(asks)]}


TYPES: dict[str, Callable[[Info, SimRequest, SimState], Any]] = {
    "meta": _meta,
    "metaAndAssetCtxs": _meta_and_asset_contexts,
    "spotMeta": _spot_meta,
    "spotMetaAndAssetCtxs": _spot_meta_and_asset_contexts,
    "perpDexs": _perp_dexs,
    "marginTable": _margin_table,
    "exchangeStatus": _exchange_status,
    "allMids": _all_mids,
    "clearinghouseState": _clearinghouse_state,
    "spotClearinghouseState": _spot_clearinghouse_state,
    "userAbstraction": _user_abstraction,
    "userFills": _user_fills,
    "userFillsByTime": _user_fills_by_time,
    "candleSnapshot": _candle_snapshot,
    "l2Book": _l2_book,
}


VENUE = VenueSpec(
    name=HYPERLIQUID,
    hosts=(HOST,),
    routes={("POST", INFO): Route(_info)},
    authenticate=authenticate,
    error=error,
    key_fields=("positionValue", "liquidationPx", "accountValue", "marginUsed", "markPx", "funding", "px"),
    wrong_types={
        "positionValue": lambda v: None,
        "szi": negated,
        "accountValue": lambda v: "n/a",
        "unrealizedPnl": lambda v: "n/a",
        "marginUsed": lambda v: "n/a",
        "markPx": lambda v: "n/a",
        "funding": lambda v: "n/a",
        "px": lambda v: "n/a",
    },
    request_name=request_name,
    fault_kinds=FAULT_KINDS - {"stale_timestamp"},
)
