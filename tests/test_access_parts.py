"""The pure parts of the dashboard's access and of its text hygiene: the login limiter,
the login tokens, the edge middleware as an ASGI app, and the escaping of hostile text.
The same things against the running app: tests/test_security_dashboard.py."""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

import pytest
from markdown_it import MarkdownIt
from streamlit.proto.BackMsg_pb2 import BackMsg

from app.access import modes, tokens, web
from app.access.limiter import HashSlots, LoginLimiter
from app.components.safe import md, svg
from simulator.faults import HOSTILE_TEXT


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_failures_from_one_address_wait_twice_as_long_each_time_up_to_the_cap() -> None:
    clock = Clock()
    limiter = LoginLimiter(free=3, base=1.0, cap=900.0, global_free=1000, clock=clock)
    waits = [limiter.failed("10.0.0.1")[1] for _ in range(15)]
    assert waits[:2] == [0.0, 0.0]  # the first failures cost nothing (typos)
    assert waits[2:8] == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0]
    assert waits[-1] == 900.0  # capped at 15 min
    assert limiter.wait("10.0.0.1") == 900.0 and limiter.wait("10.0.0.2") == 0.0  # per address
    clock.now += 900.0
    assert limiter.wait("10.0.0.1") == 0.0
    limiter.succeeded("10.0.0.1")  # a success clears the address
    assert limiter.failed("10.0.0.1") == (1, 0.0)


def test_failures_from_many_addresses_slow_everyone_down() -> None:
    clock = Clock()
    limiter = LoginLimiter(free=3, global_free=30, global_cap=60.0, clock=clock)
    for i in range(30):  # a botnet: one guess per address, never an address's own backoff
        limiter.failed(f"10.0.{i // 250}.{i % 250}")
    assert limiter.wait("192.168.1.1") == 1.0  # a newcomer waits too: the global backoff
    for i in range(30, 40):
        limiter.failed(f"10.0.0.{i}")
    assert limiter.wait("192.168.1.1") == 60.0  # doubling, capped at a minute


def test_failures_are_forgotten_after_a_quiet_hour_and_memory_is_bounded() -> None:
    clock = Clock()
    limiter = LoginLimiter(free=1, forget_after=3600.0, max_addresses=100, global_free=10**6, clock=clock)
    limiter.failed("a")
    limiter.failed("a")
    clock.now += 3601.0
    assert limiter.wait("a") == 0.0 and limiter.failed("a") == (1, 1.0)
    for i in range(10_000):
        limiter.failed(f"x{i}")
    assert len(limiter._records) <= 101 + 1


def test_hash_slots_refuse_beyond_their_number() -> None:
    slots = HashSlots(1)
    assert slots.take() and not slots.take()
    slots.give()
    assert slots.take()


def test_a_token_proves_a_login_only_when_signed_unexpired_and_not_revoked() -> None:
    key = tokens.signing_key("pbkdf2_sha256$1$salt$hash", "a secret of enough length")
    token = tokens.issue(key, hours=1.0)
    login = tokens.verify(key, token)
    assert login is not None
    other = tokens.signing_key("pbkdf2_sha256$1$salt$OTHER", "a secret of enough length")
    assert tokens.verify(other, token) is None  # a new password ends every login
    parts = token.split(".")
    assert tokens.verify(key, ".".join([*parts[:2], str(int(parts[2]) + 3600), *parts[3:]])) is None  # longer
    assert tokens.verify(key, token, now=time.time() + 3601) is None  # expired
    for junk in ("", "v1", "v2." + token[3:], token + ".x", "x" * 500, None):
        assert tokens.verify(key, junk) is None
    tokens.revoke(login)
    assert tokens.verify(key, token) is None
    header = tokens.cookie_header(tokens.issue(key), 3600, secure=True)
    assert "HttpOnly" in header and "SameSite=Lax" in header and "Secure" in header and "Max-Age=3600" in header


