"""The dashboard's streaming parts (issue 19) in AppTest on a seeded store: the Account
page shows the alert prices the stream watches (as stored by the poller), each account's
data age from the stream beside the poll's, a stale mark stream as a warning, and an
estimate between polls as an estimate."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from streamlit.testing.v1 import AppTest

from app.components import fmt
from margin.snapshot import parse_snapshot
from poller.rows import Polled, account_rows
from store import repo
from store.db import make_engine, session_factory, upgrade
from store.schema import PositionSnapshot
from store.stream_states import replace_states
from tests.test_app import MAIN, TIMEOUT, _document, config_file

NAMES = {"alpha": 42_000.0, "bravo": 23_400.0}  # wallets: healthy, and critical (test_app's)


def _state(name: str, account_id: int, now: datetime, *, stale: bool, mark_age: float) -> dict:
    return {
        "name": f"marks:{name}",
        "kind": "marks",
        "account_id": account_id,
        "connected": not stale,
        "stale": stale,
        "last_message_at": now - timedelta(seconds=mark_age),
        "connected_at": now - timedelta(minutes=5),
        "reconnects": 0,
        "messages": 100,
        "dropped": 0,
        "last_error": None,
    }


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    folder = tmp_path_factory.mktemp("streaming")
    url = f"sqlite:///{folder / 'marginwatch.db'}"
    upgrade(url)
    sessions = session_factory(make_engine(url))
    now = datetime.now(UTC)
    ids = repo.ensure_accounts(sessions, [repo.AccountInfo(n, "binanceusdm", "USDT") for n in NAMES])
    for name, wallet in NAMES.items():
        doc = _document(name, "binanceusdm", wallet)
        polled = Polled(parse_snapshot(doc), now - timedelta(seconds=20), 1.5)
        ((row, positions),) = account_rows([polled])
        repo.record_snapshot(sessions, ids[name], row, positions, json.dumps(doc))
    # bravo: an estimate from a streamed mark after its poll
    doc = _document("bravo", "binanceusdm", NAMES["bravo"])
    estimate = Polled(
        parse_snapshot(doc),
        now - timedelta(seconds=2),
        1.5,
        source="mark_stream",
        positions_as_of=now - timedelta(seconds=20),
    )
    ((row, positions),) = account_rows([estimate])
    repo.record_estimates(sessions, [(ids["bravo"], row, positions, json.dumps(doc))])
    replace_states(
        sessions,
        [
            _state("alpha", ids["alpha"], now, stale=True, mark_age=45.0),
            _state("bravo", ids["bravo"], now, stale=False, mark_age=1.0),
        ],
        now,
    )
    return config_file(folder / "marginwatch.toml", url), url


@pytest.fixture
def app(store: tuple[Path, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[AppTest]:
    monkeypatch.setenv("MARGINWATCH_CONFIG", str(store[0]))
    at = AppTest.from_file(MAIN, default_timeout=TIMEOUT)
    at.secrets["marginwatch_test"] = "isolated"
    yield at


def _account(app: AppTest, name: str) -> AppTest:
    app.session_state["mw_account"] = name
    app.run()
    app.switch_page("views/account/page.py").run()
    assert not app.exception, [e.value for e in app.exception]
    return app


def _alert_prices(app: AppTest) -> str:
    return next(h.proto.body for h in app.get("html") if "Critical at" in h.proto.body)


def test_the_account_page_shows_the_watched_alert_prices(app: AppTest, store: tuple[Path, str]) -> None:
    _account(app, "alpha")
    table = _alert_prices(app)
    sessions = session_factory(make_engine(store[1]))
    with sessions() as session:
        rows = session.scalars(select(PositionSnapshot).order_by(PositionSnapshot.id)).all()
        first = next(r for r in rows if r.symbol == "BTC/USDT:USDT")
        expected = f"{fmt.price(first.critical_price_down)} / {fmt.price(first.critical_price_up)}"
    assert first.critical_price_down is not None or first.critical_price_up is not None
    assert expected in table
    # a stale mark stream is said, never taken for "no change"
    assert any("Mark stream stale" in w.value for w in app.warning)


def test_an_estimate_and_a_live_stream_are_said_as_such(app: AppTest) -> None:
    _account(app, "bravo")
    assert any("estimate from streamed mark prices" in i.value for i in app.info)
    assert any(re.fullmatch(r"Mark prices streamed: the newest \d+ s ago\.", c.value) for c in app.caption)
    assert not any("Mark stream" in w.value for w in app.warning)
