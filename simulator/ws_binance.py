"""Binance USD-M websocket streams (fstream.binance.com) as ccxt.pro's binanceusdm uses them.

Market streams (``/market/ws/<n>``, ``/public/ws/<n>``, ``/ws``): the client sends
``{"method": "SUBSCRIBE", "params": ["btcusdt@markPrice@1s"], "id": 1}`` and gets
``{"result": null, "id": 1}``; served streams are ``<symbol>@markPrice[@1s]`` and
``!markPrice@arr[@1s]`` (markPriceUpdate events; the array stream sends arrays). Any other
stream is answered with Binance's error frame (code 2), so a client asking for what the
simulator does not serve hears it.

User data (``/private/ws?listenKey=K``): the key comes from ``POST /fapi/v1/listenKey``
(binance.py); the client sends nothing; an ACCOUNT_UPDATE is pushed when the account's
positions or wallet change: ``B`` its collateral, ``P`` every open position plus a zero row
for each position closed since the last push (Binance sends only what changed; ccxt reads
either). Unknown key: HTTP 400 before the upgrade.

Marks are pushed at once on every change (Binance aggregates to 1 s or 3 s) and again at the
scenario's interval. Pings are the protocol's (the server answers ccxt's PING frames).
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from simulator.binance import market_id
from simulator.common import fixed, plain
from simulator.figures import AccountFigures, PositionFigures
from simulator.market import next_funding_ms
from simulator.scenario import AccountSpec
from simulator.state import MarkMoved
from simulator.ws_common import StreamHub, StreamSession

HOST = "fstream.binance.com"
VENUE = "binanceusdm"
_MARKET_PREFIXES = ("market/ws", "public/ws", "ws")


class BinanceSession(StreamSession):
    venue = VENUE

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.streams: set[str] = set()
        self._positions_sent: set[tuple[str, str]] = set()  # (symbol id, positionSide) in the last push

    @classmethod
    def channel_for(cls, path: str) -> str | None:
        path = path.strip("/")
        if path == "private/ws":
            return "private"
        for prefix in _MARKET_PREFIXES:
            rest = path.removeprefix(prefix)
            if rest != path and (rest == "" or rest.lstrip("/").isdigit()):
                return "public"
        return None

    @classmethod
    def refuse(cls, hub: StreamHub, request: web.Request, channel: str) -> web.Response | None:
        if channel != "private":
            return None
        key = request.rel_url.query.get("listenKey", "")
        if hub.state.account_for_listen_key(VENUE, key) is None:
            return web.json_response({"code": -1125, "msg": "This listenKey does not exist."}, status=400)
        return None

    def on_open(self) -> None:
        if self.channel == "private":
            account = self.hub.state.account_for_listen_key(VENUE, self.query.get("listenKey", ""))
            if account is not None:
                self.authenticated(account.api_key)

    def on_text(self, text: str) -> None:
        try:
            frame = json.loads(text)
        except ValueError:
            self.send({"error": {"code": 3, "msg": "Invalid JSON: expected value at line 1 column 1"}})
            return
        if not isinstance(frame, dict):
            self.send({"error": {"code": 3, "msg": "Invalid JSON: expected an object"}})
            return
        method, request_id, params = frame.get("method"), frame.get("id"), frame.get("params") or []
        if method == "LIST_SUBSCRIPTIONS":
            self.send({"result": sorted(self.streams), "id": request_id})
            return
        if method not in ("SUBSCRIBE", "UNSUBSCRIBE") or not isinstance(params, list) or self.channel != "public":
            self.send({"error": {"code": 2, "msg": f"Invalid request: unknown method {method!r}"}, "id": request_id})
            return
        for stream in params:
            if not _served(stream):
                self.send({"error": {"code": 2, "msg": f"Invalid request: unknown stream {stream}"}, "id": request_id})
                return
        before = set(self.marks)
        if method == "SUBSCRIBE":
            self.streams |= set(params)
        else:
            self.streams -= set(params)
        after = self._symbols(self.streams)
        self.watch_marks(after - before)
        self.unwatch_marks(before - after)
        self.send({"result": None, "id": request_id})
        if method == "SUBSCRIBE":  # the current marks at once (Binance: within a second)
            for symbol in sorted(self._symbols(set(params))):
                self.hub.push_current(self, symbol, self.on_mark)

    def _symbols(self, streams: set[str]) -> set[str]:
        """The markets `streams` cover. A stream of an unknown market is accepted and stays
        quiet, as on Binance."""
        markets = self.hub.state.markets.get(VENUE, {})
        if any(s.startswith("!") for s in streams):
            return set(markets)
        names = {s.partition("@")[0] for s in streams}
        return {symbol for symbol in markets if market_id(symbol).lower() in names}

    def on_mark(self, event: MarkMoved) -> None:
        update = _mark_update(self.hub, event)
        mid = market_id(event.symbol).lower()
        for stream in self.streams:
            if stream.startswith("!markPrice"):
                self.push([update])
            elif stream.split("@", 1)[0] == mid:
                self.push(update)

    def on_authenticated(self, spec: AccountSpec, fig: AccountFigures) -> None:
        self._positions_sent = {(market_id(p.spec.symbol), _side(fig, p)) for p in fig.positions}

    def on_account(self, spec: AccountSpec, fig: AccountFigures, now_ms: int) -> None:
        rows = []
        current: set[tuple[str, str]] = set()
        for p in fig.positions:
            side = _side(fig, p)
            current.add((market_id(p.spec.symbol), side))
            rows.append(
                {
                    "s": market_id(p.spec.symbol),
                    "pa": plain(p.sign * p.spec.contracts),
                    "ep": plain(p.spec.entry_price),
                    "bep": plain(p.spec.entry_price * (1 + p.sign * fig.taker_fee), 8),
                    "cr": "0",
                    "up": fixed(p.unrealized_pnl),
                    "mt": p.spec.margin_mode,
                    "iw": fixed(p.spec.isolated_margin or 0.0),
                    "ps": side,
                    "ma": spec.collateral,
                }
            )
        for symbol_id, side in sorted(self._positions_sent - current):
            rows.append(
                {
                    "s": symbol_id,
                    "pa": "0",
                    "ep": "0.00000",
                    "bep": "0",
                    "cr": "0",
                    "up": "0",
                    "mt": "cross",
                    "iw": "0",
                    "ps": side,
                    "ma": spec.collateral,
                }
            )
        self._positions_sent = current
        balance = {
            "a": spec.collateral,
            "wb": fixed(fig.wallet_balance + fig.isolated_margin),
            "cw": fixed(fig.wallet_balance),
            "bc": "0",
        }
        self.push({"e": "ACCOUNT_UPDATE", "E": now_ms, "T": now_ms, "a": {"m": "ORDER", "B": [balance], "P": rows}})

    def subscriptions(self) -> list[str]:
        return sorted(self.streams) if self.channel == "public" else ["ACCOUNT_UPDATE"]


def _side(fig: AccountFigures, p: PositionFigures) -> str:
    if not fig.hedge_mode:
        return "BOTH"
    return "LONG" if p.spec.side == "long" else "SHORT"


def _served(stream: Any) -> bool:
    if not isinstance(stream, str):
        return False
    if stream in ("!markPrice@arr", "!markPrice@arr@1s"):
        return True
    name, _, kind = stream.partition("@")
    return bool(name) and not name.startswith("!") and kind in ("markPrice", "markPrice@1s")


def _mark_update(hub: StreamHub, event: MarkMoved) -> dict[str, Any]:
    mark = fixed(event.price)
    return {
        "e": "markPriceUpdate",
        "E": event.ts_ms,
        "s": market_id(event.symbol),
        "p": mark,
        "P": mark,
        "i": mark,
        "r": fixed(hub.state.funding_rate(VENUE, event.symbol)),
        "T": next_funding_ms(event.ts_ms),
    }
