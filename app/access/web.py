"""The dashboard's HTTP edge: routes and a middleware that app/server.py puts into
Streamlit's own server (`st.App`), in front of everything Streamlit serves.

- The password login is a plain HTML form at /_mw/login, outside Streamlit: the password
  is checked here, under the process-wide limiter (app.access.limiter), and a success
  sets the HttpOnly login cookie (app.access.tokens). /_mw/logout revokes it.
- With the password configured, nothing but the login, the health check and the static
  bundle answers without a valid cookie: pages redirect to the login, Streamlit's
  websocket is refused (so a session id taken from a logged-in browser, sent in
  Sec-WebSocket-Protocol to resume that session, gets nothing), media and uploads are 401.
  The page script checks the cookie again on every run (app.access.gate).
- In every mode: /_stcore/metrics is closed, and a `clear_cache` message on the websocket
  is dropped (it would empty every session's caches, the database engine among them).
"""

from __future__ import annotations

import asyncio
import html
import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from app.access import modes, tokens
from app.access.limiter import HashSlots, LoginLimiter
from app.access.password import verify_password

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

LOGIN = "/_mw/login"
LOGOUT = "/_mw/logout"
STREAM = "/_stcore/stream"
CLOSED = frozenset({"/_stcore/metrics"})
PUBLIC_PATHS = frozenset({"/_stcore/health", "/_stcore/host-config", "/favicon.png", LOGIN, LOGOUT})
PUBLIC_PREFIXES = ("/static/",)
MAX_FORM_BYTES = 4096
MAX_PASSWORD_CHARS = 1024

log = logging.getLogger("marginwatch.login")
limiter = LoginLimiter()
hash_slots = HashSlots(1)  # one PBKDF2 at a time: the other core stays with the app
_installed = False
_last_report: dict[str, float] = {}


def base() -> str:
    """Streamlit's `server.baseUrlPath` as a path prefix ("" or "/prefix")."""
    from streamlit import config

    prefix = str(config.get_option("server.baseUrlPath") or "").strip("/")
    return f"/{prefix}" if prefix else ""


def login_url() -> str:
    return base() + LOGIN


def _relative(path: str) -> str:
    """`path` without the base prefix (the edge's rules are written without it)."""
    prefix = base()
    if prefix and (path == prefix or path.startswith(prefix + "/")):
        return path[len(prefix) :] or "/"
    return path


def installed() -> bool:
    """True in a process whose server carries this edge (started by app/server.py)."""
    return _installed


def routes() -> list[Route]:
    """The login routes; marks this process as guarded."""
    global _installed
    _installed = True
    return [
        Route(login_url(), _login_page, methods=["GET", "HEAD"]),
        Route(login_url(), _login_submit, methods=["POST"]),
        Route(base() + LOGOUT, _logout, methods=["GET", "POST"]),
    ]


# --- the middleware ------------------------------------------------------------------------


def _cookie(scope: Scope) -> str | None:
    for name, value in scope.get("headers") or []:
        if name == b"cookie":
            for part in value.decode("latin-1").split(";"):
                key, _, found = part.strip().partition("=")
                if key == tokens.COOKIE:
                    return found
    return None


def _public(path: str) -> bool:
    return path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)


def _is_page(path: str) -> bool:
    """A path the browser opens as a page (the app shell), not one of Streamlit's APIs."""
    return not path.startswith(("/_stcore", "/media/", "/component/", "/_mw/", "/app/static/"))


def _is_cache_clearing(data: bytes) -> bool:
    from streamlit.proto.BackMsg_pb2 import BackMsg

    message = BackMsg()
    try:
        message.ParseFromString(data)
    except Exception:  # not a BackMsg: Streamlit closes the connection itself
        return False
    return message.WhichOneof("type") == "clear_cache"


