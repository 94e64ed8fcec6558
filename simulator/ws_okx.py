"""OKX v5 websocket streams (ws.okx.com:443/ws/v5) as ccxt.pro's okx uses them.

Public ``/ws/v5/public``: ``{"op": "subscribe", "args": [{"channel": "mark-price", "instId":
"BTC-USDT-SWAP"}]}`` is acknowledged once per arg (``{"event": "subscribe", "arg": ...}``),
then the mark is pushed at once and on every change (``markPx``, ``ts``; the ``arg`` echoed
exactly as subscribed: ccxt resolves by it).

Private ``/ws/v5/private``: ``{"op": "login", "args": [{"apiKey", "passphrase", "timestamp",
"sign"}]}`` with sign = base64 HMAC-SHA256(secret, timestamp + "GET/users/self/verify") and
timestamp (seconds) within 30 s; then channels ``positions`` (``instType`` ANY or SWAP,
optional ``instId``) and ``account``. Both push a snapshot on subscribe, as OKX does, and
again when the account's positions or wallet change: every open position plus a ``pos: "0"``
row for each closed since the last push; the account's balance (``details`` of the
collateral).

Errors use OKX's codes (60005 unknown key, 60024 passphrase, 60006 timestamp, 60007 sign,
60011 not logged in, 60018 unknown channel or instrument, 60012 bad request). Pings are the
text ``ping``, answered ``pong``.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
import time
import zlib
from typing import Any

from simulator.common import places_of, plain
from simulator.figures import AccountFigures
from simulator.okx import balance_row, inst_id, position_row
from simulator.scenario import AccountSpec
from simulator.state import MarkMoved
from simulator.ws_common import StreamSession

HOST = "ws.okx.com:443"
HOSTS = (HOST, "ws.okx.com:8443", "ws.okx.com")
VENUE = "okx"
LOGIN_WINDOW_SECONDS = 30


class OkxSession(StreamSession):
    venue = VENUE

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.args: list[dict[str, Any]] = []  # as subscribed, each once
        self._positions_sent: dict[tuple[str, str], dict[str, Any]] = {}  # (instId, posSide) -> row

    @classmethod
    def channel_for(cls, path: str) -> str | None:
        return {"ws/v5/public": "public", "ws/v5/private": "private"}.get(path.strip("/"))

    def _error(self, code: str, msg: str) -> None:
        self.send({"event": "error", "code": code, "msg": msg, "connId": self.conn_id})

    def on_text(self, text: str) -> None:
        if text == "ping":
            self.send("pong")
            return
        try:
            frame = json.loads(text)
        except ValueError:
            frame = None
        if not isinstance(frame, dict):
            self._error("60012", f"Illegal request: {text[:200]}")
            return
        op, args = frame.get("op"), frame.get("args")
        if not isinstance(args, list) or not all(isinstance(a, dict) for a in args):
            self._error("60013", "Invalid args")
        elif op == "login" and self.channel == "private":
            self._login(args)
        elif op in ("subscribe", "unsubscribe"):
            self._subscribe(op, args)
        else:
            self._error("60019", f"Invalid op: {op}")

    def _login(self, args: list[dict[str, Any]]) -> None:
        if self.api_key is not None:
            self._error("60010", "Already logged in.")
            return
        login = args[0] if args else {}
        account = self.hub.state.account(VENUE, str(login.get("apiKey", "")))
        if account is None:
            self._error("60005", "Invalid OK_ACCESS_KEY")
            return
        stamp = str(login.get("timestamp", ""))
        try:
            off = abs(time.time() - float(stamp))
        except ValueError:
            off = float("inf")
        if off > LOGIN_WINDOW_SECONDS:
            self._error("60006", "Timestamp request expired")
            return
        if not hmac.compare_digest(str(login.get("passphrase", "")), account.passphrase or ""):
            self._error("60024", "Wrong passphrase")
            return
        digest = hmac.new(account.secret.encode(), f"{stamp}GET/users/self/verify".encode(), hashlib.sha256).digest()
        if not hmac.compare_digest(str(login.get("sign", "")), base64.b64encode(digest).decode()):
            self._error("60007", "Invalid sign")
            return
        self.authenticated(account.api_key)
        self.send({"event": "login", "code": "0", "msg": "", "connId": self.conn_id})

    def _subscribe(self, op: str, args: list[dict[str, Any]]) -> None:
        markets = {inst_id(s): s for s in self.hub.state.markets.get(VENUE, {})}
        for arg in args:
            channel = arg.get("channel")
            if self.channel == "public" and channel == "mark-price" and arg.get("instId") in markets:
                continue
            if self.channel == "private" and channel in ("positions", "account"):
                if self.api_key is None:
                    self._error("60011", "Please log in")
                    return
                if channel == "account" or (
                    arg.get("instType") in ("ANY", "SWAP") and arg.get("instId") in (None, *markets)
                ):
                    continue
            self._error("60018", f"Wrong URL or channel:{channel},instId:{arg.get('instId')} doesn't exist.")
            return
        for arg in args:
            known = arg in self.args
            if op == "subscribe" and not known:
                self.args.append(arg)
            elif op == "unsubscribe" and known:
                self.args.remove(arg)
            self.send({"event": op, "arg": arg, "connId": self.conn_id})
        symbols = {markets[a["instId"]] for a in self.args if a.get("channel") == "mark-price"}
        self.watch_marks(symbols - self.marks)
        self.unwatch_marks(self.marks - symbols)
        if op != "subscribe":
            return
        for arg in args:  # snapshots, as OKX sends them after subscribing
            if arg["channel"] == "mark-price":
                self.hub.push_current(self, markets[arg["instId"]], functools.partial(self._push_mark, arg))
        account = self.hub.state.account(VENUE, self.api_key) if self.api_key else None
        if account is not None and any(a["channel"] != "mark-price" for a in args):
            now = int(time.time() * 1000)
            self._push_account(account, self.hub.state.figures(account), now, args, "snapshot")

    def _push_mark(self, arg: dict[str, Any], event: MarkMoved) -> None:
        market = self.hub.state.markets[VENUE][event.symbol]
        mark = plain(event.price, places_of(market.price_tick) + 2)
        data = {"instType": "SWAP", "instId": arg["instId"], "markPx": mark, "ts": str(event.ts_ms)}
        self.push({"arg": arg, "data": [data]})

    def on_mark(self, event: MarkMoved) -> None:
        wanted = inst_id(event.symbol)
        for arg in self.args:
            if arg.get("channel") == "mark-price" and arg.get("instId") == wanted:
                self._push_mark(arg, event)

    def on_account(self, spec: AccountSpec, fig: AccountFigures, now_ms: int) -> None:
        self._push_account(spec, fig, now_ms, self.args, "event_update")

    def _push_account(
        self, spec: AccountSpec, fig: AccountFigures, now_ms: int, args: list[dict[str, Any]], event_type: str
    ) -> None:
        uid = str(zlib.crc32(spec.api_key.encode()))
        for arg in args:
            if arg.get("channel") == "positions":
                rows = self._position_rows(fig, now_ms)
                if arg.get("instId"):
                    rows = [r for r in rows if r["instId"] == arg["instId"]]
                self.push({"arg": {**arg, "uid": uid}, "eventType": event_type, "data": rows})
            elif arg.get("channel") == "account":
                if arg.get("ccy") not in (None, spec.collateral):
                    continue
                data = [balance_row(spec, fig, now_ms)]
                self.push(
                    {"arg": {**arg, "uid": uid}, "eventType": event_type, "curPage": 1, "lastPage": True, "data": data}
                )

    def on_authenticated(self, spec: AccountSpec, fig: AccountFigures) -> None:
        self._position_rows(fig, int(time.time() * 1000))  # what the client can know of

    def _position_rows(self, fig: AccountFigures, now_ms: int) -> list[dict[str, Any]]:
        """Every open position, then a pos "0" row for each closed since the last push."""
        rows: dict[tuple[str, str], dict[str, Any]] = {}
        for p in fig.positions:
            row = {**position_row(p, fig, self.hub.state), "uTime": str(now_ms), "pTime": str(now_ms)}
            rows[(row["instId"], row["posSide"])] = row
        closed = [
            {**row, "pos": "0", "availPos": "0", "upl": "0", "notionalUsd": "0", "uTime": str(now_ms)}
            for key, row in self._positions_sent.items()
            if key not in rows
        ]
        self._positions_sent = rows
        return [*rows.values(), *closed]

    def subscriptions(self) -> list[str]:
        return sorted(json.dumps(a, sort_keys=True) for a in self.args)