def test_broken_password_settings_never_let_anyone_in(monkeypatch: pytest.MonkeyPatch) -> None:
    import streamlit as st

    class Secrets:
        def __init__(self, section: dict[str, Any]) -> None:
            self.section = section

        def to_dict(self) -> dict[str, Any]:
            return {"marginwatch_auth": self.section}

    good = "pbkdf2_sha256$1000$salt$hash"
    for section, problem in [
        ({"password_hash": "plain"}, "password_hash"),
        ({"password_hash": good, "cookie_secret": "short"}, "cookie_secret"),
        ({"password_hash": good, "session_hours": 1e300}, "session_hours"),
        ({"password_hash": good, "session_hours": float("nan")}, "session_hours"),
    ]:
        monkeypatch.setattr(st, "secrets", Secrets(section))
        settings = modes.password_settings()
        assert settings is not None and problem in (settings.problem or "")
        assert settings.login(tokens.issue(settings.key)) is None  # whatever the key


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/account?account=a", "/account?account=a"),
        ("https://evil.example/", "/"),
        ("//evil.example/x", "/"),
        ("/\\evil.example", "/"),
        ("javascript:alert(1)", "/"),
        ("/ok\r\nSet-Cookie: x=y", "/"),
        (None, "/"),
    ],
)
def test_after_the_login_only_a_path_of_this_site(target: str | None, expected: str) -> None:
    assert web._safe_next(target) == expected


# --- the edge as an ASGI app -----------------------------------------------------------------


