"""The simulator's websocket side: one hub owns every stream connection, hears the state's
events (mark moves, account changes) and hands each, at once, to the sessions subscribed to
it; it pushes subscribed marks again, unchanged, at the scenario's interval; and it applies
the stream faults.

Each venue module (ws_binance, ws_bybit, ws_okx) supplies a StreamSession subclass that
speaks its protocol: what the client sends (subscribe, auth, ping) and the frames pushed.
ccxt.pro connects to ``ws://127.0.0.1:PORT/<original host>/<original path>``
(connectors.redirect.redirect_ws), so the first path segment selects the venue, as for REST.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from aiohttp import WSMsgType, web

from simulator.figures import AccountFigures
from simulator.scenario import AccountSpec
from simulator.state import AccountChanged, MarkMoved, SimState, StateEvent
from simulator.ws_faults import StreamFaults

log = logging.getLogger(__name__)

MAX_FRAME_BYTES = 1024 * 1024  # a client frame beyond this closes the connection
CLOSE_TIMEOUT = 2.0  # seconds the server waits for clients to answer its close at stop


# --- one connection --------------------------------------------------------------------------


def encode(payload: Any) -> str:
    return payload if isinstance(payload, str) else json.dumps(payload, separators=(",", ":"))


class StreamSession:
    """One client connection. Subclasses speak a venue's protocol: `channel_for` (which
    paths exist), `refuse` (a handshake answered with an error), `on_open`, `on_text`
    (client frames), `on_mark` and `on_account` (pushes)."""

    venue: ClassVar[str]

    def __init__(self, hub: StreamHub, ws: web.WebSocketResponse, transport: Any, channel: str, request: web.Request):
        self.hub = hub
        self.ws = ws
        self.transport = transport
        self.channel = channel
        self.path = request.path
        self.query = dict(request.rel_url.query)
        self.conn_id = hub.next_id()
        self.opened_ms = int(time.time() * 1000)
        self.api_key: str | None = None  # set once the connection is authenticated
        self.frames_sent = 0
        self.marks: set[str] = set()  # symbols whose mark this connection receives
        self._queue: asyncio.Queue[str] = asyncio.Queue()
        self._held: str | None = None  # out_of_order: the frame waiting for the next one

    # --- venue protocol (overridden) ---

    @classmethod
    def channel_for(cls, path: str) -> str | None:
        """ "public" or "private" for a path the venue serves (after the host); None: 404."""
        raise NotImplementedError

    @classmethod
    def refuse(cls, hub: StreamHub, request: web.Request, channel: str) -> web.Response | None:
        """An answer instead of the upgrade (a bad listenKey), or None to accept."""
        return None

    def on_open(self) -> None:
        """Right after the handshake."""

    def on_text(self, text: str) -> None:
        raise NotImplementedError

    def on_mark(self, event: MarkMoved) -> None:
        """Push `event` to this connection (called only for symbols in `self.marks`)."""
        raise NotImplementedError

    def on_account(self, spec: AccountSpec, fig: AccountFigures, now_ms: int) -> None:
        """The authenticated account changed: push what the connection subscribed to."""

    def on_authenticated(self, spec: AccountSpec, fig: AccountFigures) -> None:
        """The connection now belongs to `spec` (positions held now: a later close is
        pushed as a zero row)."""

    def subscriptions(self) -> list[str]:
        """What the connection is subscribed to, in the venue's words (admin listing)."""
        return sorted(self.marks)

    # --- helpers for subclasses ---

    def send(self, payload: Any) -> None:
        """A control frame (ack, pong, error): in order; only a silent fault stops it."""
        self._queue.put_nowait(encode(payload))

    def push(self, payload: Any) -> None:
        """A data frame: the duplicate and out_of_order faults apply."""
        text = encode(payload)
        faults = self.hub.faults
        if self._held is not None:
            held, self._held = self._held, None
            self._queue.put_nowait(text)
            self._queue.put_nowait(held)
            return
        if faults.take(self.venue, self.channel, "out_of_order"):
            self._held = text
            return
        if faults.take(self.venue, self.channel, "duplicate"):
            self._queue.put_nowait(text)
        self._queue.put_nowait(text)

    def watch_marks(self, symbols: set[str]) -> None:
        self.marks |= symbols
        self.hub.index_marks(self, symbols)

    def unwatch_marks(self, symbols: set[str]) -> None:
        self.marks -= symbols
        self.hub.unindex_marks(self, symbols)

    def authenticated(self, api_key: str) -> None:
        self.api_key = api_key
        self.hub.index_account(self)
        spec = self.hub.state.account(self.venue, api_key)
        if spec is not None:
            self.on_authenticated(spec, self.hub.state.figures(spec))

    def silent(self) -> bool:
        return self.hub.faults.silent(self.venue, self.channel)

    async def write_loop(self) -> None:
        while True:
            text = await self._queue.get()
            if self.silent():
                continue
            await self.ws.send_str(text)
            self.frames_sent += 1

    def describe(self) -> dict[str, Any]:
        return {
            "id": self.conn_id,
            "venue": self.venue,
            "channel": self.channel,
            "path": self.path,
            "api_key": self.api_key,
            "subscriptions": self.subscriptions(),
            "opened_ms": self.opened_ms,
            "frames_sent": self.frames_sent,
        }


