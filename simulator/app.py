"""The HTTP application: the admin API, dispatch by original host, fault injection and
each venue's authentication; websocket upgrades go to the stream hub (ws_common.py).

ccxt reaches the simulator at ``/<original host>/<original path>`` (see
connectors/redirect.py), so the first path segment selects the venue and the rest is the
path the venue's documentation names.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from aiohttp import web

from simulator import binance, binance_coinm, bybit, hyperliquid, okx, ws_binance, ws_bybit, ws_okx
from simulator.common import SimRequest, VenueError, VenueSpec
from simulator.faults import FAULT_KINDS, HOSTILE_TEXT, HUGE_BODY_BYTES, Fault, FaultBook, drop_fields, retype_fields
from simulator.load import MarkLoad
from simulator.scenario import ScenarioError
from simulator.state import SimState
from simulator.ws_common import StreamHub, StreamSession
from simulator.ws_faults import CHANNELS

VENUES: dict[str, VenueSpec] = {
    v.name: v for v in (binance.VENUE, binance_coinm.VENUE, bybit.VENUE, okx.VENUE, hyperliquid.VENUE)
}
HOSTS: dict[str, VenueSpec] = {host: v for v in VENUES.values() for host in v.hosts}
STREAM_PROTOCOLS: dict[str, type[StreamSession]] = {
    ws_binance.HOST: ws_binance.BinanceSession,
    ws_bybit.HOST: ws_bybit.BybitSession,
    **{host: ws_okx.OkxSession for host in ws_okx.HOSTS},
}
TIMEOUT_HOLD_SECONDS = 3600.0  # a "timeout" fault holds the request this long, or until stop

_STATUS_TEXT = {500: "500 Internal Server Error", 502: "502 Bad Gateway", 503: "503 Service Unavailable"}


class SimulatorApp:
    """Builds the aiohttp application over a state, a fault book and a request log."""

    def __init__(
        self, state: SimState, faults: FaultBook, log: list[tuple[str, str, str]], hub: StreamHub | None = None
    ) -> None:
        self.state = state
        self.faults = faults
        self.log = log
        self.hub = hub
        self.load: MarkLoad | None = None  # the mark-update load, while one runs
        # (epoch seconds, venue, path, account name) of every request that authenticated:
        # which account was asked what, and when (tests count polls per account with it)
        self.signed_log: list[tuple[float, str, str, str]] = []
        self.stopping = asyncio.Event()  # set on stop: releases held (timeout, delay) requests

    def build(self) -> web.Application:
        app = web.Application()
        # Admin routes first: the catch-all below would also match /_admin/...
        app.router.add_post("/_admin/mark", self._admin_mark)
        app.router.add_get("/_admin/faults", self._admin_faults_list)
        app.router.add_post("/_admin/faults", self._admin_faults_add)
        app.router.add_delete("/_admin/faults", self._admin_faults_clear)
        app.router.add_post("/_admin/positions", self._admin_positions)
        app.router.add_post("/_admin/funding", self._admin_funding)
        app.router.add_post("/_admin/liquidate", self._admin_liquidate)
        app.router.add_get("/_admin/state", self._admin_state)
        app.router.add_get("/_admin/streams", self._admin_streams)
        app.router.add_post("/_admin/streams/faults", self._admin_stream_fault)
        app.router.add_get("/_admin/mark_load", self._admin_load_status)
        app.router.add_post("/_admin/mark_load", self._admin_load_start)
        app.router.add_delete("/_admin/mark_load", self._admin_load_stop)
        app.router.add_route("*", "/{host}/{tail:.*}", self._dispatch)
        return app

    # --- venues ------------------------------------------------------------------------

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        host = request.match_info["host"]
        if (
            self.hub is not None
            and host in STREAM_PROTOCOLS
            and request.headers.get("Upgrade", "").lower() == "websocket"
        ):
            return await self.hub.handle(request, host, request.match_info["tail"])
        venue = HOSTS.get(host)
        if venue is None:
            return web.json_response({"error": f"unknown host {request.match_info['host']}"}, status=404)
        path = "/" + request.match_info["tail"]
        arrived = time.time()  # before any delay a fault adds: when the client asked
        body = await request.text()
        name = venue.request_name(path, body) if venue.request_name else path
        self.log.append((venue.name, request.method, name))
        fault = self.faults.take(venue.name, name)
        try:
            if fault is not None:
                early = await self._apply_fault(fault, request, _sim_request(request, venue, path, body))
                if early is not None:
                    return early
            # Built after any delay: the venue checks timestamps against its clock when it serves.
            payload = self._serve(venue, _sim_request(request, venue, path, body), arrived)
        except VenueError as err:
            return _error_response(err)
        if fault is not None and fault.kind == "missing_field":
            payload = drop_fields(payload, [fault.field] if fault.field else venue.key_fields)
        elif fault is not None and fault.kind == "wrong_types":
            rules = venue.wrong_types
            if fault.field:  # one field only, so that one corruption does not mask another
                rules = {fault.field: rules.get(fault.field, lambda v: "n/a")}
            payload = retype_fields(payload, rules)
        text = json.dumps(payload, separators=(",", ":"))
        if fault is not None and fault.kind == "malformed_json":
            text = text[: max(1, len(text) // 2)]  # a body cut mid-way, still labelled JSON
        return web.Response(text=text, content_type="application/json")

    def _serve(self, venue: VenueSpec, req: SimRequest, arrived: float) -> Any:
        route = venue.routes.get((req.method, req.path))
        if route is None or (route.host is not None and route.host != req.host):
            raise venue.error("not_found", req)
        account = venue.authenticate(req, self.state) if route.signed else None
        if account is not None:
            self.signed_log.append((arrived, venue.name, req.path, account.name))
        return route.handler(req, account, self.state)

    async def _apply_fault(self, fault: Fault, request: web.Request, sreq: SimRequest) -> web.StreamResponse | None:
        """Answer for faults that replace the response; None to serve it (then altered)."""
        kind, venue = fault.kind, VENUES[sreq.venue]
        if kind == "delay":
            await self._hold(fault.seconds or 0.0)
            return None
        if kind in ("timeout", "connection_reset"):
            if kind == "timeout":
                await self._hold(TIMEOUT_HOLD_SECONDS)
            # Close the socket without a response: the client sees a reset or an empty read.
            if request.transport is not None:
                request.transport.abort()
            return web.Response(status=499)
        if kind in ("http429", "http429_retry_after"):
            err = venue.error("rate_limit", sreq)
            if kind == "http429_retry_after":
                err.headers["Retry-After"] = str(round(fault.seconds if fault.seconds is not None else 1))
            return _error_response(err)
        if kind in ("http500", "http502", "http503"):
            status = int(kind[4:])
            page = (
                f"<html><head><title>{_STATUS_TEXT[status]}</title></head><body><center><h1>"
                f"{_STATUS_TEXT[status]}</h1></center></body></html>"
            )
            return web.Response(status=status, text=page, content_type="text/html")
        if kind == "error_text":
            return web.Response(status=503, text=HOSTILE_TEXT if fault.text is None else fault.text)
        if kind == "huge_body":
            return await _huge_body(request, fault.size or HUGE_BODY_BYTES)
        if kind == "maintenance":
            return _error_response(venue.error("maintenance", sreq))
        if kind == "stale_timestamp":
            return _error_response(venue.error("stale_timestamp", sreq))
        return None  # malformed_json, missing_field, wrong_types: altered after serving

    async def _hold(self, seconds: float) -> None:
        """Sleep `seconds`, or less when the simulator stops."""
        try:
            await asyncio.wait_for(self.stopping.wait(), timeout=seconds)
        except TimeoutError:
            pass

    # --- admin -------------------------------------------------------------------------

    async def _admin_mark(self, request: web.Request) -> web.Response:
        doc = await _json_body(request)
        venue, symbol, price = str(doc.get("venue")), str(doc.get("symbol")), doc.get("price")
        try:
            self.state.set_mark(venue, symbol, price)
        except KeyError as exc:
            return _admin_error(404, str(exc.args[0]))
        except ValueError as exc:
            return _admin_error(400, str(exc))
        if self.load is not None and isinstance(price, int | float):  # always, once set_mark took it
            self.load.anchor(venue, symbol, float(price))
        return web.json_response({"ok": True})

    async def _admin_faults_list(self, request: web.Request) -> web.Response:
        return web.json_response({"faults": self.faults.listing()})

    async def _admin_faults_add(self, request: web.Request) -> web.Response:
        doc = await _json_body(request)
        if doc.get("venue") not in VENUES:
            return _admin_error(400, f"venue must be one of {', '.join(VENUES)}")
        try:
            check_fault(doc["venue"], str(doc.get("kind")))
            fault = self.faults.add(
                doc["venue"],
                str(doc.get("path") or "*"),
                str(doc.get("kind")),
                doc.get("count"),
                doc.get("seconds"),
                doc.get("field"),
                doc.get("text"),
                doc.get("size"),
            )
        except ValueError as exc:
            return _admin_error(400, str(exc))
        return web.json_response({"ok": True, "fault": fault.__dict__})

    async def _admin_faults_clear(self, request: web.Request) -> web.Response:
        self.faults.clear()
        if self.hub is not None:
            self.hub.faults.clear()
        return web.json_response({"ok": True})

    # --- streams -----------------------------------------------------------------------

    def _require_hub(self) -> StreamHub:
        if self.hub is None:
            raise web.HTTPNotFound(
                text=json.dumps({"ok": False, "error": "no streams"}), content_type="application/json"
            )
        return self.hub

    async def _admin_streams(self, request: web.Request) -> web.Response:
        hub = self._require_hub()
        return web.json_response({"connections": hub.connections(), "faults": hub.faults.listing()})

    async def _admin_stream_fault(self, request: web.Request) -> web.Response:
        hub = self._require_hub()
        doc = await _json_body(request)
        venue, kind, channel = doc.get("venue"), str(doc.get("kind")), str(doc.get("channel") or "*")
        if venue not in VENUES:
            return _admin_error(400, f"venue must be one of {', '.join(VENUES)}")
        if kind == "drop":
            if channel not in (*CHANNELS, "*"):
                return _admin_error(400, f"channel must be public, private or *, got {channel!r}")
            return web.json_response({"ok": True, "dropped": hub.drop(venue, channel)})
        try:
            fault = hub.faults.add(venue, kind, channel, doc.get("count"))
        except ValueError as exc:
            return _admin_error(400, str(exc))
        return web.json_response({"ok": True, "fault": fault.__dict__})

    async def _admin_load_status(self, request: web.Request) -> web.Response:
        return web.json_response(self.load.status() if self.load else {"running": False, "updates": 0})

    async def _admin_load_start(self, request: web.Request) -> web.Response:
        doc = await _json_body(request)
        try:
            load = MarkLoad(self.state, doc.get("rate"), doc.get("amplitude", 0.0005), doc.get("venues"))
        except ValueError as exc:
            return _admin_error(400, str(exc))
        await self.stop_load()
        self.load = load
        load.start()
        return web.json_response({"ok": True, **load.status()})

    async def _admin_load_stop(self, request: web.Request) -> web.Response:
        status = self.load.status() if self.load else {"updates": 0}
        await self.stop_load()
        return web.json_response({"ok": True, **status, "running": False})

    async def stop_load(self) -> None:
        if self.load is not None:
            await self.load.stop()
            self.load = None

    async def _admin_positions(self, request: web.Request) -> web.Response:
        doc = await _json_body(request)
        try:
            self.state.set_positions(str(doc.get("venue")), _account_of(doc), doc.get("positions"))
        except KeyError as exc:
            return _admin_error(404, str(exc.args[0]))
        except ScenarioError as exc:
            return _admin_error(400, str(exc))
        return web.json_response({"ok": True})

    async def _admin_funding(self, request: web.Request) -> web.Response:
        doc = await _json_body(request)
        try:
            self.state.set_funding_rate(str(doc.get("venue")), str(doc.get("symbol")), doc.get("rate"))
        except KeyError as exc:
            return _admin_error(404, str(exc.args[0]))
        except ValueError as exc:
            return _admin_error(400, str(exc))
        return web.json_response({"ok": True})

    async def _admin_liquidate(self, request: web.Request) -> web.Response:
        doc = await _json_body(request)
        try:
            records = self.state.liquidate(str(doc.get("venue")), _account_of(doc), str(doc.get("symbol")))
        except KeyError as exc:
            return _admin_error(404, str(exc.args[0]))
        return web.json_response(
            {"ok": True, "liquidations": [{k: v for k, v in r.as_dict().items() if k != "api_key"} for r in records]}
        )

    async def _admin_state(self, request: web.Request) -> web.Response:
        doc = self.state.snapshot()
        doc["faults"] = self.faults.listing()
        doc["requests_served"] = len(self.log)
        return web.json_response(doc)


def check_fault(venue: str, kind: str) -> None:
    """ValueError for a fault the venue cannot show (Hyperliquid's reads carry no timestamp)."""
    spec = VENUES.get(venue)
    if spec is not None and spec.fault_kinds is not None and kind not in spec.fault_kinds and kind in FAULT_KINDS:
        raise ValueError(f"{venue} cannot show a {kind} fault: {spec.name} has no such answer for reads")


def _account_of(doc: dict[str, Any]) -> str:
    """The account an admin request names: its API key, or a Hyperliquid wallet address."""
    return str(doc.get("api_key") or doc.get("wallet_address"))


def _sim_request(request: web.Request, venue: VenueSpec, path: str, body: str) -> SimRequest:
    return SimRequest(
        venue=venue.name,
        host=request.match_info["host"],
        method=request.method,
        path=path,
        raw_query=request.rel_url.raw_query_string,
        query=dict(request.rel_url.query),
        headers=request.headers,
        body=body,
        now_ms=int(time.time() * 1000),
    )


async def _huge_body(request: web.Request, size: int) -> web.StreamResponse:
    """A well-formed JSON answer of `size` bytes, streamed (never held whole in memory)."""
    head, tail = b'{"pad":"', b'"}'
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    response.content_length = max(size, len(head) + len(tail))
    await response.prepare(request)
    left = response.content_length - len(head) - len(tail)
    try:
        await response.write(head)
        while left > 0:
            chunk = min(left, 1 << 20)
            await response.write(b"x" * chunk)
            left -= chunk
        await response.write(tail)
        await response.write_eof()
    except (ConnectionResetError, ConnectionError):  # the client stopped reading: what a cap does
        pass
    return response


def _error_response(err: VenueError) -> web.Response:
    if isinstance(err.body, str):
        return web.Response(status=err.status, text=err.body, headers=err.headers, content_type=err.content_type)
    return web.Response(
        status=err.status,
        text=json.dumps(err.body, separators=(",", ":")),
        headers=err.headers,
        content_type="application/json",
    )


def _admin_error(status: int, message: str) -> web.Response:
    return web.json_response({"ok": False, "error": message}, status=status)


async def _json_body(request: web.Request) -> dict[str, Any]:
    try:
        doc = await request.json()
    except ValueError:
        raise web.HTTPBadRequest(
            text=json.dumps({"ok": False, "error": "body is not JSON"}), content_type="application/json"
        ) from None
    if not isinstance(doc, dict):
        raise web.HTTPBadRequest(
            text=json.dumps({"ok": False, "error": "body must be a JSON object"}), content_type="application/json"
        )
    return doc
