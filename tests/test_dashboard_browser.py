"""The dashboard in a real browser on the demo: `marginwatch demo` (exchange simulator +
poller) writes the store, cli.dashboard starts Streamlit on it, headless Chromium (Debian's
package, driven by Playwright) checks the overview lists the demo accounts, opens one,
moves the shock slider, and opens the Risk page. Screenshots go to tests/artifacts/ (git-ignored)."""

from __future__ import annotations

import re
import sqlite3
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from app.access.password import hash_password
from app.components.levels import COLORS, CRITICAL
from cli.dashboard import start_dashboard, wait_until_up
from cli.demo import demo_scenario
from tests.helpers import free_port, require_system_part

if TYPE_CHECKING:
    from playwright.sync_api import Locator, Page

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
ARTIFACTS = Path(__file__).parent / "artifacts"


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def _wait_for_snapshots(database: Path, accounts: int, timeout: float, demo: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert demo.poll() is None, "marginwatch demo exited"
        if database.exists():
            try:
                with sqlite3.connect(database) as conn:
                    done = conn.execute("SELECT count(*) FROM accounts WHERE latest_snapshot_id IS NOT NULL")
                    if done.fetchone()[0] >= accounts:
                        return
            except sqlite3.OperationalError:  # the schema is being created
                pass
        time.sleep(0.3)
    raise TimeoutError(f"the demo stored no snapshot of {accounts} accounts in {timeout:g} s")


@pytest.fixture(scope="module")
def dashboard(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`marginwatch demo` polling every 3 s in a temporary folder, with its dashboard; yields
    its URL. One demo for the module: every test here only reads it."""
    tmp_path = tmp_path_factory.mktemp("demo")
    require_system_part(None if CHROMIUM.exists() else f"{CHROMIUM} not found", "Chromium", "apt-get install chromium")
    ARTIFACTS.mkdir(exist_ok=True)
    cli = Path(sys.executable).with_name("marginwatch")
    command = [str(cli)] if cli.exists() else [sys.executable, "-c", "from cli.main import app; app()"]
    port = free_port()
    with (ARTIFACTS / "demo.log").open("wb") as demo_log:
        # the real `marginwatch demo`: simulator, poller and dashboard; run in tmp_path so a
        # developer's own .streamlit/secrets.toml (a login) stays out of the test
        demo = subprocess.Popen(
            [*command, "demo", "--interval", "3", "--dashboard-port", str(port)],
            cwd=tmp_path,
            stdout=demo_log,
            stderr=subprocess.STDOUT,
        )
        try:
            database = tmp_path / ".marginwatch-demo" / "marginwatch.db"
            polled = [a for a in demo_scenario()["accounts"] if not a.get("permissions", {}).get("withdraw")]
            _wait_for_snapshots(database, len(polled), 45, demo)  # a refused key never gets one
            url = f"http://127.0.0.1:{port}"
            wait_until_up(url, 45)
            demo_dir = tmp_path / ".marginwatch-demo"
            # the demo's folder is private, and so is all it writes (config, database, log)
            assert stat.S_IMODE(demo_dir.stat().st_mode) == 0o700
            for name in ("marginwatch.toml", "marginwatch.db", "dashboard.log"):
                assert stat.S_IMODE((demo_dir / name).stat().st_mode) == 0o600, name
            _check_the_cli_on_the_running_demo(tmp_path, command)
            yield url
        finally:
            _stop(demo)


def _check_the_cli_on_the_running_demo(folder: Path, command: list[str]) -> None:
    """Issue 11's demo proof, from a second "terminal" in the demo's folder: `status` finds
    the running demo's config by itself and lists the account near liquidation first, as
    critical; `alerts list` shows its alert."""
    import json

    deadline = time.monotonic() + 60
    while True:
        status = subprocess.run([*command, "status", "--format", "json"], cwd=folder, capture_output=True, text=True)
        assert status.returncode == 0, status.stderr
        accounts = json.loads(status.stdout)
        first = accounts[0]
        if first["account"] == "okx-near-liquidation" and first["level"] == "critical":
            break
        assert time.monotonic() < deadline, accounts
        time.sleep(1)
    assert first["nearest"]["liquidation_side"] == "down" and 0 < first["nearest"]["distance"] < 0.04
    levels = [a["level"] for a in accounts]
    assert levels.index("critical") < levels.index("not watched")  # the refused key comes after
    listed = subprocess.run([*command, "alerts", "list"], cwd=folder, capture_output=True, text=True)
    assert any(line.startswith("CRITICAL") and "okx-near-liquidation" in line for line in listed.stdout.splitlines()), (
        listed.stdout
    )


def _metric(page: Page, label: str) -> Locator:
    return (
        page.locator('[data-testid="stMetric"]').filter(has_text=label).first.locator('[data-testid="stMetricValue"]')
    )


def test_overview_account_what_if_and_risk_in_chromium(dashboard: str) -> None:
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=30_000)  # a busy machine renders slowly: wait, do not time
    accounts = demo_scenario()["accounts"]
    names = [a["name"] for a in accounts]
    watched = next(a["name"] for a in accounts if a["positions"] and not a.get("permissions", {}).get("withdraw"))
    pages: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1500, "height": 1400})
            page.set_default_timeout(30_000)
            expect.set_options(timeout=30_000)  # a loaded 2-core machine: a first render can take seconds
            page.goto(dashboard)
            expect(page.get_by_role("heading", name="Overview")).to_be_visible()
            accounts_table = page.locator("table.mw-accounts")
            for name in names:  # the accounts table (HTML): every demo account
                expect(accounts_table.get_by_text(name, exact=False).first).to_be_visible()
            # the first row, worst first, is the critical account, and it is coloured as critical
            # (the chart follows the table's order)
            plot = page.locator(".js-plotly-plot").first
            expect(plot).to_be_visible()
            bars = plot.evaluate("p => ({y: p.data[0].y, colors: p.data[0].marker.color})")
            assert bars["y"][0] == "okx/okx-near-liquidation", bars["y"]
            assert bars["colors"][0] == COLORS[CRITICAL]
            expect(accounts_table.get_by_text("REFUSED").first).to_be_visible()
            page.screenshot(path=str(ARTIFACTS / "overview.png"), full_page=True)

            page.get_by_role("link", name="Account").first.click()
            expect(page.get_by_role("heading", name="Account")).to_be_visible()
            page.goto(f"{dashboard}/account?account={watched}")  # a link to one account
            expect(page.get_by_text("What-if health")).to_be_visible()
            before = _metric(page, "What-if health").inner_text()
            slider = page.get_by_role("slider").first
            slider.focus()
            for _ in range(10):  # -10 %: every price down at once
                slider.press("ArrowLeft")
            expect(_metric(page, "What-if health")).not_to_have_text(before)
            assert page.locator('[data-testid="stException"]').count() == 0
            # Streamlit scrolls inside its own container: a tall window shows the whole page
            page.set_viewport_size({"width": 1500, "height": 3400})
            page.wait_for_timeout(1500)
            page.screenshot(path=str(ARTIFACTS / "account-what-if.png"))

            # a coin-margined account's page: its money in BTC, to the coin's decimals (issue 14)
            page.set_viewport_size({"width": 1500, "height": 1400})
            page.goto(f"{dashboard}/account?account=binance-coinm-miner")
            expect(page.get_by_text("Equity (BTC)", exact=True).first).to_be_visible()
            expect(page.get_by_text(re.compile(r"^0\.\d{6}$")).first).to_be_visible()
            assert page.locator('[data-testid="stException"]').count() == 0
            page.screenshot(path=str(ARTIFACTS / "account-coinm.png"), full_page=True)

            # the Risk page: every demo account under a correlated BTC crash
            page.get_by_role("link", name="Risk").first.click()
            expect(page.get_by_role("heading", name="Risk")).to_be_visible()
            expect(page.get_by_text("Correlated stress: BTC moves both ways")).to_be_visible()
            expect(page.get_by_text("Liquidate first:")).to_be_visible()  # the demo's near-liquidation account
            expect(page.get_by_role("button", name="CSV: correlated-stress")).to_be_visible()
            expect(page.get_by_text("Collateral rebalancing per owner")).to_be_visible()
            assert page.locator('[data-testid="stException"]').count() == 0
            page.wait_for_timeout(1000)  # the tables' canvases draw after the text
            page.screenshot(path=str(ARTIFACTS / "risk.png"), full_page=True)
            pages.append(page.content())

            # no credential reaches a rendered page: every page's HTML, the alerts and keys ones too
            for path in ("", "account", "alerts", "keys", "risk"):
                page.goto(f"{dashboard}/{path}")
                page.wait_for_timeout(1500)
                pages.append(page.content())
            # (a Hyperliquid account has none: its wallet address is public, like an account id)
            secrets = [v for a in accounts for v in (a.get("api_key"), a.get("secret"), a.get("passphrase")) if v]
            leaked = [value for value in secrets for html in pages if value in html]
            assert not leaked, f"credentials in the dashboard's HTML: {leaked}"
        finally:
            browser.close()


def test_first_request_to_a_page_of_a_gated_app_gets_the_login(tmp_path: Path) -> None:
    """Right after a start, a deep link (/account) must meet the login too: Streamlit runs
    a pages/ folder's scripts without the entry point until st.navigation has run once."""
    require_system_part(None if CHROMIUM.exists() else f"{CHROMIUM} not found", "Chromium", "apt-get install chromium")
    from playwright.sync_api import expect, sync_playwright

    (tmp_path / ".streamlit").mkdir()
    (tmp_path / ".streamlit" / "secrets.toml").write_text(
        f'[marginwatch_auth]\npassword_hash = "{hash_password("s3cret", iterations=1000)}"\n'
    )
    config = tmp_path / "marginwatch.toml"
    config.write_text(f'database_url = "sqlite:///{tmp_path / "none.db"}"\n')
    port = free_port()
    ARTIFACTS.mkdir(exist_ok=True)
    with (ARTIFACTS / "dashboard-gated.log").open("wb") as log:
        app = start_dashboard(config, port, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT)
        try:
            url = f"http://127.0.0.1:{port}"
            wait_until_up(url, 45, app)
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
                try:
                    page = browser.new_page(viewport={"width": 1200, "height": 800})
                    page.set_default_timeout(30_000)
                    expect.set_options(timeout=30_000)
                    page.goto(f"{url}/account?account=x")  # the first request the server sees
                    expect(page.get_by_label("Password").first).to_be_visible()
                    expect(page.get_by_role("heading", name="Account")).to_have_count(0)
                    expect(page.get_by_text("database")).to_have_count(0)  # no page code ran
                    page.screenshot(path=str(ARTIFACTS / "gated-login.png"))
                    page.get_by_label("Password").first.fill("s3cret")
                    page.get_by_role("button", name="Log in").click()
                    # in, on the deep-linked page (which says this store has no database)
                    expect(page.get_by_text("No database at").first).to_be_visible()
                    expect(page.get_by_role("link", name="Alerts")).to_be_visible()
                finally:
                    browser.close()
        finally:
            _stop(app)


SNAKE = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)+$")  # a raw column name such as last_error
ABSENT = re.compile(r"\b(None|nan|NaN)\b")
MONEY = re.compile(r"\d[\d,]*(\.\d+)? (USDT|USDC)")
PAGES = [
    "",
    "account?account=okx-near-liquidation",
    "account?account=hyperliquid-vault",
    "account?account=binance-withdraw-key",  # refused: no snapshot, no position grid
    "risk",
    "alerts",
    "keys",
]


def _settled(page: Page) -> None:
    """The page script ran to its end: the footer (drawn after the page) is there, and no
    run is in progress."""
    from playwright.sync_api import expect

    expect(page.get_by_text("No login is configured").first).to_be_attached()
    expect(page.locator('[data-testid="stStatusWidget"]')).to_have_count(0)


def _check_text(page: Page, where: str) -> None:
    assert page.locator('[data-testid="stException"]').count() == 0, where
    text = page.locator('[data-testid="stMain"]').inner_text()
    found = ABSENT.search(text)
    assert found is None, f"{where}: {text[max(0, found.start() - 80) : found.end() + 20]!r}"
    for frame in page.locator('[data-testid="stDataFrame"]').all():  # canvas tables: their a11y cells
        heads = frame.locator('[role="columnheader"]').all_inner_texts()
        assert not [h for h in heads if SNAKE.match(h.strip())], f"{where}: {heads}"
        cells = frame.locator('[role="gridcell"]').all_inner_texts()
        assert not [c for c in cells if ABSENT.search(c)], f"{where}: {cells}"
    heads = page.locator("table.mw-grid th, table.mw-accounts th").all_inner_texts()
    assert not [h for h in heads if SNAKE.match(h.strip())], f"{where}: {heads}"


def _grid_fits(page: Page, where: str) -> None:
    """Every column of the position grid (and of the accounts table) within the window,
    the table not scrolled sideways. Measured in one script run: the Overview redraws its
    fragment every 2 s (marks streamed), and a table found in one call may be replaced
    before the next."""
    width = page.viewport_size["width"] if page.viewport_size else 0
    tables = page.evaluate(
        """() => Array.from(document.querySelectorAll('table.mw-grid, table.mw-accounts')).map(t => ({
            rights: Array.from(t.querySelectorAll('th')).map(h => h.getBoundingClientRect().right),
            scroll: [t.parentElement.scrollWidth, t.parentElement.clientWidth],
        }))"""
    )
    assert tables, f"{where}: no table"
    for table in tables:
        rights, scroll = table["rights"], table["scroll"]
        assert rights and max(rights) <= width, f"{where}: columns end at {max(rights)} px of {width}"
        assert scroll[0] <= scroll[1] + 1, f"{where}: scrolls sideways {scroll}"


def test_every_page_at_desktop_and_phone_sizes(dashboard: str) -> None:
    """Issue 17's proof: every page at 1440x900 and 390x844 without an exception, a "None",
    a "nan" or a raw column name; the position grid whole at 1440 px; the critical demo
    account's action card gives an amount with its currency; on the phone the accounts
    come before the tiles."""
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=30_000)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            for width, height in ((1440, 900), (390, 844)):
                page = browser.new_page(viewport={"width": width, "height": height})
                page.set_default_timeout(30_000)
                for path in PAGES:
                    where = f"/{path} at {width}x{height}"
                    page.goto(f"{dashboard}/{path}")
                    _settled(page)
                    _check_text(page, where)
                    if width == 1440 and (path == "" or path.startswith("account")) and "withdraw" not in path:
                        expect(page.locator("table.mw-grid").first).to_be_attached()
                        _grid_fits(page, where)
                    page.screenshot(path=str(ARTIFACTS / f"walk-{width}-{path.replace('?', '-') or 'overview'}.png"))
                page.goto(dashboard)
                _settled(page)
                if width == 1440:  # the critical account's card: first, with an amount and its currency
                    card = page.locator('[class*="st-key-mw_action_overview_0"]')
                    expect(card).to_contain_text("okx-near-liquidation")
                    expect(card).to_contain_text("CRITICAL")
                    assert MONEY.search(card.inner_text()), card.inner_text()
                else:  # the phone: accounts (with the action) before the tiles
                    cards = page.locator('[data-testid="mw-phone-cards"]')
                    expect(cards).to_be_visible()
                    first = cards.locator(".mw-card").first
                    expect(first).to_contain_text("okx-near-liquidation")
                    assert MONEY.search(first.inner_text()), first.inner_text()
                    tile = page.locator('[data-testid="stMetric"]').first
                    assert cards.bounding_box()["y"] < tile.bounding_box()["y"]  # type: ignore[index]
                page.close()
        finally:
            browser.close()