# --- the hub ---------------------------------------------------------------------------------


class StreamHub:
    """Every stream connection of one simulator. Events from the state may come from any
    thread; they are delivered on the server's loop, in the order they happened."""

    def __init__(
        self,
        state: SimState,
        faults: StreamFaults,
        protocols: Mapping[str, type[StreamSession]],
        mark_interval: float | None,
    ) -> None:
        self.state = state
        self.faults = faults
        self.protocols = protocols  # original host -> session class
        self.mark_interval = mark_interval
        self.sessions: set[StreamSession] = set()
        self._by_mark: dict[tuple[str, str], set[StreamSession]] = {}
        self._by_account: dict[tuple[str, str], set[StreamSession]] = {}
        self._ids = itertools.count(1)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._periodic: asyncio.Task[None] | None = None

    def next_id(self) -> str:
        return f"c{next(self._ids)}"

    # --- lifecycle ---

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self.state.subscribe(self._listener)
        if self.mark_interval:
            self._periodic = asyncio.create_task(self._push_marks_periodically(), name="simulator-stream-marks")

    async def stop(self) -> None:
        """Stop hearing events and close every connection (going away, 1001)."""
        self.state.unsubscribe(self._listener)
        if self._periodic is not None:
            self._periodic.cancel()
            await asyncio.gather(self._periodic, return_exceptions=True)
            self._periodic = None
        closing = [session.ws.close(code=1001, message=b"server stopping") for session in list(self.sessions)]
        if closing:  # a client that does not answer the close is not waited for long
            await asyncio.wait([asyncio.ensure_future(c) for c in closing], timeout=CLOSE_TIMEOUT)

    # --- events ---

    def _listener(self, event: StateEvent) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            loop.call_soon_threadsafe(self._deliver, event)
        except RuntimeError:  # the loop closed meanwhile: nobody is connected any more
            pass

    def _deliver(self, event: StateEvent) -> None:
        if isinstance(event, MarkMoved):
            for session in list(self._by_mark.get((event.venue, event.symbol), ())):
                session.on_mark(event)
            return
        if isinstance(event, AccountChanged):
            sessions = list(self._by_account.get((event.venue, event.api_key), ()))
            if not sessions or self.state.account(event.venue, event.api_key) is None:  # none, or revoked
                return
            spec = event.spec
            fig = self.state.figures(spec)
            now = int(time.time() * 1000)
            for session in sessions:
                session.on_account(spec, fig, now)

    async def _push_marks_periodically(self) -> None:
        assert self.mark_interval is not None  # noqa: S101 - started only with an interval
        while True:
            await asyncio.sleep(self.mark_interval)
            for venue, symbol in [key for key, sessions in self._by_mark.items() if sessions]:
                self.state.repeat_mark(venue, symbol)  # queued behind the moves already heard

    def push_current(self, session: StreamSession, symbol: str, push: Callable[[MarkMoved], None]) -> None:
        """`push(the current mark)` for a new subscription, queued behind the moves already
        heard (sent at once, it could overtake them: their older times would then arrive
        out of order without any fault)."""
        loop = self._loop
        assert loop is not None  # noqa: S101 - sessions exist only while the hub runs

        def queue(event: MarkMoved) -> None:
            loop.call_soon_threadsafe(self._deliver_to, session, push, event)

        self.state.repeat_mark(session.venue, symbol, queue)

    def _deliver_to(self, session: StreamSession, push: Callable[[MarkMoved], None], event: MarkMoved) -> None:
        if session in self.sessions:
            push(event)

    # --- indexes ---

    def index_marks(self, session: StreamSession, symbols: set[str]) -> None:
        for symbol in symbols:
            self._by_mark.setdefault((session.venue, symbol), set()).add(session)

    def unindex_marks(self, session: StreamSession, symbols: set[str]) -> None:
        for symbol in symbols:
            self._by_mark.get((session.venue, symbol), set()).discard(session)

    def index_account(self, session: StreamSession) -> None:
        if session.api_key is not None:
            self._by_account.setdefault((session.venue, session.api_key), set()).add(session)

    def _forget(self, session: StreamSession) -> None:
        self.sessions.discard(session)
        self.unindex_marks(session, session.marks)
        if session.api_key is not None:
            self._by_account.get((session.venue, session.api_key), set()).discard(session)

    # --- connections ---

    async def handle(self, request: web.Request, host: str, path: str) -> web.StreamResponse:
        """The websocket upgrade of ``/<host>/<path>``."""
        cls = self.protocols[host]
        channel = cls.channel_for(path)
        if channel is None:
            return web.json_response({"error": f"no stream at {host}/{path}"}, status=404)
        refusal = cls.refuse(self, request, channel)
        if refusal is not None:
            return refusal
        transport = request.transport  # None after prepare(); a drop aborts it
        # autoping off: pings are answered here, so that a silent stream answers none
        ws = web.WebSocketResponse(autoping=False, max_msg_size=MAX_FRAME_BYTES)
        await ws.prepare(request)
        session = cls(self, ws, transport, channel, request)
        self.sessions.add(session)
        writer = asyncio.create_task(session.write_loop(), name=f"simulator-stream-{session.conn_id}")
        try:
            session.on_open()
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    self._receive(session, msg.data)
                elif msg.type == WSMsgType.PING:
                    if not session.silent():
                        await ws.pong(msg.data)
                elif msg.type in (WSMsgType.CLOSE, WSMsgType.ERROR):
                    break
        finally:
            self._forget(session)
            writer.cancel()
            await asyncio.gather(writer, return_exceptions=True)
        return ws

    def _receive(self, session: StreamSession, text: str) -> None:
        try:
            session.on_text(text)
        except Exception:  # a bug here must not end the connection silently
            log.exception("%s stream %s: frame not handled: %.200r", session.venue, session.conn_id, text)

    def drop(self, venue: str, channel: str = "*") -> int:
        """Cut the venue's connections (TCP abort: the client sees code 1006); how many."""
        dropped = 0
        for session in list(self.sessions):
            if session.venue == venue and channel in ("*", session.channel):
                if session.transport is not None:
                    session.transport.abort()
                dropped += 1
        return dropped

    def connections(self) -> list[dict[str, Any]]:
        return [s.describe() for s in sorted(self.sessions, key=lambda s: int(s.conn_id[1:]))]
