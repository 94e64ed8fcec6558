"""A local Telegram Bot API server on 127.0.0.1 (aiohttp, on a thread of its own) that
speaks getMe, sendMessage and getUpdates as the real one does: any HTTP method; parameters
from the query string, a form body or a JSON body; {"ok": true, "result": ...} answers and
{"ok": false, "error_code", "description"} errors with the same HTTP status; sendMessage's
HTML parse mode checked like Telegram's (only its tags, and &, <, > escaped elsewhere);
getUpdates confirming by offset and holding a long poll until an update arrives.

Shapes follow https://core.telegram.org/bots/api (Making requests, getUpdates, Message)
and the research in /work/notes/issue15-21-ops.md §1.3-1.4."""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web

TOKEN = "123456:TEST-secret-token_abc"
BOT_ID = 123456
# Telegram HTML: these tags, and entities; any other "<" or "&" is a parse error
_TAG = re.compile(r"</?(b|strong|i|em|u|ins|s|strike|del|a|code|pre|span|tg-spoiler|blockquote|tg-emoji)(\s[^<>]*)?>")
_ENTITY = re.compile(r"&(lt|gt|amp|quot|#\d+|#x[0-9a-fA-F]+);")


def html_problem(text: str) -> str | None:
    """Why Telegram would refuse `text` in HTML parse mode, or None."""
    for i, char in enumerate(text):
        if char == "<" and not _TAG.match(text, i):
            return f"Unsupported start tag at byte offset {i}"
        if char == "&" and not _ENTITY.match(text, i):
            return f"Unsupported entity at byte offset {i}"
    return None


class FakeBotApi:
    """Records what the bot sent (`sent`: dicts with chat_id, text, parse_mode); `say()`
    queues a user's message as an update; `known_chats` are the chats sendMessage reaches;
    `fail_next` answers the next sendMessage calls with a given error."""

    def __init__(self, known_chats: set[int] | None = None) -> None:
        self.known_chats = set(known_chats or {42})
        self.sent: list[dict[str, Any]] = []
        self.requests: list[tuple[str, str, str]] = []  # (HTTP method, API method, content type)
        self.updates: list[dict[str, Any]] = []
        self.fail_next: list[tuple[int, str, dict[str, Any] | None]] = []
        self._next_update = 500_000_001
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._arrived: asyncio.Event | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the fake Bot API server did not start")

    # --- the test's side ---------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def say(self, chat_id: int, text: str, date: int | None = None) -> int:
        """A user in `chat_id` sends `text`; returns its update id."""
        with self._lock:
            update_id = self._next_update
            self._next_update += 1
            self.updates.append(
                {
                    "update_id": update_id,
                    "message": {
                        "message_id": update_id - 500_000_000,
                        "date": int(time.time()) if date is None else date,
                        "from": {"id": chat_id, "is_bot": False, "first_name": "Ann"},
                        "chat": {"id": chat_id, "type": "private" if chat_id > 0 else "group"},
                        "text": text,
                    },
                }
            )
        self._loop.call_soon_threadsafe(self._wake)
        return update_id

    def messages_to(self, chat_id: int) -> list[str]:
        return [m["text"] for m in list(self.sent) if m["chat_id"] == chat_id]

    def wait_for(self, condition: Callable[[], bool], seconds: float = 20.0) -> None:
        """Wait until `condition()` holds (a generous deadline, not a timing)."""
        deadline = time.monotonic() + seconds
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError(f"condition not met within {seconds} s; sent: {self.sent}")
            time.sleep(0.02)

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    # --- the server ----------------------------------------------------------------------

    def _wake(self) -> None:
        if self._arrived is not None:
            self._arrived.set()

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._arrived = asyncio.Event()
        app = web.Application()
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        runner = web.AppRunner(app, access_log=None)
        self._loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, "127.0.0.1", 0)
        self._loop.run_until_complete(site.start())
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self._ready.set()
        self._loop.run_forever()
        self._loop.run_until_complete(runner.cleanup())

    @staticmethod
    async def _params(request: web.Request) -> dict[str, Any]:
        params: dict[str, Any] = dict(request.query)
        if request.content_type == "application/json":
            params.update(json.loads(await request.read() or b"{}"))
        elif request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
            params.update({k: v for k, v in (await request.post()).items() if isinstance(v, str)})
        return params

    @staticmethod
    def _error(code: int, description: str, parameters: dict[str, Any] | None = None) -> web.Response:
        body: dict[str, Any] = {"ok": False, "error_code": code, "description": description}
        if parameters:
            body["parameters"] = parameters
        return web.json_response(body, status=code)

    async def _handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"].lower()  # method names are case-insensitive
        self.requests.append((request.method, method, request.content_type))
        if request.match_info["token"] != TOKEN:
            return self._error(401, "Unauthorized")
        params = await self._params(request)
        if method == "getme":
            return web.json_response(
                {
                    "ok": True,
                    "result": {"id": BOT_ID, "is_bot": True, "first_name": "MarginWatch", "username": "mw_test_bot"},
                }
            )
        if method == "sendmessage":
            return self._send_message(params)
        if method == "getupdates":
            return await self._get_updates(params)
        return self._error(404, "Not Found")

    def _send_message(self, params: dict[str, Any]) -> web.Response:
        if self.fail_next:
            code, description, parameters = self.fail_next.pop(0)
            return self._error(code, description, parameters)
        try:
            chat_id = int(params["chat_id"])
        except (KeyError, ValueError):
            return self._error(400, "Bad Request: chat_id is empty")
        text = str(params.get("text", ""))
        if not text.strip():
            return self._error(400, "Bad Request: message text is empty")
        if len(text) > 4096:
            return self._error(400, "Bad Request: message is too long")
        if chat_id not in self.known_chats:
            return self._error(400, "Bad Request: chat not found")
        if str(params.get("parse_mode", "")).upper() == "HTML":
            problem = html_problem(text)
            if problem:
                return self._error(400, f"Bad Request: can't parse entities: {problem}")
        self.sent.append({"chat_id": chat_id, "text": text, "parse_mode": params.get("parse_mode")})
        return web.json_response(
            {
                "ok": True,
                "result": {
                    "message_id": len(self.sent),
                    "date": int(time.time()),
                    "chat": {"id": chat_id, "type": "private"},
                    "text": text,
                },
            }
        )

    async def _get_updates(self, params: dict[str, Any]) -> web.Response:
        offset = int(params.get("offset") or 0)
        timeout = float(params.get("timeout") or 0)
        with self._lock:
            # "confirmed as soon as getUpdates is called with an offset higher than its update_id"
            self.updates = [u for u in self.updates if u["update_id"] >= offset]
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                pending = list(self.updates)
            remaining = deadline - time.monotonic()
            if pending or remaining <= 0:
                return web.json_response({"ok": True, "result": pending})
            assert self._arrived is not None
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), remaining)
            except TimeoutError:
                pass