class Downstream:
    """Stands for Streamlit behind the guard: records what reaches it."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.received: list[Any] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.calls.append(scope["path"])
        if scope["type"] == "websocket":
            while True:
                message = await receive()
                if message["type"] == "websocket.disconnect":
                    return
                self.received.append(message)
        else:
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"streamlit"})


def _back_msg(kind: str) -> bytes:
    message = BackMsg()
    if kind == "clear_cache":
        message.clear_cache = True
    else:
        message.app_heartbeat = True
    return message.SerializeToString()


async def _call(guard: web.AccessGuard, scope: dict[str, Any], incoming: list[dict[str, Any]]) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []
    queue = list(incoming)

    async def receive() -> dict[str, Any]:
        return queue.pop(0) if queue else {"type": "websocket.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await guard(scope, receive, send)
    return sent


def _scope(kind: str, path: str, cookie: str | None = None) -> dict[str, Any]:
    headers = [(b"cookie", f"{tokens.COOKIE}={cookie}".encode())] if cookie else []
    scope = {"type": kind, "path": path, "headers": headers, "client": ("127.0.0.1", 5000), "query_string": b""}
    if kind == "http":
        scope["method"] = "GET"
    return scope


def test_the_edge_drops_cache_clearing_and_closes_metrics_in_any_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(modes, "password_settings", lambda: None)  # the open mode
    downstream = Downstream()
    guard = web.AccessGuard(downstream)
    frames = [{"type": "websocket.receive", "bytes": _back_msg(k)} for k in ("clear_cache", "heartbeat", "clear_cache")]
    asyncio.run(_call(guard, _scope("websocket", "/_stcore/stream"), [{"type": "websocket.connect"}, *frames]))
    kinds = []
    for message in downstream.received:
        if message["type"] == "websocket.receive":
            parsed = BackMsg()
            parsed.ParseFromString(message["bytes"])
            kinds.append(parsed.WhichOneof("type"))
    assert kinds == ["app_heartbeat"]  # the clear_cache messages never reached Streamlit
    sent = asyncio.run(_call(guard, _scope("http", "/_stcore/metrics"), []))
    assert sent[0]["status"] == 404 and "/_stcore/metrics" not in downstream.calls


def test_with_a_password_nothing_but_the_login_answers_without_a_valid_cookie(monkeypatch: pytest.MonkeyPatch) -> None:
    key = tokens.signing_key("pbkdf2_sha256$1000$salt$hash")
    settings = modes.PasswordSettings("pbkdf2_sha256$1000$salt$hash", key, 12.0)
    monkeypatch.setattr(modes, "password_settings", lambda: settings)
    downstream = Downstream()
    guard = web.AccessGuard(downstream)
    page = asyncio.run(_call(guard, _scope("http", "/account"), []))
    assert page[0]["status"] == 303 and (b"location", b"/_mw/login?next=%2Faccount") in page[0]["headers"]
    socket = asyncio.run(_call(guard, _scope("websocket", "/_stcore/stream"), [{"type": "websocket.connect"}]))
    assert socket == [{"type": "websocket.close", "code": 1008}]  # refused before any session exists
    upload = asyncio.run(_call(guard, {**_scope("http", "/_stcore/upload_file/x"), "method": "PUT"}, []))
    assert upload[0]["status"] == 401
    forged = tokens.issue(tokens.signing_key("another hash"))
    assert asyncio.run(_call(guard, _scope("http", "/", forged), []))[0]["status"] == 303
    assert downstream.calls == []  # nothing reached Streamlit
    for public in ("/_stcore/health", "/static/js/index.js"):
        asyncio.run(_call(guard, _scope("http", public), []))
    asyncio.run(_call(guard, _scope("http", "/", tokens.issue(key)), []))
    assert downstream.calls == ["/_stcore/health", "/static/js/index.js", "/"]


# --- hostile text ---------------------------------------------------------------------------

RENDER = MarkdownIt("commonmark").enable("table").enable("strikethrough")


@pytest.mark.parametrize(
    "text",
    [
        HOSTILE_TEXT,
        "[click](javascript:alert(1)) ![x](https://evil.example/a.png) <https://evil.example> www.evil.example",
        "line one\n# heading\n> quote\n    code\n| a | b |\n|---|---|\n$x^2$ :red[alarm] **bold** `tick`",
        "\u202eevil\u202c\r text\x1b[31m",
    ],
)
def test_markdown_escaping_leaves_no_link_image_html_or_markup(text: str) -> None:
    rendered = RENDER.render(md(text))
    assert not re.search(r"<(a|img|h1|blockquote|pre|code|table|strong|em|del)\b", rendered), rendered
    shown = re.sub(r"<[^>]+>", "", rendered)
    for word in ("evil.example", "heading", "alarm"):  # the words are all still there, as text
        if word in text:
            assert word in shown.replace("&amp;", "&")
    assert "\u202e" not in md(text) and "\x1b" not in md(text)


def test_chart_text_cannot_carry_a_link() -> None:
    assert (
        svg('<a href="https://evil.example">re-verify</a>')
        == '&lt;a href="https://evil.example"&gt;re-verify&lt;/a&gt;'
    )


def test_the_edge_works_under_a_base_url_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """server.baseUrlPath = "mw": Streamlit serves /mw/...; the edge's rules follow."""
    key = tokens.signing_key("pbkdf2_sha256$1000$salt$hash")
    settings = modes.PasswordSettings("pbkdf2_sha256$1000$salt$hash", key, 12.0)
    monkeypatch.setattr(modes, "password_settings", lambda: settings)
    monkeypatch.setattr(web, "base", lambda: "/mw")
    downstream = Downstream()
    guard = web.AccessGuard(downstream)
    assert asyncio.run(_call(guard, _scope("http", "/mw/_stcore/metrics", tokens.issue(key)), []))[0]["status"] == 404
    page = asyncio.run(_call(guard, _scope("http", "/mw/account"), []))
    assert (b"location", b"/mw/_mw/login?next=%2Fmw%2Faccount") in page[0]["headers"]
    asyncio.run(_call(guard, _scope("http", "/mw/_stcore/health"), []))
    assert downstream.calls == ["/mw/_stcore/health"]
    monkeypatch.setattr(web, "_installed", web._installed)  # routes() marks the process as guarded
    assert [route.path for route in web.routes()] == ["/mw/_mw/login", "/mw/_mw/login", "/mw/_mw/logout"]
    assert web._safe_next("https://evil.example") == "/mw/"
