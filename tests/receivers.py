"""Loopback HTTP receivers for the watcher's tests: a webhook endpoint that keeps every
JSON body, a healthchecks.io-style ping endpoint and an Uptime Kuma push endpoint that
count what they are sent. One aiohttp server on 127.0.0.1, in its own thread."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web


class Receiver:
    def __init__(self) -> None:
        self.webhooks: list[dict[str, Any]] = []  # JSON bodies posted to /hook/<name>
        self.pings: list[str] = []  # "/ping/<check>", "/ping/<check>/fail", "/ping/<check>/start"
        self.pushes: list[dict[str, str]] = []  # query of each Uptime Kuma push
        self.url = ""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    async def _hook(self, request: web.Request) -> web.Response:
        body = await request.json()
        with self._lock:
            self.webhooks.append(body)
        return web.Response(text="ok")

    async def _ping(self, request: web.Request) -> web.Response:
        with self._lock:
            self.pings.append(request.path)
        return web.Response(text="OK")

    async def _push(self, request: web.Request) -> web.Response:
        with self._lock:
            self.pushes.append(dict(request.query))
        return web.json_response({"ok": True})

    def start(self) -> Receiver:
        ready = threading.Event()

        async def serve() -> None:
            app = web.Application()
            app.router.add_post("/hook/{name}", self._hook)
            app.router.add_get("/ping/{tail:.*}", self._ping)
            app.router.add_get("/api/push/{token}", self._push)
            self._runner = web.AppRunner(app, access_log=None)
            await self._runner.setup()
            site = web.TCPSite(self._runner, "127.0.0.1", 0)
            await site.start()
            self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"
            ready.set()

        def run() -> None:
            self._loop = asyncio.new_event_loop()
            self._loop.run_until_complete(serve())
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, daemon=True, name="receiver")
        self._thread.start()
        ready.wait(10)
        return self

    def stop(self) -> None:
        if self._loop is None:
            return
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)

    def count(self, path: str) -> int:
        with self._lock:
            return sum(1 for p in self.pings if p == path)

    def subjects(self) -> list[str]:
        """The subject of every webhook received (json format: the alert payload)."""
        with self._lock:
            return [str(body.get("subject", json.dumps(body))) for body in self.webhooks]


def wait_for(condition: Callable[[], Any], timeout: float = 60.0, what: str = "condition") -> Any:
    """Poll `condition` until truthy; a generous deadline only guards against a hang."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)
