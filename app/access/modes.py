"""Which login the dashboard has, from `.streamlit/secrets.toml` (no UI here: the page
script (app.access.gate) and the server's edge (app.access.web) both ask).

- `[auth]` present: Streamlit's OpenID Connect login (`st.login`), for shared deployments;
- `[marginwatch_auth] password_hash`: the team password, for self-hosting;
- neither: open, and meant to bind to 127.0.0.1 only (.streamlit/config.toml);
- a secrets file that exists but cannot be read: locked (fails closed).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import streamlit as st

from app.access.password import check_hash_format
from app.access.tokens import DEFAULT_HOURS, MAX_HOURS, Login, signing_key, verify

OPEN, OIDC, PASSWORD, BROKEN = "open", "oidc", "password", "broken"
MIN_COOKIE_SECRET = 16


class SecretsUnreadable(Exception):
    """A secrets file exists but cannot be parsed."""


@dataclass(frozen=True)
class PasswordSettings:
    """`[marginwatch_auth]`, checked: the hash, the cookie's signing key and lifetime;
    `problem` says why the login cannot work (then nobody gets in)."""

    password_hash: str
    key: bytes
    hours: float
    problem: str | None = None

    def login(self, token: str | None) -> Login | None:
        """The login a cookie's token proves; never one while the settings are broken."""
        return None if self.problem else verify(self.key, token)


def secrets() -> dict[str, Any]:
    try:
        return st.secrets.to_dict()
    except FileNotFoundError as exc:  # Streamlit raises this both for "none" and "unreadable"
        paths = st.get_option("secrets.files") or []
        if any(Path(p).exists() for p in paths):
            raise SecretsUnreadable(str(exc)) from None
        return {}  # no secrets file at all: the open mode


def access_mode() -> str:
    try:
        found = secrets()
    except SecretsUnreadable:
        return BROKEN
    if "auth" in found:
        return OIDC
    if "marginwatch_auth" in found:
        return PASSWORD
    return OPEN


def password_settings() -> PasswordSettings | None:
    """The password login's settings, or None when the mode is not the password."""
    try:
        section = secrets().get("marginwatch_auth")
    except SecretsUnreadable:
        return None
    if not isinstance(section, dict):
        return None
    encoded = str(section.get("password_hash", ""))
    problem = check_hash_format(encoded)
    cookie_secret = section.get("cookie_secret")
    if (
        problem is None
        and cookie_secret is not None
        and (not isinstance(cookie_secret, str) or len(cookie_secret) < MIN_COOKIE_SECRET)
    ):
        problem = f"cookie_secret must be a string of at least {MIN_COOKIE_SECRET} characters"
    hours = section.get("session_hours", DEFAULT_HOURS)
    if problem is None and (
        isinstance(hours, bool) or not isinstance(hours, int | float) or not (0 < hours <= MAX_HOURS)
    ):
        problem = f"session_hours must be a number of hours above 0 and at most {MAX_HOURS:g}"
    if problem is not None or not math.isfinite(float(hours)):
        return PasswordSettings(encoded, b"", DEFAULT_HOURS, problem or "session_hours must be finite")
    key = signing_key(encoded, cookie_secret if isinstance(cookie_secret, str) else None)
    return PasswordSettings(encoded, key, float(hours))
