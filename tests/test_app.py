"""The dashboard in Streamlit's AppTest on a seeded SQLite store: every page loads, the
overview is worst first, a stale account is shown as stale, the what-if slider moves the
health, and a gated deployment shows an anonymous visitor only the login."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from alerts.silences import create_silence
from app.auth import hash_password
from app.launch import write_config
from margin.snapshot import parse_snapshot
from monitor.config import parse_config
from monitor.figures import Polled, account_rows
from store import repo
from store.db import make_engine, session_factory, upgrade
from store.schema import AlertState, AlertTransition

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


def _document(name: str, exchange: str, wallet: float) -> dict:
    doc = copy.deepcopy(DEMO)
    doc.update(account=name, exchange=exchange, wallet_balance=wallet)
    return doc


def seed(url: str, now: datetime) -> None:
    """Four polled accounts (one stale), one refused, alerts, a silence and key checks."""
    upgrade(url)
    sessions = session_factory(make_engine(url))
    infos = [repo.AccountInfo(n, ex, "USDT") for n, (ex, _, _) in ACCOUNTS.items()]
    ids = repo.ensure_accounts(sessions, [*infos, repo.AccountInfo("echo", "binanceusdm", "USDT")])
    for name, (exchange, wallet, minutes) in ACCOUNTS.items():
        doc = _document(name, exchange, wallet)
        for back in (90, 30, 0):  # a short history
            taken = now - timedelta(minutes=minutes + back)
            (row, positions), = account_rows([Polled(parse_snapshot(doc), taken, 1.5)])
            repo.record_snapshot(sessions, ids[name], row, positions, json.dumps(doc))
        repo.record_key_check(sessions, ids[name], now, "read-only", False, False, "read-only key")
    repo.record_failure(sessions, ids["echo"], now, "permanent", "key can withdraw funds: refused",
                        "PermissionDenied", pause_state="refused")
    repo.record_key_check(sessions, ids["echo"], now, "refused", True, True, "can withdraw")
    with sessions.begin() as session:
        session.add(AlertState(account_id=ids["bravo"], subject="health", level=2, counts="[1, 1]",
                               since=now - timedelta(minutes=20), last_notified=now, value=1.04))
        session.add(AlertTransition(account_id=ids["bravo"], subject="health", kind="fired", from_level=0,
                                    to_level=2, value=1.04, at=now - timedelta(minutes=20), muted=False))
    create_silence(sessions, "charlie", now, 60, "topping up")


def config_file(path: Path, url: str) -> Path:
    accounts = [{"name": name, "exchange": exchange, "key_env": "MW_T_KEY", "secret_env": "MW_T_SECRET"}
                for name, (exchange, _, _) in [*ACCOUNTS.items(), ("echo", ("binanceusdm", 0, 0))]]
    return write_config(parse_config({"database_url": url, "poll_interval_seconds": 60,
                                      "accounts": accounts}), path)


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


def _no_exception(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


def _metric(at: AppTest, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def test_every_page_loads(app: AppTest) -> None:
    app.run()
    _no_exception(app)
    for page in ("views/account.py", "views/alerts.py", "views/accounts_keys.py", "views/overview.py"):
        app.switch_page(page).run()
        _no_exception(app)
        assert app.title, page


def test_overview_is_worst_first_and_stale_is_stale(app: AppTest) -> None:
    app.run()
    _no_exception(app)
    frame = app.dataframe[0].value
    # unwatched first (refused, stale), then the lowest health
    assert list(frame["name"]) == ["delta", "echo", "bravo", "charlie", "alpha"]
    delta = frame.set_index("name").loc["delta"]
    assert delta["level"] == "stale" and delta["data"].startswith("STALE")
    assert frame.set_index("name").loc["echo", "data"] == "REFUSED"
    assert frame.set_index("name").loc["bravo", "alert"] == "CRITICAL"
    assert _metric(app, "Critical") == "1" and _metric(app, "Stale / not watched") == "2"


def test_what_if_slider_changes_the_health(app: AppTest) -> None:
    app.session_state["mw_account"] = "alpha"
    app.run()
    app.switch_page("views/account.py").run()
    _no_exception(app)
    before = _metric(app, "What-if health")
    app.slider(key="whatif_shock").set_value(-5).run()
    _no_exception(app)
    after = _metric(app, "What-if health")
    assert before != after
    assert float(after) < float(before)  # a long book loses health when prices fall


def test_stale_account_page_says_stale(app: AppTest) -> None:
    app.session_state["mw_account"] = "delta"
    app.run()
    app.switch_page("views/account.py").run()
    _no_exception(app)
    assert any(e.value.startswith("STALE") for e in app.error)


def test_password_gate_shows_an_anonymous_visitor_only_the_login(app: AppTest) -> None:
    app.secrets["marginwatch_auth"] = {"password_hash": hash_password("correct horse", iterations=1000)}
    app.run()
    _no_exception(app)
    assert not app.dataframe and not app.metric
    assert [b.label for b in app.button] == ["Log in"] and len(app.text_input) == 1
    for page in ("views/account.py", "views/alerts.py"):  # any page: still only the login
        with pytest.raises(ValueError):  # the gated app registers no other page
            app.switch_page(page)
    app.text_input(key="mw_password").input("wrong")
    app.button[0].click().run()
    assert not app.dataframe and app.error[0].value == "Wrong password."
    app.text_input(key="mw_password").input("correct horse")
    app.button[0].click().run()
    _no_exception(app)
    assert app.dataframe and app.title[0].value == "Overview"  # in


def test_oidc_login_shows_an_anonymous_visitor_only_the_login(app: AppTest) -> None:
    app.secrets["auth"] = {"redirect_uri": "http://localhost:8501/oauth2callback", "cookie_secret": "x",
                           "client_id": "id", "client_secret": "secret",
                           "server_metadata_url": "https://id.example/.well-known/openid-configuration"}
    app.user = {"is_logged_in": False}
    app.run()
    _no_exception(app)
    assert not app.dataframe and not app.metric and app.title[0].value == "marginwatch"
    app.user = {"is_logged_in": True, "name": "Ada", "email": "ada@example.com"}
    app.run()
    _no_exception(app)
    assert app.dataframe and app.title[0].value == "Overview"
