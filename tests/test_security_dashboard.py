"""Attacks on the running dashboard (issue 16): Streamlit started as its own process by
cli.dashboard (app/server.py), driven by headless Chromium (Playwright) and by a raw
websocket client (tests/streamlit_socket.py) that does what a browser would not.

- open mode, on a store where an exchange answered with hostile text: the text shows as
  text, no link or image is made of it and the browser asks nothing of any other host; a
  forged widget state gets a short message and no traceback; `clear_cache` is dropped;
  /_stcore/metrics is closed; the process has none of the credentials its config names.
- password mode: parallel guessing is slowed and logged (address and time, never the
  guess), the health check keeps answering, the right password still gets in; a
  session id reused without the login cookie, or after a logout, gets nothing.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import os
import re
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from websockets.exceptions import InvalidStatus

from app.access.password import hash_password
from cli.dashboard import start_dashboard, wait_until_up
from config.files import write_config
from config.settings import parse_config
from poller.runtime import run_poller
from tests.helpers import free_port, keyed_account, require_system_part, running_simulator
from tests.streamlit_socket import StreamlitSocket
from tests.test_dashboard_browser import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, _stop

SCENARIO = Path(__file__).parent / "fixtures" / "simulator" / "scenario.json"
PASSWORD = "correct horse battery staple"
HOSTILE_ACCOUNT = "bybit-main"


@dataclass
class Server:
    url: str
    log: Path
    process: subprocess.Popen[bytes]

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory, module_env: pytest.MonkeyPatch) -> Path:
    """A store the real poller wrote: a Binance account, and a Bybit account whose every
    answer was a 503 with hostile text (a markdown link and image, HTML, rich markup)."""
    folder = tmp_path_factory.mktemp("hostile")
    doc = json.loads(SCENARIO.read_text())
    with running_simulator(doc) as sim:
        sim.add_fault("bybit", "*", "error_text")
        accounts = [
            keyed_account(
                module_env,
                f"MW_DASH_{account['venue'].upper()}",
                account["api_key"],
                account["secret"],
                name=HOSTILE_ACCOUNT if account["venue"] == "bybit" else "binance-main",
                exchange=account["venue"],
                base_url=sim.base_url,
                timeout_seconds=1,
            )
            for account in doc["accounts"]
            if account["api_key"] in ("bn-key", "by-key")
        ]
        config = parse_config(
            {"poll_interval_seconds": 0.3, "database_url": f"sqlite:///{folder / 'store.db'}", "accounts": accounts}
        )
        asyncio.run(run_poller(config, cycles=2, secrets_file={}))
    return write_config(config, folder / "marginwatch.toml")


def _serve(folder: Path, config: Path, name: str, env: dict[str, str] | None = None) -> Iterator[Server]:
    require_system_part(None if CHROMIUM.exists() else f"{CHROMIUM} not found", "Chromium", "apt-get install chromium")
    ARTIFACTS.mkdir(exist_ok=True)
    port = free_port()
    log = ARTIFACTS / f"{name}.log"
    with log.open("wb") as handle:
        process = start_dashboard(config, port, cwd=folder, env=env, stdout=handle, stderr=subprocess.STDOUT)
        try:
            url = f"http://127.0.0.1:{port}"
            wait_until_up(url, 60, process)
            yield Server(url, log, process)
        finally:
            _stop(process)


@pytest.fixture(scope="module")
def open_app(store: Path) -> Iterator[Server]:
    """The dashboard with no login (127.0.0.1 only), its environment holding the
    credentials its config names and a demo key, as a careless start would."""
    env = {**os.environ, "MW_DASH_BYBIT_SECRET": "by-secret-in-env", "MARGINWATCH_DEMO_0_KEY": "demo-key-in-env"}
    yield from _serve(store.parent, store, "dashboard-open", env)


@pytest.fixture(scope="module")
def gated_app(tmp_path_factory: pytest.TempPathFactory, store: Path) -> Iterator[Server]:
    """The dashboard with the team password (at the real cost: 600,000 PBKDF2 rounds)."""
    folder = tmp_path_factory.mktemp("gated")
    (folder / ".streamlit").mkdir()
    (folder / ".streamlit" / "secrets.toml").write_text(
        f'[marginwatch_auth]\npassword_hash = "{hash_password(PASSWORD)}"\n'
    )
    yield from _serve(folder, store, "dashboard-gated")


def _post(url: str, fields: dict[str, str], cookie: str | None = None) -> tuple[int, dict[str, str], str]:
    """POST a form without following redirects: (status, headers, body)."""
    request = urllib.request.Request(  # noqa: S310 - the test's own server
        url,
        data=urllib.parse.urlencode(fields).encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded", **({"Cookie": cookie} if cookie else {})},
        method="POST",
    )
    return _open(request)


def _get(url: str, cookie: str | None = None) -> tuple[int, dict[str, str], str]:
    request = urllib.request.Request(url, headers={"Cookie": cookie} if cookie else {})  # noqa: S310
    return _open(request)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any) -> None:
        return None


def _open(request: urllib.request.Request) -> tuple[int, dict[str, str], str]:
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(request, timeout=60) as reply:
            return reply.status, dict(reply.headers.items()), reply.read().decode(errors="replace")
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers.items()), exc.read().decode(errors="replace")


def _login_cookie(headers: dict[str, str]) -> str:
    value = next(v for k, v in headers.items() if k.lower() == "set-cookie")
    assert "HttpOnly" in value and "SameSite=Lax" in value and "Max-Age=" in value
    return value.split(";")[0]


# --- the open app: hostile text, forged state, closed surfaces -------------------------------


def test_hostile_exchange_text_shows_as_text_and_the_browser_asks_no_other_host(open_app: Server) -> None:
    from playwright.sync_api import expect, sync_playwright

    requests: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1500, "height": 2400})
            page.set_default_timeout(30_000)
            expect.set_options(timeout=30_000)
            page.on("request", lambda r: requests.append(r.url))
            # the Account page puts the error in an alert (Markdown); the keys page in tables,
            # drawn on a canvas (nothing to read in the DOM, but nothing to click either)
            for path, shown in (
                (f"account?account={HOSTILE_ACCOUNT}", "re-verify your API key"),
                ("keys", "Recent poll errors"),
            ):
                page.goto(f"{open_app.url}/{path}")
                expect(page.get_by_text(shown).first).to_be_visible()  # the text is there...
                page.wait_for_timeout(1500)
                assert page.locator('a[href*="evil.example"]').count() == 0  # ...but no link
                assert page.locator('img[src*="evil.example"]').count() == 0  # and no image
                assert page.locator('[data-testid="stException"]').count() == 0
                page.screenshot(path=str(ARTIFACTS / f"hostile-{path.split('?')[0]}.png"), full_page=True)
        finally:
            browser.close()
    outside = [u for u in requests if not u.startswith((open_app.url, "data:", "blob:"))]
    assert requests and not outside, outside


def test_a_forged_widget_state_gets_no_traceback(open_app: Server) -> None:
    from streamlit.proto.WidgetStates_pb2 import WidgetState

    async def attack() -> list[Any]:
        socket = await StreamlitSocket.open(open_app.url)
        try:
            first = await socket.run()
            zone = first.widgets("selectbox")[0].id  # the sidebar's timezone box
            forged = await socket.run(widgets=[WidgetState(id=zone, int_value=10**9)])
            return forged.exceptions()
        finally:
            await socket.close()

    errors = asyncio.run(attack())
    assert errors, "the forged state raised nothing: the attack did not reach the widget"
    for error in errors:
        assert not error.stack_trace and not error.type
        assert "/" not in error.message and "Traceback" not in error.message  # no server path
    assert "cannot be interpreted as an integer" in open_app.log_text()  # the details: in the log


def test_cache_clearing_is_dropped_and_metrics_are_closed(open_app: Server) -> None:
    async def clear_then_run() -> list[str]:
        socket = await StreamlitSocket.open(open_app.url)
        try:
            await socket.run()
            await socket.clear_cache()
            return (await socket.run()).texts()  # the session still works
        finally:
            await socket.close()

    assert "Overview" in asyncio.run(clear_then_run())
    assert "dropped a clear_cache message from 127.0.0.1" in open_app.log_text()
    assert _get(f"{open_app.url}/_stcore/metrics")[0] == 404


def test_the_dashboard_process_holds_no_exchange_credential(open_app: Server) -> None:
    environ = Path(f"/proc/{open_app.process.pid}/environ").read_bytes().decode(errors="replace")
    variables = dict(line.partition("=")[::2] for line in environ.split("\0") if line)
    assert "MARGINWATCH_CONFIG" in variables  # what it needs
    for name in ("MW_DASH_BYBIT_SECRET", "MW_DASH_BYBIT_KEY", "MW_DASH_BINANCEUSDM_KEY", "MARGINWATCH_DEMO_0_KEY"):
        assert name not in variables, name
    assert "by-secret-in-env" not in environ and "demo-key-in-env" not in environ


# --- the gated app: guessing, the cookie, session ids ----------------------------------------


def test_parallel_guessing_is_slowed_and_logged_and_the_right_password_still_gets_in(gated_app: Server) -> None:
    login = f"{gated_app.url}/_mw/login"
    guesses = [f"guess-{uuid.uuid4().hex}" for _ in range(24)]
    with concurrent.futures.ThreadPoolExecutor(8) as pool:  # 8 clients at once, like the attack
        health = [pool.submit(_get, f"{gated_app.url}/_stcore/health") for _ in range(8)]
        answers = list(pool.map(lambda g: _post(login, {"password": g, "next": "/"}), guesses))
        assert [f.result()[0] for f in health] == [200] * 8  # the app keeps answering
    statuses = [status for status, _, _ in answers]
    assert set(statuses) <= {401, 429} and statuses.count(401) >= 1, statuses
    assert statuses.count(429) > 0  # one hash at a time: the others were refused, not queued
    assert all(int(h["retry-after"]) >= 1 for status, h, _ in answers if status == 429)

    # one client guessing on: after three wrong passwords the address must wait, doubling
    more = [f"more-{uuid.uuid4().hex}" for _ in range(10)]
    for guess in more:
        status, headers, body = _post(login, {"password": guess, "next": "/"})
        statuses.append(status)
        if "Too many failed attempts" in body:
            break
        if status == 429:  # the hash was busy: wait the second it asks for
            time.sleep(float(headers["retry-after"]))
    assert status == 429 and "Too many failed attempts" in body, statuses
    assert int(headers["retry-after"]) >= 1

    log = gated_app.log_text()
    stamp = r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+"
    failures = re.findall(stamp + r" WARNING marginwatch.login: login failed from 127.0.0.1", log, re.M)
    assert len(failures) == statuses.count(401)  # each checked guess is logged, with its time
    assert not any(guess in log for guess in guesses + more)  # never the guess
    assert re.search(stamp + r" WARNING marginwatch.login: login refused from 127.0.0.1: too many failures", log, re.M)

    deadline = time.monotonic() + 120  # the backoff ends; the rightful user gets in
    while True:
        status, headers, body = _post(login, {"password": PASSWORD, "next": "/account"})
        if status != 429 or time.monotonic() > deadline:
            break
        time.sleep(float(headers.get("retry-after", "1")))
    assert status == 303 and headers["location"] == "/account", body
    cookie = _login_cookie(headers)
    assert "login from 127.0.0.1" in gated_app.log_text()
    status, _, page = _get(f"{gated_app.url}/account", cookie)
    assert status == 200 and "<html" in page.lower()  # the app itself, not the login


def _cookie_and_session(server: Server) -> tuple[str, str]:
    deadline = time.monotonic() + 120
    while True:
        status, headers, _ = _post(f"{server.url}/_mw/login", {"password": PASSWORD, "next": "/"})
        if status != 429 or time.monotonic() > deadline:
            break
        time.sleep(float(headers.get("retry-after", "1")))
    cookie = _login_cookie(headers)

    async def session() -> str:
        socket = await StreamlitSocket.open(server.url, cookie=cookie)
        try:
            run = await socket.run()
            assert "Overview" in run.texts()  # logged in: the pages
            assert socket.session_id
            return socket.session_id
        finally:
            await socket.close()

    return cookie, asyncio.run(session())


def test_a_reused_session_id_without_the_cookie_gets_nothing(gated_app: Server) -> None:
    cookie, session_id = _cookie_and_session(gated_app)

    async def resume(with_cookie: str | None) -> Any:
        socket = await StreamlitSocket.open(gated_app.url, cookie=with_cookie, session_id=session_id)
        try:
            return (await socket.run()).texts()
        finally:
            await socket.close()

    with pytest.raises(InvalidStatus) as refused:
        asyncio.run(resume(None))  # the id alone, as a second client would send it
    assert refused.value.response.status_code == 403
    assert "Overview" in asyncio.run(resume(cookie))  # the rightful browser resumes its session
    status, headers, _ = _get(f"{gated_app.url}/account")
    assert status == 303 and headers["location"].startswith("/_mw/login")  # a page: the login
    assert _get(f"{gated_app.url}/_mw/logout", cookie)[0] == 303  # logged out...
    with pytest.raises(InvalidStatus):
        asyncio.run(resume(cookie))  # ...the same cookie, copied or kept, is dead
    assert _get(f"{gated_app.url}/account", cookie)[0] == 303


def test_a_login_ended_while_connected_ends_at_the_next_run(gated_app: Server) -> None:
    """The edge checks the cookie when a websocket connects; the page script checks it
    again on every run, so a logout (or an expiry) ends an open connection's access too."""
    cookie, _ = _cookie_and_session(gated_app)

    async def runs_around_a_logout() -> tuple[list[str], list[str]]:
        socket = await StreamlitSocket.open(gated_app.url, cookie=cookie)
        try:
            before = (await socket.run()).texts()
            assert _get(f"{gated_app.url}/_mw/logout", cookie)[0] == 303  # from another tab
            return before, (await socket.run()).texts()
        finally:
            await socket.close()

    before, after = asyncio.run(runs_around_a_logout())
    assert "Overview" in before
    assert "Overview" not in after and any("log in again" in t for t in after)


def test_the_server_warns_about_a_secrets_file_others_can_read(gated_app: Server) -> None:
    # the fixture wrote secrets.toml under the usual umask: 0644
    assert "secrets.toml holds secrets and can be read by anyone (mode 0644): chmod 600" in gated_app.log_text()
