"""The login cookie of the password mode: a signed, expiring token, checked on every
request, every websocket connection and every run of the page script.

A token is `v1.<issued>.<expires>.<id>.<signature>`: epoch seconds, a random id, and an
HMAC-SHA256 over the rest. The key is derived from a secret and the password hash, so a
new password ends every login. The secret is `cookie_secret` in `[marginwatch_auth]`
when given (logins survive a restart), else random per process (a restart logs everyone
out). A logout revokes the token's id in this process; the browser's copy is dead even if
it was copied elsewhere. The cookie is HttpOnly (no script reads it), SameSite=Lax, Secure
when served over HTTPS, and lives as long as the token.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

COOKIE = "mw_login"
VERSION = "v1"
DEFAULT_HOURS = 12.0
MAX_HOURS = 24.0 * 30

_process_secret = secrets.token_bytes(32)
_revoked: dict[str, float] = {}  # token id -> its expiry (forgotten after)
_lock = threading.Lock()


@dataclass(frozen=True)
class Login:
    """A valid token: its id and when it expires (epoch seconds)."""

    token_id: str
    issued: int
    expires: int


def signing_key(password_hash: str, cookie_secret: str | None = None) -> bytes:
    secret = cookie_secret.encode() if cookie_secret else _process_secret
    return hmac.new(secret, b"marginwatch login cookie|" + password_hash.encode(), hashlib.sha256).digest()


def _sign(key: bytes, body: str) -> str:
    digest = hmac.new(key, body.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def issue(key: bytes, hours: float = DEFAULT_HOURS, now: float | None = None) -> str:
    """A new token valid for `hours`."""
    issued = int(time.time() if now is None else now)
    body = f"{VERSION}.{issued}.{issued + int(hours * 3600)}.{secrets.token_urlsafe(16)}"
    return f"{body}.{_sign(key, body)}"


def verify(key: bytes, token: str | None, now: float | None = None) -> Login | None:
    """The login `token` proves, or None: malformed, forged, expired or revoked."""
    if not token or len(token) > 200:
        return None
    parts = token.split(".")
    if len(parts) != 5 or parts[0] != VERSION:
        return None
    body, signature = ".".join(parts[:4]), parts[4]
    if not hmac.compare_digest(_sign(key, body), signature):
        return None
    try:
        issued, expires = int(parts[1]), int(parts[2])
    except ValueError:
        return None
    moment = time.time() if now is None else now
    if not issued - 60 <= moment < expires:  # a minute of clock slack for a token "from the future"
        return None
    with _lock:
        if parts[3] in _revoked:
            return None
    return Login(parts[3], issued, expires)


def revoke(login: Login, now: Callable[[], float] = time.time) -> None:
    """End `login` in this process, whoever holds a copy of its cookie."""
    moment = now()
    with _lock:
        for token_id in [t for t, until in _revoked.items() if until <= moment]:
            del _revoked[token_id]
        _revoked[login.token_id] = login.expires


def cookie_header(token: str, max_age: int, *, secure: bool, path: str = "/") -> str:
    """The Set-Cookie value: HttpOnly, SameSite=Lax, Secure over HTTPS."""
    return f"{COOKIE}={token}; Max-Age={max_age}; Path={path}; HttpOnly; SameSite=Lax" + ("; Secure" if secure else "")


def clearing_header(*, secure: bool, path: str = "/") -> str:
    return f"{COOKIE}=; Max-Age=0; Path={path}; HttpOnly; SameSite=Lax" + ("; Secure" if secure else "")
