"""Deliveries that never jam: a hanging SMTP server delays only email (the webhook is
delivered while the SMTP send still hangs); hostile CR/LF in every field that reaches a
mail header; every exception on a row becomes that row's recorded failure; delivery status
from `marginwatch alerts deliveries`; `send_direct` without the database."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from alerts.channels import send_direct
from alerts.clean import HEADER_LIMIT
from alerts.outbox import deliver_due, run_sender
from alerts.senders import build_email
from alerts.service import alert_liquidation, evaluate_account
from config.settings import Config, EmailConfig, parse_config
from connectors.errors import RetryPolicy
from margin.snapshot import parse_snapshot
from poller.rows import Polled, account_rows
from store import repo
from store.db import make_engine, session_factory, upgrade
from store.schema import AlertDelivery, AlertNotification
from tests.alert_gallery import Hook, document
from tests.alert_scenario import write_toml
from tests.helpers import SmtpServer, run_cli

T0 = datetime(2026, 11, 1, tzinfo=UTC)
HOSTILE = "502 Bad Gateway\r\nBcc: evil@attacker.example\r\n\r\n<html>\x1b[31mred\x1b[0m\u2028x"


class Tarpit:
    """An SMTP server that accepts connections and never says a word."""

    def __init__(self) -> None:
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen()
        self.port = self.listener.getsockname()[1]
        self.held: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:  # released
                return
            self.held.append(conn)

    def hanging(self) -> bool:
        """A client is connected and still waiting (it has not hung up)."""
        for conn in self.held:
            conn.setblocking(False)
            try:
                if conn.recv(1, socket.MSG_PEEK) == b"":
                    continue  # the client closed it
            except BlockingIOError:
                return True  # open, nothing sent: the client waits for a greeting
            except OSError:
                continue
        return False

    def release(self) -> None:
        self.listener.close()
        for conn in self.held:
            conn.close()


@pytest.fixture
def tarpit() -> Iterator[Tarpit]:
    pit = Tarpit()
    yield pit
    pit.release()


@pytest.fixture
def hook() -> Iterator[Hook]:
    endpoint = Hook()
    yield endpoint
    endpoint.server.shutdown()


def _doc(db: str, smtp_port: int, **alerts: Any) -> dict[str, Any]:
    return {
        "database_url": db,
        "poll_interval_seconds": 60,
        "alerts": {
            "email": {
                "host": "127.0.0.1",
                "port": smtp_port,
                "security": "none",
                "from": "MarginWatch <mw@example.org>",
                "to": ["desk@example.org"],
                "timeout_seconds": 60,
            },
            "recovery_dwell_minutes": 0,  # a resolution is told at the first calm poll
            **alerts,
        },
        "accounts": [{"name": "main", "exchange": "binanceusdm", "key_env": "K", "secret_env": "S"}],
    }


class Desk:
    def __init__(self, config: Config) -> None:
        upgrade(config.database_url)
        self.sessions = session_factory(make_engine(config.database_url))
        self.config = config
        self.id = repo.ensure_accounts(self.sessions, [repo.AccountInfo("main", "binanceusdm", "USDT")])["main"]

    def poll(self, health: float, at: datetime) -> int | None:
        doc = document(health)
        ((row, positions),) = account_rows([Polled(parse_snapshot(doc), at, 1.5)])
        repo.record_snapshot(self.sessions, self.id, row, positions, json.dumps(doc))
        return evaluate_account(self.sessions, self.config, self.config.accounts[0], self.id, at)

    def rows(self) -> dict[str, AlertDelivery]:
        with self.sessions() as session:
            return {r.channel: r for r in session.scalars(select(AlertDelivery).order_by(AlertDelivery.id))}


async def _until(condition, seconds: float = 120.0) -> None:
    """Wait for `condition()` with a generous deadline (a condition, not a timing)."""
    deadline = asyncio.get_running_loop().time() + seconds
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


def test_a_hanging_smtp_server_delays_only_email(
    tarpit: Tarpit, hook: Hook, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MW_ISO_HOOK", hook.url)
    config = parse_config(
        _doc(f"sqlite:///{tmp_path / 'i.db'}", tarpit.port, webhooks=[{"name": "ops", "url_env": "MW_ISO_HOOK"}])
    )
    desk = Desk(config)
    assert desk.poll(1.05, T0) is not None
    with desk.sessions.begin() as session:  # a row of a channel since removed from the config
        notification_id = session.scalars(select(AlertNotification.id)).one()
        session.add(
            AlertDelivery(
                notification_id=notification_id,
                channel="webhook:gone",
                status="pending",
                attempts=0,
                next_attempt_at=T0,
            )
        )

    async def main() -> None:
        stop, wake = asyncio.Event(), asyncio.Event()
        sender = asyncio.create_task(
            run_sender(desk.sessions, config, stop, wake, lambda: datetime.now(UTC), 0.2, RetryPolicy(30, 60))
        )
        wake.set()
        try:
            await _until(lambda: len(hook.bodies) == 1 and desk.rows()["webhook:ops"].status == "sent")
            # the webhook went out while the email is still waiting for the SMTP greeting (its
            # connection may open a moment later on a busy machine: wait for it, then look)
            await _until(tarpit.hanging)
            assert desk.rows()["email"].status == "sending"
            await _until(lambda: desk.rows()["webhook:gone"].status == "failed")
            tarpit.release()  # the server hangs up: the send ends, as a temporary failure
            await _until(lambda: desk.rows()["email"].status == "pending")
        finally:
            stop.set()
            wake.set()
            await asyncio.wait_for(sender, 30)

    asyncio.run(main())
    rows = desk.rows()
    assert "CRITICAL · binanceusdm/main" in hook.bodies[0]["text"]
    assert rows["email"].attempts == 1 and "SMTP server unreachable" in (rows["email"].last_error or "")
    assert rows["email"].next_attempt_at > datetime.now(UTC)  # retried later, with backoff
    assert rows["webhook:gone"].last_error == "webhook gone is no longer configured"


def test_hostile_text_never_reaches_a_header(smtp_server: SmtpServer, tmp_path: Path) -> None:
    config = parse_config(_doc(f"sqlite:///{tmp_path / 'h.db'}", smtp_server.port))
    desk = Desk(config)
    desk.poll(2.0, T0)
    # the exchange's error (a multi-line 502 page) pauses the account: it lands in the subject
    repo.record_failure(desk.sessions, desk.id, T0, "permanent", HOSTILE, "ExchangeError", "paused")
    assert evaluate_account(desk.sessions, config, config.accounts[0], desk.id, T0 + timedelta(minutes=1))
    event = {"symbol": HOSTILE, "side": "long\r\nX-Evil: 1", "price": None, "source": "x", "occurred_at": T0}
    assert alert_liquidation(desk.sessions, config, config.accounts[0], desk.id, event, T0 + timedelta(minutes=2))
    assert deliver_due(desk.sessions, config, lambda: T0 + timedelta(minutes=3)) == {"sent": 2, "retry": 0, "failed": 0}
    for message in smtp_server.inbox.messages:
        # a later message of the same account threads under the first (In-Reply-To, References)
        assert set(message.keys()) - {"In-Reply-To", "References"} == {
            "Subject",
            "From",
            "To",
            "Date",
            "Message-ID",
            "Content-Type",
            "MIME-Version",
        }
        assert all("\r" not in str(v) and "\n" not in str(v) for v in message.values())
        subject = message["Subject"]
        assert "\r" not in subject and "\n" not in subject and "\x1b" not in subject and "\u2028" not in subject
        assert len(subject) <= HEADER_LIMIT and "502 Bad Gateway Bcc: evil@attacker.example" in subject
    assert [rcpts for _, rcpts in smtp_server.inbox.envelopes] == [["desk@example.org"], ["desk@example.org"]]
    subjects = [m["Subject"] for m in smtp_server.inbox.messages]
    assert subjects[0].startswith("CRITICAL · binanceusdm/main · not watched: 502 Bad Gateway")
    assert subjects[1].startswith("LIQUIDATED · binanceusdm/main · 502 Bad Gateway")

    # a long subject is cut, and ends with an ellipsis
    long = build_email(config.alerts.email, ["a@example.org"], "x" * 5000, "t", "<p>t</p>", message_key="k")
    assert len(long["Subject"]) == HEADER_LIMIT and long["Subject"].endswith("…")


def test_bad_addresses_are_refused_by_the_config_with_their_path(tmp_path: Path) -> None:
    path = tmp_path / "marginwatch.toml"
    path.write_text(
        '[alerts.email]\nhost = "127.0.0.1"\nfrom = "mw@example.org\\r\\nBcc: evil@attacker.example"\n'
        'to = ["ok@example.org", "desk@example.org\\nBcc: evil@attacker.example"]\n'
        '[[accounts]]\nname = "main"\nexchange = "okx"\n'
        '[accounts.alerts]\nemail_to = ["a@b.org, c@d.org"]\n'
    )
    code, out, err = run_cli("alerts", "deliveries", "--config", str(path))
    assert code == 2 and out == ""
    problems = sorted(err.splitlines())
    assert len(problems) == 3, err
    assert problems[0].startswith(f"marginwatch: {path}: accounts[0].alerts.email_to[0]: not an email address")
    assert problems[1].startswith(f"marginwatch: {path}: alerts.email.from: contains a line break")
    assert problems[2].startswith(f"marginwatch: {path}: alerts.email.to[1]: contains a line break")
    # a stored notification written under an older config: its bad recipient fails the row
    email = EmailConfig.model_validate({"host": "127.0.0.1"})
    with pytest.raises(Exception, match="invalid recipient address"):
        build_email(email, ["x@example.org\r\nBcc: evil@attacker.example"], "s", "t", "h", message_key="k")


def test_any_exception_is_the_rows_failure_and_status_is_shown(smtp_server: SmtpServer, tmp_path: Path) -> None:
    path = write_toml(_doc(f"sqlite:///{tmp_path / 'x.db'}", smtp_server.port), tmp_path / "marginwatch.toml")
    config = parse_config(_doc(f"sqlite:///{tmp_path / 'x.db'}", smtp_server.port))
    desk = Desk(config)
    first = desk.poll(1.05, T0)  # CRITICAL: its email will go out
    second = desk.poll(2.0, T0 + timedelta(minutes=1))  # RESOLVED: its row is corrupted below
    with desk.sessions.begin() as session:
        session.get(AlertNotification, second).payload = "{not json"
        session.get(AlertNotification, second).recipients = "{not json"
    now = T0 + timedelta(minutes=2)
    outcomes = []
    for _ in range(3):  # an unforeseen exception is retried twice, then fails with its reason
        outcomes.append(deliver_due(desk.sessions, config, lambda at=now: at, RetryPolicy(0.01, 0.02)))
        now += timedelta(seconds=1)
    assert outcomes == [
        {"sent": 1, "retry": 1, "failed": 0},
        {"sent": 0, "retry": 1, "failed": 0},
        {"sent": 0, "retry": 0, "failed": 1},
    ]
    with desk.sessions() as session:
        statuses = {d.notification_id: (d.status, d.attempts) for d in session.scalars(select(AlertDelivery))}
    assert statuses == {first: ("sent", 1), second: ("failed", 3)}  # none left "sending"

    code, out, err = run_cli("alerts", "deliveries", "--config", str(path))
    assert code == 0, err
    assert out.splitlines()[0] == "pending 0 · sending 0 · sent 1 · failed 1"
    assert f"#{second:<6}" in out and "failed    3 attempts" in out
    assert "error: could not be sent: JSONDecodeError" in out
    code, out, _ = run_cli("alerts", "deliveries", "--status", "sent", "--config", str(path))
    assert code == 0 and f"#{first:<6}" in out and f"#{second:<6}" not in out
    code, _, err = run_cli("alerts", "deliveries", "--status", "lost", "--config", str(path))
    assert code == 2 and "--status: one of pending, sending, sent, failed" in err


def test_send_direct_needs_no_database_and_reports_each_channel(
    smtp_server: SmtpServer, tarpit: Tarpit, hook: Hook, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MW_ISO_HOOK", hook.url)
    monkeypatch.delenv("MW_ISO_MISSING", raising=False)
    doc = _doc(
        "postgresql://nobody@127.0.0.1:9/none",  # never opened
        smtp_server.port,
        webhooks=[{"name": "ops", "url_env": "MW_ISO_HOOK"}, {"name": "unset", "url_env": "MW_ISO_MISSING"}],
    )
    results = send_direct(
        parse_config(doc), "CRITICAL · monitor · database down", "text", "<p>text</p>", {"subject": "x"}
    )
    assert results == [
        ("email", None),
        ("webhook:ops", None),
        ("webhook:unset", "webhook unset: variable MW_ISO_MISSING not set"),
    ]
    assert smtp_server.inbox.messages[0]["Subject"] == "CRITICAL · monitor · database down"
    assert smtp_server.inbox.envelopes[0][1] == ["desk@example.org"]
    assert hook.bodies[0]["text"] == "x"  # the subject, as Slack's notification text
    assert hook.bodies[0]["attachments"][0]["blocks"][1]["text"]["text"] == "*x*"
