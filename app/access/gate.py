"""Who may see the dashboard, checked on every run of the page script (app.access.modes
says which login is configured).

An anonymous visitor of a gated app gets only the login, whatever page they open: until
`allowed()` is true, main.py registers the login under every URL and nothing else.

With the team password, the login itself happens outside Streamlit (app.access.web, at
/_mw/login), which sets an HttpOnly cookie; here the cookie that came with this session's
websocket (`st.context.cookies`, from the connection now serving the session, so a
resumed session is checked against its new connection) must hold a valid, unexpired,
unrevoked token on every run. A dashboard started without that edge (app/main.py run
directly) stays locked in the password mode. A secrets file that exists but cannot be
read locks the app (fails closed) rather than opening it.
"""

from __future__ import annotations

import html
import importlib.util
from urllib.parse import quote

import streamlit as st
from streamlit.navigation.page import StreamlitPage

from app.access import modes, tokens, web
from app.access.modes import BROKEN, OIDC, OPEN, PASSWORD, access_mode
from app.components.safe import md

__all__ = ["BROKEN", "OIDC", "OPEN", "PASSWORD", "access_mode", "allowed"]


def login_cookie() -> str | None:
    """The login cookie that came with the websocket now serving this session."""
    return st.context.cookies.get(tokens.COOKIE)


def current_login() -> tokens.Login | None:
    """The password login this session's connection proves, if any."""
    settings = modes.password_settings()
    if settings is None or not web.installed():
        return None
    return settings.login(login_cookie())


def allowed(mode: str) -> bool:
    if mode == OPEN:
        return True
    if mode == OIDC:
        return bool(st.user.is_logged_in)
    if mode == PASSWORD:
        return current_login() is not None
    return False  # unreadable secrets: locked


def login_pages(url_paths: list[str]) -> list[StreamlitPage]:
    """The login under every URL of the app ("" is the default page)."""
    pages = []
    for path in url_paths:

        def page() -> None:
            login_page()

        page.__name__ = f"login_{path or 'home'}"  # Streamlit names a function page by it
        pages.append(st.Page(page, title="Log in", default=not path, url_path=path or None))
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
    _password_login()


def _password_login() -> None:
    settings = modes.password_settings()
    if settings is not None and settings.problem:  # fail closed: a broken setting never opens the app
        st.error(
            f"secrets.toml [marginwatch_auth]: {md(settings.problem)}. "
            "Make a hash with `python -m app.access.password hash`."
        )
        return
    if not web.installed():
        st.error(
            "The password login needs the dashboard's own server: start it with "
            "`streamlit run app/server.py` (as `marginwatch demo` does), not app/main.py."
        )
        return
    st.warning("Your login has expired or ended: log in again.")
    url = st.context.url or ""
    path = "/" + url.split("://", 1)[-1].partition("/")[2] if url else "/"
    target = f"{web.login_url()}?next={quote(path, safe='')}"
    st.html(f'<a href="{html.escape(target)}" target="_self">Log in</a>')


def _log_out() -> None:
    login = current_login()
    if login is not None:
        tokens.revoke(login)  # the cookie the browser keeps is dead from now on


def account_box(mode: str) -> None:
    """Who is logged in, and the way out (sidebar)."""
    if mode == OIDC:
        name = st.user.get("name") or st.user.get("email") or "logged in"
        st.caption(f"Logged in as {md(name)}")
        st.button("Log out", on_click=st.logout)
    elif mode == PASSWORD:
        st.button("Log out", on_click=_log_out)


def footer(mode: str) -> None:
    if mode == OPEN:
        st.caption(
            "No login is configured: this dashboard is meant for 127.0.0.1 only "
            "(.streamlit/config.toml). For a shared deployment configure [auth] or "
            "[marginwatch_auth] in .streamlit/secrets.toml (docs/dashboard.md)."
        )
    elif mode in (OIDC, PASSWORD):
        st.caption("Access: " + ("OpenID Connect login" if mode == OIDC else "team password"))
