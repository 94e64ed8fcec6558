"""The daily digest: "all clear: 1 account watched, worst 4.4 % away, 0 alerts", queued once
a day at its time by whichever poller gets there, delivered through the outbox (a real
poller sends it in tests/test_watchdog.py, beside its Uptime Kuma pushes)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from alerts.digest import AccountLine, DigestFigures, compose_digest, due, send_digest_if_due
from config.settings import parse_config
from simulator import ExchangeSimulator
from store import repo
from store.db import make_engine, session_factory, upgrade
from store.schema import AlertDigest, AlertNotification
from tests.alert_scenario import scenario
from tests.helpers import running_simulator


@pytest.fixture
def sim() -> Iterator[ExchangeSimulator]:
    with running_simulator(scenario()) as simulator:
        yield simulator


def test_the_digest_says_all_clear_or_what_needs_attention() -> None:
    calm = DigestFigures(
        "2026-11-27",
        [
            AccountLine("binanceusdm/a", True, 2.4, 0.081, 3.2),
            AccountLine("okx/b", True, 3.1, 0.12, 4.0),
            AccountLine("bybit/c", True, None, None, None),
            AccountLine("bybit/d", True, 5.0, 0.3, None),
        ],
    )
    message = compose_digest(calm)
    assert message.subject == "DIGEST · marginwatch · all clear: 4 accounts watched, worst 8.1 % / 3.2 σ away, 0 alerts"
    assert "binanceusdm/a: health 2.40, nearest liquidation 8.1 % away (3.2 σ)" in message.text
    worried = DigestFigures(
        "2026-11-27",
        [AccountLine("binanceusdm/a", True, 1.3, 0.02, 0.9), AccountLine("okx/<b>", False, None, None, None, "paused")],
        firing=["binanceusdm/a · health · WARNING"],
        told_last_day=3,
    )
    message = compose_digest(worried)
    assert message.subject.startswith("DIGEST · marginwatch · attention: 1 account watched, 1 not watched")
    assert message.subject.endswith("worst 2.0 % / 0.9 σ away, 1 alert")
    assert "okx/<b>: NOT WATCHED (paused)" in message.text and "okx/&lt;b&gt;" in message.html
    assert "Alerts told in the last 24 h: 3" in message.text


def test_due_at_its_time_and_once_a_day(db_url: str) -> None:
    config = parse_config({"database_url": db_url, "monitor": {"digest_at": "08:30"}})
    assert not due(config, datetime(2026, 11, 27, 8, 29, tzinfo=UTC))
    assert due(config, datetime(2026, 11, 27, 8, 30, tzinfo=UTC))
    assert not due(parse_config({"database_url": db_url}), datetime(2026, 11, 27, 23, 0, tzinfo=UTC))  # off
    upgrade(db_url)
    sessions = session_factory(make_engine(db_url))
    repo.ensure_accounts(sessions, [repo.AccountInfo("a", "binanceusdm", "USDT")])
    at = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
    assert send_digest_if_due(sessions, config, datetime(2026, 11, 27, 8, 0, tzinfo=UTC)) is None
    first = send_digest_if_due(sessions, config, at)
    assert first is not None
    assert send_digest_if_due(sessions, config, at) is None  # another poller, the same day
    assert send_digest_if_due(sessions, config, datetime(2026, 11, 28, 9, 0, tzinfo=UTC)) is not None
    with sessions() as session:
        assert [d.day for d in session.scalars(select(AlertDigest).order_by(AlertDigest.day))] == [
            "2026-11-27",
            "2026-11-28",
        ]
        assert session.get(AlertNotification, first).account_id is None
