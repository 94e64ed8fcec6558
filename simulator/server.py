"""ExchangeSimulator: runs the simulator's HTTP and websocket server on 127.0.0.1, either in
a background thread with its own event loop (`start`/`stop`, for synchronous tests and the
demo) or inside the caller's running loop (`start_async`/`stop_async`)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from aiohttp import web

from simulator.app import STREAM_PROTOCOLS, SimulatorApp, check_fault
from simulator.faults import Fault, FaultBook
from simulator.liquidation import LiquidationRecord
from simulator.load import MarkLoad
from simulator.scenario import parse_scenario
from simulator.state import SimState
from simulator.ws_common import StreamHub
from simulator.ws_faults import StreamFault, StreamFaults

log = logging.getLogger(__name__)
T = TypeVar("T")

HOST = "127.0.0.1"  # never another interface: the simulator accepts any well-signed request
STARTUP_TIMEOUT = 10.0
SHUTDOWN_TIMEOUT = 5.0


class ExchangeSimulator:
    """A local Binance USD-M / Bybit v5 / OKX v5 / Hyperliquid server over one scenario (see
    docs/simulator.md). Usable as a context manager: ``with ExchangeSimulator(doc) as url:``."""

    def __init__(self, scenario: Mapping[str, Any]) -> None:
        self.scenario = parse_scenario(scenario)
        self.state = SimState(self.scenario)
        self.faults = FaultBook()
        self.stream_faults = StreamFaults()
        self._log: list[tuple[str, str, str]] = []
        self._hub: StreamHub | None = None
        self._app: SimulatorApp | None = None
        self._runner: web.AppRunner | None = None
        self._walk: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self.base_url: str | None = None

    # --- lifecycle ---------------------------------------------------------------------

    async def start_async(self, port: int = 0) -> str:
        """Serve in the running event loop; returns "http://127.0.0.1:PORT"."""
        if self._runner is not None:
            raise RuntimeError("the simulator is already running")
        self._hub = StreamHub(
            self.state, self.stream_faults, STREAM_PROTOCOLS, self.scenario.streams.mark_interval_seconds
        )
        self._hub.start()
        self._app = SimulatorApp(self.state, self.faults, self._log, self._hub)
        runner = web.AppRunner(self._app.build(), access_log=None, shutdown_timeout=SHUTDOWN_TIMEOUT)
        await runner.setup()
        site = web.TCPSite(runner, HOST, port)
        await site.start()
        self._runner = runner
        bound_port = runner.addresses[0][1]
        self.base_url = f"http://{HOST}:{bound_port}"
        if self.scenario.random_walk.enabled:
            self._walk = asyncio.create_task(self._random_walk(), name="simulator-random-walk")
        log.info("exchange simulator serving on %s", self.base_url)
        return self.base_url

    async def stop_async(self) -> None:
        """Release held requests, stop the random walk and close the server."""
        if self._runner is None:
            return
        if self._app is not None:
            self._app.stopping.set()
            await self._app.stop_load()
        if self._hub is not None:
            await self._hub.stop()
        if self._walk is not None:
            self._walk.cancel()
            await asyncio.gather(self._walk, return_exceptions=True)
            self._walk = None
        await self._runner.cleanup()
        self._runner = None

    def start(self, port: int = 0) -> str:
        """Serve from a background thread; returns "http://127.0.0.1:PORT"."""
        if self._thread is not None:
            raise RuntimeError("the simulator is already running")
        loop = asyncio.new_event_loop()
        ready: concurrent.futures.Future[str] = concurrent.futures.Future()

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                ready.set_result(loop.run_until_complete(self.start_async(port)))
            except BaseException as exc:  # reported to start()'s caller
                ready.set_exception(exc)
                loop.close()
                return
            loop.run_forever()
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

        self._loop = loop
        self._thread = threading.Thread(target=run, name="exchange-simulator", daemon=True)
        self._thread.start()
        try:
            return ready.result(timeout=STARTUP_TIMEOUT)
        except BaseException:
            self._thread.join(STARTUP_TIMEOUT)
            self._thread = self._loop = None
            raise

    def stop(self) -> None:
        """Stop the background server started by `start` (idempotent)."""
        if self._thread is None or self._loop is None:
            return
        loop, thread = self._loop, self._thread
        if loop.is_running():
            asyncio.run_coroutine_threadsafe(self.stop_async(), loop).result(SHUTDOWN_TIMEOUT + 5)
            loop.call_soon_threadsafe(loop.stop)
        thread.join(SHUTDOWN_TIMEOUT + 5)
        self._thread = self._loop = None

    def __enter__(self) -> str:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def _random_walk(self) -> None:
        interval = self.scenario.random_walk.interval_seconds
        while True:
            await asyncio.sleep(interval)
            self.state.step_random_walk()

    # --- control -----------------------------------------------------------------------

    def set_mark(self, venue: str, symbol: str, price: float) -> None:
        """Move one market's mark (every account holding it is revalued; stream
        subscribers get it at once)."""
        self.state.set_mark(venue, symbol, price)
        load = self._app.load if self._app is not None else None
        if load is not None:
            load.anchor(venue, symbol, float(price))

    def revoke_key(self, venue: str, api_key: str) -> None:
        """The key stops working (the venue's own invalid-key error); reset() restores it."""
        self.state.revoke_key(venue, api_key)

    def set_positions(self, venue: str, api_key: str, positions: list[dict[str, Any]]) -> None:
        """Replace an account's positions, in the scenario's position format."""
        self.state.set_positions(venue, api_key, positions)

    def set_funding_rate(self, venue: str, symbol: str, rate: float) -> None:
        """Set a market's funding rate (per 8 h interval; the current and predicted rate)."""
        self.state.set_funding_rate(venue, symbol, rate)

    def liquidate(self, venue: str, api_key: str, symbol: str) -> list[LiquidationRecord]:
        """Force the liquidation of the pool(s) holding the account's `symbol` position(s)
        at the current marks; returns the records (docs/simulator.md, "Liquidations")."""
        return self.state.liquidate(venue, api_key, symbol)

    def liquidations(self, venue: str, api_key: str) -> list[LiquidationRecord]:
        """The account's liquidated positions, oldest first."""
        return self.state.liquidations(venue, api_key)

    def add_fault(
        self,
        venue: str,
        path: str,
        kind: str,
        count: int | None = None,
        seconds: float | None = None,
        field: str | None = None,
        text: str | None = None,
        size: int | None = None,
    ) -> Fault:
        """Make (venue, path) misbehave; see docs/simulator.md for the kinds. ValueError for
        a kind the venue cannot show."""
        check_fault(venue, kind)
        return self.faults.add(venue, path, kind, count, seconds, field, text, size)

    def clear_faults(self) -> None:
        """Clear the REST and the stream faults."""
        self.faults.clear()
        self.stream_faults.clear()

    def reset(self) -> None:
        """Back to the scenario's marks, positions, wallets and funding rates, without faults
        (REST and stream) or liquidation records; the request log stays."""
        self.clear_faults()
        self.state.reset()

    # --- streams -----------------------------------------------------------------------

    @property
    def ws_url(self) -> str | None:
        """ "ws://127.0.0.1:PORT" while serving (connectors.redirect.redirect_ws derives it)."""
        return None if self.base_url is None else "ws://" + self.base_url.removeprefix("http://")

    def add_stream_fault(self, venue: str, kind: str, channel: str = "*", count: int | None = None) -> StreamFault:
        """`silent`, `duplicate` or `out_of_order` on the venue's streams (docs/simulator.md)."""
        return self.stream_faults.add(venue, kind, channel, count)

    def drop_streams(self, venue: str, channel: str = "*") -> int:
        """Cut the venue's stream connections now (TCP abort); returns how many."""
        return self._on_loop(lambda: self._require_hub().drop(venue, channel))

    def stream_connections(self) -> list[dict[str, Any]]:
        """The open stream connections: venue, channel, path, api_key, subscriptions, ..."""
        return self._on_loop(lambda: self._require_hub().connections())

    def start_mark_load(self, rate: float, amplitude: float = 0.0005, venues: list[str] | None = None) -> None:
        """Move marks `rate` times a second in total (simulator/load.py), until stopped."""

        def start() -> None:
            app = self._require_app()
            load = MarkLoad(self.state, rate, amplitude, venues)
            if app.load is not None:
                app.load.cancel()
            app.load = load
            load.start()

        self._on_loop(start)

    def stop_mark_load(self) -> dict[str, Any]:
        """Stop the mark load; its last status (updates made)."""

        def stop() -> dict[str, Any]:
            app = self._require_app()
            if app.load is None:
                return {"running": False, "updates": 0}
            status = {**app.load.status(), "running": False}
            app.load.cancel()
            app.load = None
            return status

        return self._on_loop(stop)

    def _require_hub(self) -> StreamHub:
        if self._hub is None:
            raise RuntimeError("the simulator is not running")
        return self._hub

    def _require_app(self) -> SimulatorApp:
        if self._app is None:
            raise RuntimeError("the simulator is not running")
        return self._app

    def _on_loop(self, fn: Callable[[], T]) -> T:
        """Run `fn` on the server's loop, where the stream hub lives: directly when called
        from it (start_async), else through the background thread's loop (start)."""
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if self._runner is not None and running is not None and self._loop is None:
            return fn()  # start_async: the caller's loop is the server's
        loop = self._loop
        if loop is None or not loop.is_running():
            raise RuntimeError("the simulator is not running")

        async def call() -> T:
            return fn()

        return asyncio.run_coroutine_threadsafe(call(), loop).result(SHUTDOWN_TIMEOUT)

    @property
    def signed_requests(self) -> list[tuple[float, str, str, str]]:
        """(epoch seconds it arrived, venue, path, account name) of every authenticated
        request, in the order they were served."""
        return list(self._app.signed_log) if self._app is not None else []

    @property
    def requests(self) -> list[tuple[str, str, str]]:
        """(venue, method, path) of every venue request received, oldest first."""
        return list(self._log)
