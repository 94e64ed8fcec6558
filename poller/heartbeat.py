"""Pinging an outside service every cycle, so that it alerts when the poller — or its
machine — goes silent. Two conventions:

- healthchecks.io: GET the URL on a good cycle, URL/fail on a failed one, URL/start at
  start (https://healthchecks.io/docs/http_api/);
- Uptime Kuma push monitors: GET the URL with ?status=up&msg=OK&ping=<ms>, status=down on a
  failed cycle (it has no start signal; a /fail suffix would be answered 200 with the web
  app's page, so it is never used there).

A ping never holds a cycle: it runs as its own task with a short timeout, and a ping that
fails is logged, not retried (the next cycle pings again).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import aiohttp

log = logging.getLogger(__name__)

MAX_IN_FLIGHT = 3  # pings of a dead endpoint never pile up
CLOSE_GRACE_SECONDS = 1.0


def ping_url(url: str, style: str, signal: str, message: str = "OK", ping_ms: int | None = None) -> str | None:
    """The URL to GET for `signal` ("start", "success" or "fail"); None when the style
    has no such signal."""
    parts = urlsplit(url)
    if style == "uptime-kuma":
        if signal == "start":
            return None
        query = {k: v for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in ("status", "msg", "ping")}
        query["status"] = "up" if signal == "success" else "down"
        query["msg"] = message[:200]
        if ping_ms is not None:
            query["ping"] = str(ping_ms)
        return urlunsplit(parts._replace(query=urlencode(query)))
    if signal == "success":
        return url
    return urlunsplit(parts._replace(path=parts.path.rstrip("/") + f"/{signal}"))


class Heartbeat:
    def __init__(self, url: str, style: str = "healthchecks", timeout_seconds: float = 5.0) -> None:
        self.url = url
        self.style = style
        self.timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        self._session: aiohttp.ClientSession | None = None
        self._in_flight: set[asyncio.Task[None]] = set()
        self.sent = 0
        self.failed = 0

    def start(self) -> None:
        self._fire("start")

    def cycle(self, ok: bool, message: str, seconds: float) -> None:
        """After each cycle: success, or fail with what failed."""
        self._fire("success" if ok else "fail", message, round(seconds * 1000))

    def _fire(self, signal: str, message: str = "OK", ping_ms: int | None = None) -> None:
        target = ping_url(self.url, self.style, signal, message, ping_ms)
        if target is None:
            return
        if len(self._in_flight) >= MAX_IN_FLIGHT:
            log.warning("heartbeat: %d pings still unanswered; this one (%s) is skipped", len(self._in_flight), signal)
            return
        task = asyncio.ensure_future(self._get(target, signal))
        self._in_flight.add(task)
        task.add_done_callback(self._in_flight.discard)

    async def _get(self, target: str, signal: str) -> None:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self.timeout)
        try:
            async with self._session.get(target) as response:
                body = await response.text()
                problem = _problem(self.style, response.status, body)
        except Exception as exc:  # a heartbeat never stops the poller; the miss is logged
            problem = f"{type(exc).__name__}: {exc}"
        if problem:
            self.failed += 1
            log.warning("heartbeat %s ping failed: %s", signal, problem)
        else:
            self.sent += 1

    async def close(self) -> None:
        """Give the pings on their way a moment to finish, then drop them and close (a
        heartbeat endpoint that never answers must not hold a stopping poller)."""
        if self._in_flight:
            _, late = await asyncio.wait(set(self._in_flight), timeout=CLOSE_GRACE_SECONDS)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
            self._session = None


def _problem(style: str, status: int, body: str) -> str | None:
    if status != 200:
        return f"HTTP {status}"
    if style == "uptime-kuma":
        import json

        try:
            answer: Any = json.loads(body)
        except ValueError:
            return "not a push URL (the answer is not JSON)"
        if not isinstance(answer, dict) or answer.get("ok") is not True:
            return f"refused: {str(answer.get('msg') if isinstance(answer, dict) else answer)[:200]}"
    return None
