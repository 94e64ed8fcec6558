"""Bybit v5 websocket streams (stream.bybit.com) as ccxt.pro's bybit uses them.

Public ``/v5/public/linear``: ``{"op": "subscribe", "req_id": 1, "args": ["tickers.BTCUSDT"]}``
is acknowledged (``success: true``, also for a topic already subscribed, as Bybit does), then
the ticker is pushed as a ``snapshot`` and each mark change as a ``delta`` carrying
``markPrice``, ``indexPrice`` and ``lastPrice``, with ``ts`` (the mark's event time) and ``cs``
(a sequence per connection and symbol). Bybit has no mark-price stream: ccxt reads
``ticker['markPrice']`` from this one (it has no ``watch_mark_price`` for Bybit).

Private ``/v5/private``: ``{"op": "auth", "args": [key, expires, signature]}`` with
signature = hex HMAC-SHA256(secret, "GET/realtime" + expires) and expires (ms) in the
future; then topics ``position`` (``position.linear``) and ``wallet``. Nothing is pushed on
subscribe (as on Bybit); when the account's positions or wallet change, ``position`` carries
every open position plus a ``size: "0"``, ``side: ""`` row for each one closed since the
last push, and ``wallet`` the unified account (``accountType: "UNIFIED"``).

Pings: ``{"op": "ping", "req_id": n}`` is answered in each channel's style.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

from simulator.bybit import market_id, position_row, ticker_row, wallet_row
from simulator.common import places_of, plain
from simulator.figures import AccountFigures
from simulator.scenario import AccountSpec
from simulator.state import MarkMoved
from simulator.ws_common import StreamSession

HOST = "stream.bybit.com"
VENUE = "bybit"
PRIVATE_TOPICS = ("position", "position.linear", "wallet")


class BybitSession(StreamSession):
    venue = VENUE

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.topics: set[str] = set()
        self._cs: dict[str, int] = {}
        self._pushes = 0
        self._positions_sent: dict[tuple[str, int], dict[str, Any]] = {}  # (symbol id, positionIdx) -> row

    @classmethod
    def channel_for(cls, path: str) -> str | None:
        return {"v5/public/linear": "public", "v5/private": "private"}.get(path.strip("/"))

    def on_text(self, text: str) -> None:
        try:
            frame = json.loads(text)
        except ValueError:
            frame = None
        if not isinstance(frame, dict):
            self.send({"success": False, "ret_msg": "error:request not json", "conn_id": self.conn_id})
            return
        op, req_id = frame.get("op"), frame.get("req_id")
        raw_args = frame.get("args")
        args = raw_args if isinstance(raw_args, list) else []
        if op == "ping":
            if self.channel == "public":
                self.send({"success": True, "ret_msg": "pong", "conn_id": self.conn_id, "req_id": req_id, "op": "ping"})
            else:
                self.send(
                    {"req_id": req_id, "op": "pong", "args": [str(int(time.time() * 1000))], "conn_id": self.conn_id}
                )
        elif op == "auth" and self.channel == "private":
            self._auth(args, req_id)
        elif op in ("subscribe", "unsubscribe"):
            self._subscribe(op, [str(a) for a in args], req_id)
        else:
            self._reply(op, req_id, f"error:unknown op {op}")

    def _reply(self, op: Any, req_id: Any, error: str | None = None, request: Any = None) -> None:
        reply: dict[str, Any] = {"success": error is None, "ret_msg": error or "", "conn_id": self.conn_id, "op": op}
        if req_id is not None:
            reply["req_id"] = str(req_id)
        if request is not None and error is not None:
            reply["request"] = request  # Bybit echoes a refused auth request (ccxt reads request.op)
        self.send(reply)

    def _auth(self, args: list[Any], req_id: Any) -> None:
        request = {"op": "auth", "args": args}
        if self.api_key is not None:
            self._reply("auth", req_id, "Request already authorized", request)
            return
        if len(args) != 3:
            self._reply("auth", req_id, "error:params error", request)
            return
        key, expires, signature = (str(a) for a in args)
        account = self.hub.state.account(VENUE, key)
        if account is None:
            self._reply("auth", req_id, "error:USVC1111", request)
            return
        expected = hmac.new(account.secret.encode(), f"GET/realtime{expires}".encode(), hashlib.sha256).hexdigest()
        if not expires.isdigit() or int(expires) <= time.time() * 1000 or not hmac.compare_digest(signature, expected):
            self._reply("auth", req_id, "error:USVC1111", request)
            return
        self.authenticated(account.api_key)
        self._reply("auth", req_id)

    def _subscribe(self, op: str, topics: list[str], req_id: Any) -> None:
        markets = {market_id(s): s for s in self.hub.state.markets.get(VENUE, {})}
        for topic in topics:
            if self.channel == "private":
                if self.api_key is None:
                    self._reply(op, req_id, "Request not authorized")
                    return
                if topic not in PRIVATE_TOPICS:
                    self._reply(op, req_id, f"error:handler not found,topic:{topic}")
                    return
            elif not (topic.startswith("tickers.") and topic.removeprefix("tickers.") in markets):
                self._reply(op, req_id, f"error:handler not found,topic:{topic}")
                return
        new = [t for t in topics if t not in self.topics]
        if op == "subscribe":
            self.topics |= set(topics)
        else:
            self.topics -= set(topics)
        symbols = {markets[t.removeprefix("tickers.")] for t in self.topics if t.startswith("tickers.")}
        self.watch_marks(symbols - self.marks)
        self.unwatch_marks(self.marks - symbols)
        self._reply(op, req_id)
        if op == "subscribe":
            for topic in new:
                if topic.startswith("tickers."):
                    self.hub.push_current(self, markets[topic.removeprefix("tickers.")], self._snapshot)

    def _snapshot(self, event: MarkMoved) -> None:
        state = self.hub.state
        row = {**ticker_row(state.markets[VENUE][event.symbol], state, event.ts_ms), **self._prices(event)}
        topic = f"tickers.{market_id(event.symbol)}"
        self.push(
            {"topic": topic, "type": "snapshot", "data": row, "cs": self._next_cs(event.symbol), "ts": event.ts_ms}
        )

    def _prices(self, event: MarkMoved) -> dict[str, str]:
        market = self.hub.state.markets[VENUE][event.symbol]
        price = plain(event.price, places_of(market.price_tick) + 2)
        return {"symbol": market_id(event.symbol), "markPrice": price, "indexPrice": price, "lastPrice": price}

    def _next_cs(self, symbol: str) -> int:
        self._cs[symbol] = self._cs.get(symbol, 0) + 1
        return self._cs[symbol]

    def on_mark(self, event: MarkMoved) -> None:
        data = self._prices(event)
        self.push(
            {
                "topic": f"tickers.{market_id(event.symbol)}",
                "type": "delta",
                "data": data,
                "cs": self._next_cs(event.symbol),
                "ts": event.ts_ms,
            }
        )

    def _rows(self, fig: AccountFigures, now_ms: int) -> dict[tuple[str, int], dict[str, Any]]:
        rows: dict[tuple[str, int], dict[str, Any]] = {}
        for p in fig.positions:
            row = position_row(p, fig.hedge_mode, self.hub.state.started_ms)
            rows[(row["symbol"], row["positionIdx"])] = {**row, "updatedTime": str(now_ms)}
        return rows

    def on_authenticated(self, spec: AccountSpec, fig: AccountFigures) -> None:
        self._positions_sent = self._rows(fig, self.hub.state.started_ms)

    def on_account(self, spec: AccountSpec, fig: AccountFigures, now_ms: int) -> None:
        position_topics = sorted(t for t in self.topics if t.startswith("position"))
        if position_topics:
            rows = self._rows(fig, now_ms)
            closed = [
                {**row, "side": "", "size": "0", "positionValue": "0", "unrealisedPnl": "0", "updatedTime": str(now_ms)}
                for key, row in self._positions_sent.items()
                if key not in rows
            ]
            self._positions_sent = rows
            data = [{**row, "seq": now_ms} for row in [*rows.values(), *closed]]
            for topic in position_topics:
                self.push({"id": self._next_id(), "topic": topic, "creationTime": now_ms, "data": data})
        if "wallet" in self.topics:
            self.push(
                {"id": self._next_id(), "topic": "wallet", "creationTime": now_ms, "data": [wallet_row(spec, fig)]}
            )

    def _next_id(self) -> str:
        self._pushes += 1
        return f"{self.conn_id}-{self._pushes}"

    def subscriptions(self) -> list[str]:
        return sorted(self.topics)
