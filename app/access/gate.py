"""Who may see the dashboard. Three modes, chosen by `.streamlit/secrets.toml`:

- `[auth]` present: Streamlit's OpenID Connect login (`st.login`), for shared deployments;
- `[marginwatch_auth] password_hash`: a team password (app.access.password), for self-hosting;
- neither: open, and meant to bind to 127.0.0.1 only (.streamlit/config.toml).

An anonymous visitor of a gated app gets only the login, whatever page they open: until
`allowed()` is true, main.py registers the login under every URL and nothing else. A
secrets file that exists but cannot be read locks the app (fails closed) rather than
opening it.
"""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path
from typing import Any

import streamlit as st
from streamlit.navigation.page import StreamlitPage

from app.access.password import check_hash_format, verify_password

SESSION_KEY = "mw_password_ok"
OPEN, OIDC, PASSWORD, BROKEN = "open", "oidc", "password", "broken"


class SecretsUnreadable(Exception):
    """A secrets file exists but cannot be parsed."""


def _secrets() -> dict[str, Any]:
    try:
        return st.secrets.to_dict()
    except FileNotFoundError as exc:  # Streamlit raises this both for "none" and "unreadable"
        paths = st.get_option("secrets.files") or []
        if any(Path(p).exists() for p in paths):
            raise SecretsUnreadable(str(exc)) from None
        return {}  # no secrets file at all: the open mode


def access_mode() -> str:
    try:
        secrets = _secrets()
    except SecretsUnreadable:
        return BROKEN
    if "auth" in secrets:
        return OIDC
    if "marginwatch_auth" in secrets:
        return PASSWORD
    return OPEN


def allowed(mode: str) -> bool:
    if mode == OPEN:
        return True
    if mode == OIDC:
        return bool(st.user.is_logged_in)
    if mode == PASSWORD:
        return bool(st.session_state.get(SESSION_KEY))
    return False  # unreadable secrets: locked


def login_pages(url_paths: list[str]) -> list[StreamlitPage]:
    """The login under every URL of the app ("" is the default page)."""
    pages = []
    for path in url_paths:

        def page() -> None:
            login_page()

        page.__name__ = f"login_{path or 'home'}"  # Streamlit names a function page by it
        pages.append(st.Page(page, title="Log in", default=not path, **({"url_path": path} if path else {})))
    return pages


def login_page() -> None:
    """The only page an anonymous visitor sees."""
    mode = access_mode()
    st.title("marginwatch")
    if mode == BROKEN:
        st.error(
            "`.streamlit/secrets.toml` cannot be read, so the login it may configure is unknown: "
            "the dashboard stays locked until it is fixed."
        )
        return
    if mode == OIDC:
        if importlib.util.find_spec("authlib") is None:
            st.error(
                "Login is configured ([auth] in secrets.toml) but Authlib is not installed: "
                "`pip install 'Authlib>=1.3.2'` (or `streamlit[auth]`)."
            )
            return
        st.button("Log in", type="primary", on_click=st.login)
        return
    _password_form()


def _password_form() -> None:
    encoded = str(_secrets().get("marginwatch_auth", {}).get("password_hash", ""))
    problem = check_hash_format(encoded)
    if problem:  # fail closed: a broken hash never opens the app
        st.error(f"secrets.toml [marginwatch_auth]: {problem}. Make one with `python -m app.access.password hash`.")
        return
    with st.form("login"):
        password = st.text_input("Password", type="password", key="mw_password")
        submitted = st.form_submit_button("Log in", type="primary")
    if not submitted:
        return
    if verify_password(password, encoded):
        st.session_state[SESSION_KEY] = True
        st.rerun()
    time.sleep(1.0)  # slows guessing from one session; the hash's cost slows the rest
    st.error("Wrong password.")


def account_box(mode: str) -> None:
    """Who is logged in, and the way out (sidebar)."""
    if mode == OIDC:
        name = st.user.get("name") or st.user.get("email") or "logged in"
        st.caption(f"Logged in as {name}")
        st.button("Log out", on_click=st.logout)
    elif mode == PASSWORD:
        st.button("Log out", on_click=lambda: st.session_state.pop(SESSION_KEY, None))


def footer(mode: str) -> None:
    if mode == OPEN:
        st.caption(
            "No login is configured: this dashboard is meant for 127.0.0.1 only "
            "(.streamlit/config.toml). For a shared deployment configure [auth] or "
            "[marginwatch_auth] in .streamlit/secrets.toml (docs/dashboard.md)."
        )
    elif mode in (OIDC, PASSWORD):
        st.caption("Access: " + ("OpenID Connect login" if mode == OIDC else "team password"))
