"""The dashboard in Streamlit's AppTest on a seeded SQLite store: every page loads, the
overview is worst first, a stale account is shown as stale, the what-if slider moves the
health, a gated deployment shows an anonymous visitor only the login, and the risk
intelligence shows: liquidation chance, funding flag, the remedy priced against a stored
book, a liquidation on the chart, the correlated stress and an owner's rebalancing."""

from __future__ import annotations

import copy
import html
import json
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from alerts.silences import create_silence
from app.access.password import hash_password
from config.files import write_config
from config.settings import parse_config
from margin.funding import FundingRate
from margin.snapshot import parse_snapshot
from poller.rows import Polled, account_rows
from store import repo
from store.db import make_engine, session_factory, upgrade
from store.schema import AlertDelivery, AlertNotification, AlertState, AlertTransition

ROOT = Path(__file__).parent.parent
MAIN = str(ROOT / "app" / "main.py")
DEMO = json.loads((ROOT / "examples" / "demo-snapshot.json").read_text())
TIMEOUT = 30
# wallet -> cross health with the demo book: about 2,353 maintenance and -20,963 unrealized
ACCOUNTS = {  # name: (exchange, wallet, minutes since the last poll)
    "alpha": ("binanceusdm", 42_000.0, 0.2),  # healthy (worst pool: the isolated LTC, 3.96)
    "bravo": ("binanceusdm", 23_400.0, 0.2),  # critical, about 1.04
    "charlie": ("binanceusdm", 24_300.0, 0.2),  # warning, about 1.42
    "delta": ("bybit", 200_000.0, 45.0),  # the healthiest figures, but stale
}


OWNER = "fund-a"  # alpha (surplus) and bravo (deficit): one transfer
BTC, ETH, LTC = "BTC/USDT:USDT", "ETH/USDT:USDT", "LTC/USDT:USDT"
# steep BTC funding: alpha's cross pool (8.9) falls below 1.5 in 146 h on funding alone
RATES = {
    BTC: FundingRate(BTC, 0.002, 8.0, 0.003, 2.0),
    ETH: FundingRate(ETH, -0.0005, 8.0, None, 2.0),
    LTC: FundingRate(LTC, 0.0001, 8.0, None, 2.0),
}
# 2.4 BTC of bids: enough for bravo's plan to 1.5 (1.213 BTC), too thin for 3 (3.095 BTC)
BTC_BOOK = {"bids": [[91470.0, 0.6], [91440.0, 0.8], [91380.0, 1.0]], "asks": [[91490.0, 2.0]]}
LIQUIDATION = {
    "symbol": "SOL/USDT:USDT",
    "side": "long",
    "price": 142.5,
    "contracts": 80.0,
    "source": "fetch_my_liquidations",
    "detail": None,
}


def _market_stats(now: datetime) -> dict[str, dict]:
    stats: dict[str, dict] = {
        BTC: {"beta": 1.0, "volatility": 0.028, "order_book": json.dumps(BTC_BOOK), "order_book_at": now},
        ETH: {"beta": 1.25, "volatility": 0.035},
        LTC: {"beta": 1.6, "volatility": 0.045},
    }
    for symbol, rate in RATES.items():
        stats[symbol].update(
            funding_rate=rate.rate,
            predicted_funding_rate=rate.predicted_rate,
            funding_interval_hours=rate.interval_hours,
            hours_to_funding=rate.hours_to_next,
        )
    return stats


def _document(name: str, exchange: str, wallet: float) -> dict:
    doc = copy.deepcopy(DEMO)
    doc.update(account=name, exchange=exchange, wallet_balance=wallet)
    return doc


