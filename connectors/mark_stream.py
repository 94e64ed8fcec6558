"""One venue's mark-price stream: one ccxt.pro client, one connection, shared by every
account of the venue (and simulator URL).

It subscribes to the marks of the symbols it is given (`set_symbols`; a change of the set
closes the connection and subscribes the new set on a fresh one), and for every mark
update: refuses duplicates and out-of-order updates (by the venue's event time), checks
the mark against the venue's trigger book and reports each crossing to `on_crossing`,
synchronously (the callback must not block: hand the work to a task).

A dropped connection is redialled after a backoff with jitter (ccxt only backs off dials
that fail); a stream silent for `stale_after` seconds is marked stale, torn down and
redialled (ccxt has no timeout for a server that stops sending).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from connectors.account import SharedMarkets
from connectors.errors import RetryPolicy
from connectors.stream_support import (
    CLOSE_TIMEOUT,
    DEFAULT_BACKOFF,
    StreamState,
    describe_error,
    make_stream_client,
    stream_venue,
    tap_tickers,
)
from connectors.triggers import Crossing, MarkGate, TriggerBook

log = logging.getLogger(__name__)


class StaleStream(Exception):
    """No mark arrived for `stale_after` seconds."""


class MarkStream:
    """Mark prices of one venue. Start with `run()` in a task; `close()` when done."""

    def __init__(
        self,
        exchange_id: str,
        base_url: str | None,
        on_crossing: Callable[[Crossing], None],
        *,
        stale_after: float = 30.0,
        backoff: RetryPolicy | None = None,
        shared_markets: SharedMarkets | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        venue = stream_venue(exchange_id)
        if venue is None:
            raise ValueError(f"{exchange_id} has no mark stream")
        self.exchange_id = exchange_id
        self.base_url = base_url
        self.on_crossing = on_crossing
        self.stale_after = stale_after
        self.backoff = backoff or DEFAULT_BACKOFF
        self.book = TriggerBook()
        self.gate = MarkGate()
        self.state = StreamState(exchange_id, base_url)
        self._method = venue.mark_method
        self._shared = shared_markets
        self._clock = clock
        self._symbols: frozenset[str] = frozenset()
        self._changed = asyncio.Event()
        self._session_marks = 0
        self.client = make_stream_client(exchange_id, base_url)
        tap_tickers(self.client, self._on_ticker)

    # --- what to watch ---

    def set_symbols(self, symbols: Iterable[str]) -> None:
        """Subscribe to exactly these symbols' marks (resubscribes when the set changes)."""
        wanted = frozenset(symbols)
        if wanted != self._symbols:
            self._symbols = wanted
            self._changed.set()

    @property
    def symbols(self) -> frozenset[str]:
        return self._symbols

    def latest(self, symbol: str) -> tuple[int, float] | None:
        """(venue time in ms, mark) of the newest mark accepted for `symbol`."""
        return self.gate.latest(symbol)

    # --- every parsed mark ---

    def _on_ticker(self, symbol: str, mark: float | None, timestamp: int | None) -> None:
        state = self.state
        state.last_message_at = self._clock()
        state.messages += 1
        self._session_marks += 1
        if not state.connected:
            state.connected, state.connected_at = True, state.last_message_at
        state.stale = False
        if mark is None or symbol not in self._symbols:
            return
        if not self.gate.accept(symbol, mark, timestamp):
            state.dropped += 1
            return
        for crossing in self.book.check(self.exchange_id, symbol, mark, timestamp):
            try:
                self.on_crossing(crossing)
            except Exception:  # one failing callback must not stop the stream
                log.exception("%s: crossing callback failed for %s", self.exchange_id, crossing.account)

    # --- the connection loop ---

    async def run(self) -> None:
        """Stream until cancelled: connect, watch, reconnect with backoff."""
        failures = 0
        while True:
            symbols = sorted(self._symbols)
            self.state.symbols = tuple(symbols)
            if not symbols:  # nothing to watch: neither connected nor stale
                self.state.connected = self.state.stale = False
                self._changed.clear()
                await self._changed.wait()
                continue
            self._changed.clear()
            self._session_marks = 0
            try:
                await self._session(symbols)
                outcome: BaseException | None = None  # the symbol set changed
            except asyncio.CancelledError:
                await self._disconnect()
                raise
            except Exception as exc:  # every failure means: reconnect
                outcome = exc
            await self._disconnect()
            if outcome is None:
                continue
            self.state.connected = False
            self.state.reconnects += 1
            self.state.last_error = describe_error(outcome)
            failures = 0 if self._session_marks else failures + 1
            delay = self.backoff.delay(failures)
            log.warning("%s mark stream: %s; reconnecting in %.1f s", self.exchange_id, self.state.last_error, delay)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), timeout=delay)

    async def _session(self, symbols: list[str]) -> None:
        """Watch until the connection fails (raises), goes silent (StaleStream) or the
        symbol set changes (returns)."""
        await self._load_markets()
        started = self._clock()
        pump = asyncio.create_task(self._pump(symbols), name=f"marks-{self.exchange_id}")
        changed = asyncio.create_task(self._changed.wait())
        tick = min(1.0, self.stale_after / 4)
        try:
            while True:
                done, _ = await asyncio.wait({pump, changed}, timeout=tick, return_when=asyncio.FIRST_COMPLETED)
                if pump in done:
                    pump.result()  # raises the connection's error
                    raise RuntimeError("the mark watch ended")
                if changed in done:
                    return
                last = max(started, self.state.last_message_at or started)
                if self._clock() - last > self.stale_after:
                    silence = StaleStream(f"no mark for {self.stale_after:g} s")
                    self.state.stale, self.state.connected = True, False
                    self.state.last_error = describe_error(silence)
                    raise silence
        finally:
            for task in (pump, changed):
                task.cancel()
            await asyncio.gather(pump, changed, return_exceptions=True)

    async def _pump(self, symbols: list[str]) -> None:
        watch = getattr(self.client, self._method)
        while True:
            await watch(symbols)  # the marks themselves arrive through the tap

    async def _load_markets(self) -> None:
        if self.client.markets:
            return
        if self._shared is None:
            await self.client.load_markets()
        else:
            await self._shared.load(f"{self.exchange_id} {self.base_url}", self.client, self.client.load_markets)

    async def _disconnect(self) -> None:
        """Close the websocket connections (the client stays usable: the next watch dials)."""
        try:
            await asyncio.wait_for(self.client.close_ws_clients(), timeout=CLOSE_TIMEOUT)
        except Exception as exc:  # a hung close (TimeoutError): forget the connections
            log.debug("%s: closing the stream: %r", self.exchange_id, exc)
            self.client.clients = {}

    async def close(self) -> None:
        """Close the client (call after cancelling `run`)."""
        with contextlib.suppress(Exception):
            await self.client.close()

    def describe(self) -> dict[str, Any]:
        return self.state.as_dict()
