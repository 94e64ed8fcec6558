"""Alerts from the store to a real SMTP server on loopback: the message, the outbox, retries."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from alerts.outbox import deliver_due
from alerts.service import evaluate_account
from config.settings import parse_config
from connectors.errors import RetryPolicy
from margin.snapshot import parse_snapshot
from poller.rows import Polled, account_rows
from store import repo
from store.db import make_engine, session_factory, upgrade
from store.schema import AlertDelivery, AlertTransition, Silence
from tests.alert_gallery import document

T0 = datetime(2026, 11, 1, tzinfo=UTC)


def _config(port: int, **alerts):
    return parse_config(
        {
            "poll_interval_seconds": 60,
            "alerts": {
                "email": {
                    "host": "127.0.0.1",
                    "port": port,
                    "security": "none",
                    "from": "marginwatch@example.org",
                    "to": ["desk@example.org"],
                },
                "recovery_dwell_minutes": 0,  # these tests step health back and forth a minute apart
                **alerts,
            },
            "accounts": [
                {
                    "name": "main",
                    "exchange": "binanceusdm",
                    "key_env": "K",
                    "secret_env": "S",
                    "alerts": {"email_to": ["owner@example.org", "risk@example.org"]},
                }
            ],
        }
    )


class Desk:
    def __init__(self, tmp_path: Path, config) -> None:
        url = f"sqlite:///{tmp_path / 'alerts.db'}"
        upgrade(url)
        self.sessions = session_factory(make_engine(url))
        self.config = config
        self.account = config.accounts[0]
        info = repo.AccountInfo("main", "binanceusdm", "USDT")
        self.id = repo.ensure_accounts(self.sessions, [info])["main"]
        self.now = T0
        # the market's price tick, as the poller stores it from the venue's market precision
        repo.upsert_market_stats(self.sessions, "binanceusdm", T0, {"BTC/USDT:USDT": {"price_tick": 0.01}})

    def poll(self, health: float) -> int | None:
        self.now += timedelta(minutes=1)
        doc = document(health)
        ((row, positions),) = account_rows([Polled(parse_snapshot(doc), self.now, 1.5)])
        repo.record_snapshot(self.sessions, self.id, row, positions, json.dumps(doc))
        return evaluate_account(self.sessions, self.config, self.account, self.id, self.now)

    def deliver(self) -> dict[str, int]:
        return deliver_due(self.sessions, self.config, lambda: self.now, RetryPolicy(0.01, 0.02))


def test_critical_email_names_the_account_level_and_remedy(tmp_path: Path, smtp_server) -> None:
    desk = Desk(tmp_path, _config(smtp_server.port))
    assert desk.poll(2.0) is None
    assert desk.poll(1.08) is not None  # critical does not wait
    assert desk.deliver() == {"sent": 1, "retry": 0, "failed": 0}
    (message,) = smtp_server.inbox.messages
    # 10.8 + (P - 100) = 0.1 P  =>  P = 89.2 / 0.9 = 99.1111, 0.89 % below the mark, shown at
    # the market's tick 0.01 (no σ: the symbol has no volatility in this test)
    assert message["Subject"] == "CRITICAL · binanceusdm/main · BTC 0.9 % from liq 99.11"
    assert smtp_server.inbox.envelopes[0][1] == ["owner@example.org", "risk@example.org"]
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content().replace("\u00a0", " ")  # figures keep their units
    lines = text.splitlines()
    assert lines[:2] == ["CRITICAL · binanceusdm/main", "BTC long 0.9 % from liquidation at 99.11 USDT (down)"]
    # the remedy comes first. Out of the risk level means the distance rule's clear level,
    # 6 % / 0.6 = 10 %: (10.8 + x) + (P - 100) = 0.1 P at P = 90  =>  x = 8.2 (plus the fee
    # to close), rounded up to the cent; health (18.99 + 0.01) / 10 = 1.90
    assert lines[3] == "Do now:"
    assert lines[4] == "  - add 8.21 USDT → health 1.90, BTC liq moves to 90.00 USDT (10 % away)"
    # or a cut that takes the position as far: (10.8 - 100 c 0.0005) + (1 - c)(P - 100) =
    # 0.1 (1 - c) P at P = 90 => c = 0.4329..., rounded up to the amount step 0.001
    assert lines[5] == "  - or reduce BTC long by 0.433 BTC (≈ 43.30 USDT) → health 1.90, nearest liq 10 % away"
    assert "  - OK → CRITICAL: cross health 1.08" in lines
    assert "    mark 100.00 USDT · 1.000 BTC ≈ 100.00 USDT" in lines
    assert "  Maintenance margin: 10.00 USDT" in lines
    assert "as of 00:02:00 UTC (data age 0 s)" in lines  # the poll's time: T0 + 2 minutes
    assert "add 8.21 USDT → health 1.90" in html and "as of 00:02:00 UTC" in html
    assert html.index("add 8.21 USDT") < html.index("What changed") < html.index("Positions nearest")
    assert desk.deliver() == {"sent": 0, "retry": 0, "failed": 0}  # never re-sent


def test_smtp_outage_and_greylisting_are_retried_until_delivered(tmp_path: Path, smtp_server) -> None:
    desk = Desk(tmp_path, _config(smtp_server.port))
    smtp_server.stop()
    desk.poll(1.05)
    assert desk.deliver() == {"sent": 0, "retry": 1, "failed": 0}
    with desk.sessions() as session:
        row = session.scalars(select(AlertDelivery)).one()
        assert row.status == "pending" and "unreachable" in row.last_error
    smtp_server.start()
    smtp_server.inbox.refuse_next = 1  # 451 greylisting once
    desk.now += timedelta(seconds=1)
    assert desk.deliver() == {"sent": 0, "retry": 1, "failed": 0}
    desk.now += timedelta(seconds=1)
    assert desk.deliver() == {"sent": 1, "retry": 0, "failed": 0}
    assert len(smtp_server.inbox.messages) == 1


def test_two_senders_never_send_one_row_twice(tmp_path: Path, smtp_server) -> None:
    desk = Desk(tmp_path, _config(smtp_server.port))
    for health in (1.1, 2.0, 1.1, 2.0, 1.1):  # five notifications
        desk.poll(health)
    results = []
    threads = [threading.Thread(target=lambda: results.append(desk.deliver())) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(r["sent"] for r in results) == 5
    assert len(smtp_server.inbox.messages) == 5
    assert len({m["Message-ID"] for m in smtp_server.inbox.messages}) == 5


def test_silence_mutes_but_state_advances(tmp_path: Path, smtp_server) -> None:
    desk = Desk(tmp_path, _config(smtp_server.port))
    with desk.sessions.begin() as session:
        session.add(Silence(account_id=None, starts_at=T0, ends_at=T0 + timedelta(minutes=3)))
    assert desk.poll(1.05) is None  # muted: fired, but not told
    desk.now += timedelta(minutes=5)
    assert desk.poll(2.0) is not None  # the silence is over: the resolution is told
    desk.deliver()
    (message,) = smtp_server.inbox.messages
    assert message["Subject"].startswith("RESOLVED · binanceusdm/main")
    with desk.sessions() as session:
        rows = session.scalars(select(AlertTransition).order_by(AlertTransition.id))
        kinds = [(t.kind, t.muted) for t in rows if t.subject == "health"]
    assert kinds == [("fired", True), ("resolved", False)]


def test_permanent_refusal_is_stored_and_not_retried(tmp_path: Path, smtp_server) -> None:
    desk = Desk(tmp_path, _config(smtp_server.port))
    desk.config = parse_config(
        {
            **desk.config.model_dump(by_alias=True),
            "accounts": [{**desk.config.accounts[0].model_dump(), "alerts": {"email_to": []}}],
        }
    )
    desk.account = desk.config.accounts[0]
    desk.poll(1.05)
    assert desk.deliver() == {"sent": 0, "retry": 0, "failed": 1}
    with desk.sessions() as session:
        row = session.scalars(select(AlertDelivery)).one()
        assert row.status == "failed" and "no recipients" in row.last_error
    desk.now += timedelta(hours=1)
    assert desk.deliver() == {"sent": 0, "retry": 0, "failed": 0}