def seed(url: str, now: datetime) -> None:
    """Four polled accounts (one stale), one refused, alerts, a silence, key checks, market
    stats (betas, funding, a BTC book) and one liquidation of bravo an hour ago."""
    upgrade(url)
    sessions = session_factory(make_engine(url))
    infos = [repo.AccountInfo(n, ex, "USDT") for n, (ex, _, _) in ACCOUNTS.items()]
    ids = repo.ensure_accounts(sessions, [*infos, repo.AccountInfo("echo", "binanceusdm", "USDT")])
    for name, (exchange, wallet, minutes) in ACCOUNTS.items():
        doc = _document(name, exchange, wallet)
        for back in (90, 30, 0):  # a short history
            taken = now - timedelta(minutes=minutes + back)
            ((row, positions),) = account_rows([Polled(parse_snapshot(doc), taken, 1.5, funding=RATES)])
            repo.record_snapshot(sessions, ids[name], row, positions, json.dumps(doc))
        repo.record_key_check(sessions, ids[name], now, "read-only", False, False, "read-only key")
    repo.record_failure(
        sessions,
        ids["echo"],
        now,
        "permanent",
        "key can withdraw funds: refused",
        "PermissionDenied",
        pause_state="refused",
    )
    repo.record_key_check(sessions, ids["echo"], now, "refused", True, True, "can withdraw")
    with sessions.begin() as session:
        session.add(
            AlertState(
                account_id=ids["bravo"],
                subject="health",
                level=2,
                counts="[1, 1]",
                since=now - timedelta(minutes=20),
                last_notified=now,
                value=1.04,
            )
        )
        session.add(
            AlertTransition(
                account_id=ids["bravo"],
                subject="health",
                kind="fired",
                from_level=0,
                to_level=2,
                value=1.04,
                at=now - timedelta(minutes=20),
                muted=False,
            )
        )
    with sessions.begin() as session:  # bravo's alert: emailed, its webhook refused
        notification = AlertNotification(
            account_id=ids["bravo"],
            created_at=now - timedelta(minutes=20),
            level=2,
            subject_line="CRITICAL · binanceusdm/bravo · health 1.04",
            body_text="...",
            body_html="...",
            payload="{}",
            recipients="[]",
        )
        session.add(notification)
        session.flush()
        sent, failed = now - timedelta(minutes=19), "webhook ops: HTTP 404\n<b>**not found**</b>"
        for channel, status, error in (("email", "sent", None), ("webhook:ops", "failed", failed)):
            session.add(
                AlertDelivery(
                    notification_id=notification.id,
                    channel=channel,
                    status=status,
                    attempts=1,
                    next_attempt_at=sent,
                    sent_at=sent if status == "sent" else None,
                    last_error=error,
                )
            )
    create_silence(sessions, "charlie", now, 60, "topping up")
    repo.upsert_market_stats(sessions, "binanceusdm", now, _market_stats(now))
    repo.record_liquidation(
        sessions,
        ids["bravo"],
        {**LIQUIDATION, "occurred_at": now - timedelta(minutes=60), "detected_at": now - timedelta(minutes=59)},
    )


def config_file(path: Path, url: str) -> Path:
    accounts = [
        {
            "name": name,
            "exchange": exchange,
            "key_env": "MW_T_KEY",
            "secret_env": "MW_T_SECRET",
            **({"owner": OWNER} if name in ("alpha", "bravo") else {}),
        }
        for name, (exchange, _, _) in [*ACCOUNTS.items(), ("echo", ("binanceusdm", 0, 0))]
    ]
    return write_config(parse_config({"database_url": url, "poll_interval_seconds": 60, "accounts": accounts}), path)


@pytest.fixture(scope="module")
def store_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("dashboard")
    url = f"sqlite:///{folder / 'marginwatch.db'}"
    seed(url, datetime.now(UTC))
    return config_file(folder / "marginwatch.toml", url)