def _without_cache_clearing(receive: Receive, address: str) -> Receive:
    async def filtered() -> Message:
        while True:
            message = await receive()
            data = message.get("bytes") if message.get("type") == "websocket.receive" else None
            if data and _is_cache_clearing(data):
                _report(f"cache:{address}", logging.WARNING, "dropped a clear_cache message from %s", address)
                continue
            return message

    return filtered


class AccessGuard:
    """ASGI middleware in front of all of Streamlit (see the module's docstring)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        full = scope.get("path") or "/"
        path = _relative(full)
        if kind == "http" and path in CLOSED:
            await PlainTextResponse("Not found", status_code=404)(scope, receive, send)
            return
        settings = modes.password_settings()
        if settings is not None and not _public(path) and settings.login(_cookie(scope)) is None:
            await _refuse(scope, receive, send, path, full)
            return
        if kind == "websocket" and path == STREAM:
            receive = _without_cache_clearing(receive, _address(scope))
        await self.app(scope, receive, send)


async def _refuse(scope: Scope, receive: Receive, send: Send, path: str, full: str) -> None:
    """No valid login cookie: the login for a page, nothing for anything else."""
    if scope["type"] == "websocket":
        # closing before accepting answers the handshake with 403: no session is created
        # or resumed, whatever Sec-WebSocket-Protocol carries
        await send({"type": "websocket.close", "code": 1008})
        return
    if scope.get("method") in ("GET", "HEAD") and _is_page(path):
        query = scope.get("query_string", b"").decode("latin-1")
        target = full + (f"?{query}" if query else "")
        response: Response = RedirectResponse(f"{login_url()}?next={quote(target, safe='')}", status_code=303)
    else:
        response = PlainTextResponse("Log in first", status_code=401)
    await response(scope, receive, send)


# --- the login routes -----------------------------------------------------------------------


def _address(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


def _report(key: str, level: int, message: str, *args: object, every: float = 10.0) -> None:
    """Log `message`, at most once per `every` seconds for `key` (refusals come in floods)."""
    now = time.monotonic()
    if now - _last_report.get(key, -every) >= every:
        _last_report[key] = now
        if len(_last_report) > 10_000:
            _last_report.clear()
        log.log(level, message, *args)


def _safe_next(target: str | None) -> str:
    """Where to go after the login: a path of this site only (no other host, no scheme)."""
    home = base() + "/"
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return home
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or any(ord(c) < 32 for c in target):
        return home
    return target


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",  # with no-referrer, a form post says Origin: null
    "Cache-Control": "no-store",
}

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>marginwatch: log in</title>
<style>
body {{ font-family: system-ui, sans-serif; background: #f6f7f9; margin: 0; }}
main {{ max-width: 22rem; margin: 12vh auto; background: #fff; padding: 2rem; border-radius: 8px;
       box-shadow: 0 1px 4px rgba(0,0,0,.12); }}
h1 {{ font-size: 1.4rem; margin: 0 0 1.2rem; }}
label {{ display: block; margin-bottom: .4rem; }}
input[type=password] {{ width: 100%; box-sizing: border-box; padding: .5rem; font-size: 1rem; }}
button {{ margin-top: 1rem; padding: .5rem 1.2rem; font-size: 1rem; background: #ff4b4b; color: #fff;
          border: 0; border-radius: 6px; cursor: pointer; }}
p.message {{ color: #b00020; }}
</style></head>
<body><main>
<h1>marginwatch</h1>
{message}
<form method="post" action="{action}">
<input type="hidden" name="next" value="{next}">
<label for="password">Password</label>
<input type="password" id="password" name="password" autocomplete="current-password" autofocus required>
<button type="submit">Log in</button>
</form>
</main></body></html>
"""


def _page(message: str, target: str, status: int, extra: dict[str, str] | None = None) -> Response:
    body = _PAGE.format(
        message=f'<p class="message" role="alert">{html.escape(message)}</p>' if message else "",
        action=html.escape(login_url()),
        next=html.escape(target),
    )
    return Response(body, status_code=status, media_type="text/html", headers={**_HEADERS, **(extra or {})})