@pytest.fixture
def app(store_config: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[AppTest]:
    monkeypatch.setenv("MARGINWATCH_CONFIG", str(store_config))
    at = AppTest.from_file(MAIN, default_timeout=TIMEOUT)
    # AppTest reads the real secrets files unless given secrets: a developer's own
    # .streamlit/secrets.toml (with a login) must not decide these tests
    at.secrets["marginwatch_test"] = "isolated"
    yield at


def _shown(markdown: str) -> str:
    """Markdown source as it reads on screen: names are escaped (app.components.safe.md)."""
    return re.sub(r"\\(.)", r"\1", markdown)


def _no_exception(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


def _metric(at: AppTest, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def test_every_page_loads(app: AppTest) -> None:
    app.run()
    _no_exception(app)
    for page in (
        "views/account/page.py",
        "views/risk/page.py",
        "views/alerts/page.py",
        "views/keys/page.py",
        "views/overview/page.py",
    ):
        app.switch_page(page).run()
        _no_exception(app)
        assert app.title, page


def test_overview_is_worst_first_and_stale_is_stale(app: AppTest) -> None:
    app.run()
    _no_exception(app)
    rows = _overview_rows(app)
    # the risk level first: every polled book holds the demo's isolated LTC long 3.3 %
    # (0.7 σ) from liquidation, so all three are critical, by their chance (bravo 99 %,
    # charlie's cross pool, alpha's LTC 47 %); then the refused account, then the stale one
    assert list(rows) == ["bravo", "charlie", "alpha", "echo", "delta"]
    assert [r["Level"] for r in rows.values()] == ["critical", "critical", "critical", "not watched", "stale"]
    chances = [float(rows[n]["Liq. chance 24 h"].rstrip(" %")) for n in ("bravo", "charlie", "alpha")]
    assert chances == sorted(chances, reverse=True)
    assert rows["delta"]["Data age"].startswith("STALE")
    assert rows["echo"]["Data age"] == "REFUSED"
    assert rows["bravo"]["Alert / key"].startswith("CRITICAL")
    assert rows["bravo"]["Margin ratio"].endswith(" %") and rows["bravo"]["Equity / maint."].endswith("USDT")
    assert not re.search(r"\b(None|nan)\b", str(rows)), rows
    # the position grid: every polled account's positions, worst account first
    grid = _grid(app)
    heads = re.findall(r'<tr class="mw-acct">.*?>([^<>]+)</span>', grid)
    assert heads[:3] == ["binanceusdm/bravo", "binanceusdm/charlie", "binanceusdm/alpha"], heads
    assert "isolated · LTC long" in grid and not re.search(r"\b(None|nan)\b", grid)
    assert _metric(app, "Critical") == "3" and _metric(app, "Stale / not watched") == "2"


def test_alerts_page_shows_how_each_message_was_delivered(app: AppTest) -> None:
    app.run()
    app.switch_page("views/alerts/page.py").run()
    _no_exception(app)
    assert "Deliveries" in [h.value for h in app.subheader]
    assert _metric(app, "Sent") == "1" and _metric(app, "Failed") == "1" and _metric(app, "Pending") == "0"
    frame = next(d.value for d in app.dataframe if "channel" in d.value.columns)
    rows = frame.set_index("channel")
    assert rows.loc["email", "status"] == "sent" and rows.loc["email", "account"] == "binanceusdm/bravo"
    # the reason, on one line, shown as text (a table cell: no markdown, no HTML)
    assert rows.loc["webhook:ops", "error"] == "webhook ops: HTTP 404 <b>**not found**</b>"


def test_what_if_slider_changes_the_health(app: AppTest) -> None:
    app.session_state["mw_account"] = "alpha"
    app.run()
    app.switch_page("views/account/page.py").run()
    _no_exception(app)
    before = _metric(app, "What-if health")
    app.slider(key="whatif_shock").set_value(-5).run()
    _no_exception(app)
    after = _metric(app, "What-if health")
    assert before != after
    # a long book loses health when prices fall (alpha's isolated LTC long, 3.3 % away, is
    # past liquidation at -5 %: its equity is gone, and the page says so)
    assert after == "≤ 0 (liquidated)" or float(after) < float(before)
    app.slider(key="whatif_shock").set_value(-2.5).run()  # fine steps near liquidation
    _no_exception(app)
    table = next(d.value for d in app.dataframe if "Liquidation price after" in d.value.columns)
    assert table["Distance after"].str.contains("%").any()


def test_stale_account_page_says_stale(app: AppTest) -> None:
    app.session_state["mw_account"] = "delta"
    app.run()
    app.switch_page("views/account/page.py").run()
    _no_exception(app)
    assert any(e.value.startswith("STALE") for e in app.error)


def test_password_gate_shows_an_anonymous_visitor_only_the_login(app: AppTest, monkeypatch: pytest.MonkeyPatch) -> None:
    """The password is checked at /_mw/login (app.access.web, tested in a real server by
    tests/test_security_dashboard.py); here: the page script lets in only a session whose
    connection carries a valid login cookie, on every run."""
    from app.access import gate, tokens, web

    encoded = hash_password("correct horse", iterations=1000)
    secret = "a cookie secret of 32 characters"
    app.secrets["marginwatch_auth"] = {"password_hash": encoded, "cookie_secret": secret}
    cookie: list[str | None] = [None]
    monkeypatch.setattr(gate, "login_cookie", lambda: cookie[0])  # AppTest cannot send cookies
    app.run()  # started without the edge (app/server.py): locked, and says how to start it
    assert not _data(app) and "app/server.py" in app.error[0].value
    monkeypatch.setattr(web, "_installed", True)
    app.run()
    _no_exception(app)
    assert not _data(app) and not app.metric and app.title[0].value == "marginwatch"
    for page in ("views/account/page.py", "views/alerts/page.py"):  # any page: still only the login
        with pytest.raises(ValueError):  # the gated app registers no other page
            app.switch_page(page)
    key = tokens.signing_key(encoded, secret)
    cookie[0] = tokens.issue(key)[:-2] + "xx"  # forged: a wrong signature
    app.run()
    assert not _data(app)
    cookie[0] = tokens.issue(key, now=time.time() - 13 * 3600)  # expired (12 h by default)
    app.run()
    assert not _data(app)
    cookie[0] = tokens.issue(key)
    app.run()
    _no_exception(app)
    assert _data(app) and app.title[0].value == "Overview"  # in
    next(b for b in app.button if b.label == "Log out").click().run()
    assert not _data(app)  # logged out: the same cookie is revoked
    app.run()
    assert not _data(app) and app.title[0].value == "marginwatch"


def test_oidc_login_shows_an_anonymous_visitor_only_the_login(app: AppTest) -> None:
    app.secrets["auth"] = {
        "redirect_uri": "http://localhost:8501/oauth2callback",
        "cookie_secret": "x",
        "client_id": "id",
        "client_secret": "secret",
        "server_metadata_url": "https://id.example/.well-known/openid-configuration",
    }
    app.user = {"is_logged_in": False}
    app.run()
    _no_exception(app)
    assert not _data(app) and not app.metric and app.title[0].value == "marginwatch"
    app.user = {"is_logged_in": True, "name": "Ada", "email": "ada@example.com"}
    app.run()
    _no_exception(app)
    assert _data(app) and app.title[0].value == "Overview"


def _frame(at: AppTest, column: str) -> pd.DataFrame:
    """The first table on the page that has `column`."""
    return next(d.value for d in at.dataframe if column in d.value.columns)


def _data(at: AppTest) -> bool:
    """Whether the page shows any account data (a table of any kind)."""
    return bool(at.dataframe) or any("<table" in h.proto.body for h in at.get("html"))


def _overview_rows(at: AppTest) -> dict[str, dict[str, str]]:
    """The overview's account table: each account's cells by header, as text."""
    text = next(h.proto.body for h in at.get("html") if "mw-accounts" in h.proto.body)
    heads = [html.unescape(h) for h in re.findall(r"<th[^>]*>(.*?)</th>", text)]
    rows = {}
    for name, cells in re.findall(r'<tr data-account="([^"]*)"[^>]*>(.*?)</tr>', text):
        values = [
            html.unescape(re.sub(r"<br>", " ", re.sub(r"<(?!br)[^>]+>", "", c)))
            for c in re.findall(r"<td[^>]*>(.*?)</td>", cells)
        ]
        rows[html.unescape(name)] = dict(zip(heads, values, strict=True))
    return rows


def _grid(at: AppTest) -> str:
    """The position grid's HTML."""
    return next(h.proto.body for h in at.get("html") if "mw-position-grid" in h.proto.body)


def _account(app: AppTest, name: str) -> AppTest:
    app.session_state["mw_account"] = name
    app.run()
    app.switch_page("views/account/page.py").run()
    _no_exception(app)
    return app


def test_overview_shows_the_liquidation_chance_and_the_funding_flag(app: AppTest) -> None:
    app.run()
    _no_exception(app)
    rows = _overview_rows(app)
    assert rows["bravo"]["Liq. chance 24 h"] == "99.2 %"
    assert rows["alpha"]["Funding"] == "⚠ < 1.5 in 146 h (6.1 d)"
    assert rows["bravo"]["Funding"] == "—"  # below 1.5 already: funding is not what crosses it
    # an action card per account in danger, the worst first: an amount with its currency
    texts = [m.value.replace("\\", "").replace("\u2060", "") for m in app.markdown]
    cards = [t for t in texts if "what to do now" in t]
    assert len(cards) == 3 and "bravo" in cards[0]
    assert any(re.search(r"(Add|reduce) .*[\d,.]+ USDT", t) for t in texts), texts


def test_account_page_shows_touch_probability_priced_remedy_and_liquidation(app: AppTest) -> None:
    _account(app, "bravo")
    assert _metric(app, "Liquidation chance 24 h (highest)") == "99.2 %"
    grid = _grid(app)  # the position grid: venue-native symbol, size in contracts and coins
    assert "BTCUSDT" in grid and " ct" in grid and "Margin ratio" in grid
    app.toggle(key="mw_grid_more_account").set_value(True).run()  # the columns a trader needs less
    assert "99.2 %" in _grid(app)
    events = _frame(app, "detected_at")
    assert list(events["symbol"]) == ["SOL/USDT:USDT"] and events["price"].iloc[0] == 142.5
    history = json.loads(next(c.proto.spec for c in app.get("plotly_chart") if "health (min)" in c.proto.spec))
    marks = next(t for t in history["data"] if t["name"] == "liquidation")  # hover text on the chart
    assert marks["text"] == ["LIQUIDATED SOL/USDT:USDT long at 142.500 (fetch_my_liquidations)"]
    assert len([s for s in history["layout"]["shapes"] if s["line"].get("dash") == "dot"]) == 1  # its line
    # the plan (1.213 BTC) filled against the stored bids: two levels, VWAP below mark
    fills = _frame(app, "vwap")
    assert fills["book"].tolist() == ["fills"] and fills["levels"].iloc[0] == 2
    assert fills["vwap"].iloc[0] == pytest.approx((0.6 * 91470 + 0.613 * 91440) / 1.213)
    assert _metric(app, "Health at mark") == "1.50" and _metric(app, "Health reached at book prices") == "1.48"
    app.number_input(key="mw_target_bravo").set_value(3.0).run()  # 3.095 BTC: more than the 2.4 bid
    _no_exception(app)
    assert _frame(app, "vwap")["book"].iloc[0].startswith("too large for the book: 0.695 unfilled")
    assert any("too large for the book" in e.value for e in app.error)


def test_account_page_flags_funding_that_crosses_the_warning_level(app: AppTest) -> None:
    _account(app, "alpha")
    assert any(
        e.value == "Funding alone takes health below 1.5 in 146 h (6.1 d) (prices unchanged)." for e in app.error
    )
    assert _metric(app, "Health after 7 d of funding") == "0.62"
    rates = _frame(app, "funding_rate").set_index("symbol")
    assert rates.loc[BTC, "funding_rate"] == 0.002 and rates.loc[BTC, "predicted_funding_rate"] == 0.003
    # +0.2 %: the BTC long pays; −0.05 %: the ETH short pays too
    # shown with its currency (the CSV keeps the number)
    assert rates.loc[BTC, "per_day"] == f"{-0.002 * 3.2 * 91480.5 * 3:+,.2f} USDT"
    assert rates.loc[ETH, "per_day"] == f"{-0.0005 * 41.5 * 3242.7 * 3:+,.2f} USDT"


def test_risk_page_shows_the_correlated_stress_and_the_owner_rebalancing(app: AppTest) -> None:
    app.run()
    app.switch_page("views/risk/page.py").run()
    _no_exception(app)
    stress = _frame(app, "liquidates_at")
    assert {"now", "BTC -5 %", "BTC -40 %"} <= set(stress.columns)
    assert set(stress["name"]) == {"alpha", "bravo", "charlie", "delta"}
    assert stress["name"].iloc[0] == "bravo" and stress["order"].iloc[0] == 1  # closest to liquidation
    totals = _frame(app, "to survive (USDT)").set_index("shock")
    assert totals.loc["now", "to survive (USDT)"] == 0 and totals.loc["BTC -40 %", "liquidated"] == 4
    assert _frame(app, "beta").set_index("symbol").loc[ETH, "beta"] == 1.25
    transfers = _frame(app, "amount")
    assert transfers[["owner", "from", "to"]].values.tolist() == [[f"{OWNER} (USDT)", "alpha", "bravo"]]
    assert transfers["amount"].iloc[0] == pytest.approx(1096.79, abs=0.01)  # bravo's top-up to 1.5
    assert _frame(app, "method")["method"].tolist() == ["exact"]
    assert any(_shown(m.value).startswith("**Liquidate first:** 1. binanceusdm/bravo") for m in app.markdown)