def _unavailable(settings: modes.PasswordSettings | None) -> Response | None:
    if settings is None:
        return PlainTextResponse("No password login is configured.", status_code=404, headers=_HEADERS)
    if settings.problem:
        return PlainTextResponse(
            f"secrets.toml [marginwatch_auth]: {settings.problem}: nobody can log in until it is fixed.",
            status_code=503,
            headers=_HEADERS,
        )
    return None


async def _login_page(request: Request) -> Response:
    settings = modes.password_settings()
    unavailable = _unavailable(settings)
    if unavailable is not None:
        return unavailable
    assert settings is not None  # noqa: S101 - _unavailable returned for None
    target = _safe_next(request.query_params.get("next"))
    if settings.login(request.cookies.get(tokens.COOKIE)) is not None:
        return RedirectResponse(target, status_code=303)
    return _page("", target, 200)


async def _form(request: Request) -> dict[str, str] | None:
    """The urlencoded form, or None past MAX_FORM_BYTES."""
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            return None
    fields = parse_qs(body.decode("utf-8", errors="replace"), keep_blank_values=True, max_num_fields=10)
    return {name: values[0] for name, values in fields.items()}


def _cross_site(request: Request) -> bool:
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return origin == "null"
    return urlsplit(origin).netloc != request.headers.get("host")


async def _login_submit(request: Request) -> Response:
    settings = modes.password_settings()
    unavailable = _unavailable(settings)
    if unavailable is not None:
        return unavailable
    assert settings is not None  # noqa: S101 - _unavailable returned for None
    address = _address(request.scope)
    if _cross_site(request):
        _report(f"origin:{address}", logging.WARNING, "login refused from %s: posted from another site", address)
        return PlainTextResponse("Cross-site login refused", status_code=403, headers=_HEADERS)
    form = await _form(request)
    if form is None:
        return PlainTextResponse("Request too large", status_code=413, headers=_HEADERS)
    target = _safe_next(form.get("next"))
    wait = limiter.wait(address)
    if wait > 0:
        _report(
            f"wait:{address}",
            logging.WARNING,
            "login refused from %s: too many failures, %.0f s to wait",
            address,
            wait,
        )
        return _page(f"Too many failed attempts: try again in {wait:.0f} s.", target, 429, _retry(wait))
    if not hash_slots.take():
        _report("busy", logging.INFO, "login refused from %s: another check is running", address)
        return _page("The login is busy: try again in 1 s.", target, 429, _retry(1.0))
    try:
        password = form.get("password", "")[:MAX_PASSWORD_CHARS]
        ok = await asyncio.to_thread(verify_password, password, settings.password_hash)
    finally:
        hash_slots.give()
    if not ok:
        failures, wait = limiter.failed(address)
        log.warning(
            "login failed from %s: %d wrong password(s) in a row; next attempt heard in %.0f s", address, failures, wait
        )
        after = f" Try again in {wait:.0f} s." if wait > 0 else ""
        return _page("Wrong password." + after, target, 401, _retry(wait) if wait > 0 else None)
    limiter.succeeded(address)
    log.info("login from %s", address)
    token = tokens.issue(settings.key, settings.hours)
    response = RedirectResponse(target, status_code=303, headers=_HEADERS)
    response.headers.append(
        "Set-Cookie", tokens.cookie_header(token, int(settings.hours * 3600), secure=_secure(request))
    )
    return response


def _retry(wait: float) -> dict[str, str]:
    return {"Retry-After": str(max(1, round(wait + 0.49)))}


async def _logout(request: Request) -> Response:
    settings = modes.password_settings()
    login = settings.login(request.cookies.get(tokens.COOKIE)) if settings is not None else None
    if login is not None:
        tokens.revoke(login)
        log.info("logout from %s", _address(request.scope))
    response = RedirectResponse(login_url(), status_code=303, headers=_HEADERS)
    response.headers.append("Set-Cookie", tokens.clearing_header(secure=_secure(request)))
    return response
