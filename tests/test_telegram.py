"""Telegram, both ways, against a local Bot API server on 127.0.0.1 (tests/telegram_api.py)
through python-telegram-bot: alerts reach each allowed chat with their remedy, escaped;
flood control and a refused token are sorted; commands are answered in the allowed chats
only (/status worst first, /ack stops repeats, /silence, /unsilence); a foreign chat is
ignored and logged; the token never reaches a log line or a stored error."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from alerts.outbox import deliver_due
from alerts.service import alert_liquidation, evaluate_account
from alerts.telegram_bot import run_commands
from config.settings import Config, ConfigError, parse_config
from connectors.errors import RetryPolicy
from margin.snapshot import parse_snapshot
from poller.rows import Polled, account_rows
from poller.runtime import run_poller
from store import repo
from store.db import make_engine, session_factory, upgrade
from store.schema import AlertDelivery, AlertNotification, AlertState, AlertTransition, Silence
from tests.alert_gallery import document
from tests.alert_scenario import SYMBOL, config_doc, mark_for_health, scenario
from tests.helpers import running_simulator
from tests.telegram_api import TOKEN, FakeBotApi

TOKEN_ENV = "MW_TEST_TELEGRAM_TOKEN"


@pytest.fixture
def bot_api(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeBotApi]:
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    api = FakeBotApi(known_chats={42, 7})
    yield api
    api.stop()


def _config(api: FakeBotApi, chats: list[int], accounts: tuple[str, ...] = ("main",), **telegram: Any) -> Config:
    return parse_config(
        {
            "poll_interval_seconds": 60,
            "alerts": {
                "recovery_dwell_minutes": 0,  # a resolution is told at the first calm poll
                "telegram": [
                    {
                        "name": "desk",
                        "bot_token_env": TOKEN_ENV,
                        "chat_ids": chats,
                        "api_base_url": api.base_url,
                        "timeout_seconds": 5,
                        "poll_timeout_seconds": 1,
                        **telegram,
                    }
                ],
            },
            "accounts": [{"name": n, "exchange": "binanceusdm", "key_env": "K", "secret_env": "S"} for n in accounts],
        }
    )


class Store:
    """Accounts whose health the test sets: snapshot stored, rules stepped."""

    def __init__(self, tmp_path: Path, config: Config) -> None:
        url = f"sqlite:///{tmp_path / 'tg.db'}"
        upgrade(url)
        self.sessions = session_factory(make_engine(url))
        self.config = config
        infos = [repo.AccountInfo(a.name, a.exchange, "USDT") for a in config.accounts]
        self.ids = repo.ensure_accounts(self.sessions, infos)

    def poll(self, name: str, health: float, at: datetime) -> int | None:
        doc = {**document(health), "account": name}
        ((row, positions),) = account_rows([Polled(parse_snapshot(doc), at, 1.5)])
        repo.record_snapshot(self.sessions, self.ids[name], row, positions, json.dumps(doc))
        return evaluate_account(self.sessions, self.config, self.config.account(name), self.ids[name], at)

    def deliver(self, at: datetime) -> dict[str, int]:
        return deliver_due(self.sessions, self.config, lambda: at, RetryPolicy(0.01, 0.02))

    def rows(self) -> list[AlertDelivery]:
        with self.sessions() as session:
            return list(session.scalars(select(AlertDelivery).order_by(AlertDelivery.id)))


def test_alerts_reach_each_allowed_chat_with_the_remedy_escaped(bot_api: FakeBotApi, tmp_path: Path) -> None:
    store = Store(tmp_path, _config(bot_api, [42, 43]))  # the API knows no chat 43
    t0 = datetime(2026, 11, 1, tzinfo=UTC)
    store.poll("main", 2.0, t0)
    alert = store.poll("main", 1.08, t0 + timedelta(minutes=1))
    event = {
        "symbol": "<b>BTC</b> & <script>\r\nBcc: evil@example.org",  # exchange text, hostile
        "side": "long",
        "price": 99.1,
        "source": "fetch_my_trades",
        "occurred_at": t0,
    }
    liquidation = alert_liquidation(
        store.sessions, store.config, store.config.accounts[0], store.ids["main"], event, t0 + timedelta(minutes=2)
    )
    assert alert and liquidation
    assert store.deliver(t0 + timedelta(minutes=3)) == {"sent": 2, "retry": 0, "failed": 2}
    first, second = bot_api.messages_to(42)
    assert first.startswith("<b>CRITICAL · binanceusdm/main · BTC 0.9 % from liq 99.111</b>")
    assert "add 8.21 USDT → health 1.90" in first and "or reduce BTC long by 0.433 BTC" in first
    assert f"/ack {alert} stops the repeats" in first
    # the hostile symbol arrives as text: escaped, and the fake parsed it as Telegram would
    assert "&lt;b&gt;BTC&lt;/b&gt; &amp; &lt;script&gt;" in second and "<script>" not in second
    assert "/ack" not in second  # a liquidation is an event: nothing repeats
    failed = [r for r in store.rows() if r.channel == "telegram:desk:43"]
    assert [r.status for r in failed] == ["failed", "failed"]
    assert all(r.last_error == "telegram desk chat 43: Chat not found" for r in failed)
    sent = [r for r in store.rows() if r.channel == "telegram:desk:42"]
    assert [r.status for r in sent] == ["sent", "sent"]


def test_flood_control_waits_as_asked_and_a_refused_token_is_a_stored_failure(
    bot_api: FakeBotApi, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = Store(tmp_path, _config(bot_api, [42]))
    t0 = datetime(2026, 11, 1, tzinfo=UTC)
    bot_api.fail_next.append((429, "Too Many Requests: retry after 7", {"retry_after": 7}))
    store.poll("main", 1.05, t0)
    assert store.deliver(t0) == {"sent": 0, "retry": 1, "failed": 0}
    (row,) = store.rows()
    assert row.status == "pending" and row.next_attempt_at >= t0 + timedelta(seconds=7)
    assert store.deliver(t0 + timedelta(seconds=3)) == {"sent": 0, "retry": 0, "failed": 0}  # not before
    assert store.deliver(t0 + timedelta(seconds=8)) == {"sent": 1, "retry": 0, "failed": 0}

    monkeypatch.setenv(TOKEN_ENV, "999:wrong-token")
    store.poll("main", 2.0, t0 + timedelta(minutes=1))  # resolved: a new message
    assert store.deliver(t0 + timedelta(minutes=1)) == {"sent": 0, "retry": 0, "failed": 1}
    refused = store.rows()[-1]
    assert refused.status == "failed" and "token was refused" in (refused.last_error or "")
    assert "wrong-token" not in (refused.last_error or "")


def test_config_refuses_a_chat_twice_and_a_url_with_a_line_break() -> None:
    bot = {"bot_token_env": TOKEN_ENV, "chat_ids": [42]}
    with pytest.raises(ConfigError, match=r"alerts.telegram\[0\]: chat_ids lists a chat twice"):
        parse_config({"alerts": {"telegram": [{**bot, "chat_ids": [42, 42]}]}})
    with pytest.raises(ConfigError, match=r"alerts.telegram\[0\].api_base_url"):
        parse_config({"alerts": {"telegram": [{**bot, "api_base_url": "http://h/\r\nX: y"}]}})
    with pytest.raises(ConfigError, match=r"alerts.telegram\[0\].bot_token_env") as caught:
        parse_config({"alerts": {"telegram": [{**bot, "bot_token_env": "123456:the-token-itself"}]}})
    assert "the-token-itself" not in str(caught.value)  # a token pasted by mistake is not echoed


def _until(api: FakeBotApi, condition, seconds: float = 20.0):
    return asyncio.to_thread(api.wait_for, condition, seconds)


def test_commands_in_allowed_chats_only(bot_api: FakeBotApi, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    config = _config(bot_api, [42], accounts=("calm", "main", "shaky"))
    store = Store(tmp_path, config)
    now = datetime.now(UTC)
    start = now - timedelta(seconds=90)  # fresh: the stale accounts would be listed as STALE
    store.poll("calm", 3.0, start)
    store.poll("shaky", 1.6, start)
    store.poll("main", 2.0, start)
    alert = store.poll("main", 1.08, start + timedelta(seconds=30))  # CRITICAL
    assert alert is not None

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.create_task(run_commands(store.sessions, config, config.alerts.telegram[0], stop))
        try:
            bot_api.say(7, "/status")  # a chat the API knows, but not one of ours
            bot_api.say(42, "/status")
            await _until(bot_api, lambda: len(bot_api.messages_to(42)) == 1)
            (status,) = bot_api.messages_to(42)
            accounts = [line for line in status.splitlines()[1:] if line.startswith("<b>")]
            assert [line.split(":")[0] for line in accounts] == [
                "<b>CRITICAL</b> binanceusdm/main",
                "<b>OK</b> binanceusdm/shaky",  # then the lowest health first
                "<b>OK</b> binanceusdm/calm",
            ], status
            assert accounts[0].startswith("<b>CRITICAL</b> binanceusdm/main: health 1.08")
            assert "    health CRITICAL" in status

            bot_api.say(42, f"/ack {alert}")
            await _until(bot_api, lambda: len(bot_api.messages_to(42)) == 2)
            assert "acknowledged health CRITICAL" in bot_api.messages_to(42)[1]

            bot_api.say(42, "/silence shaky 30")
            bot_api.say(42, "/silence nobody")
            bot_api.say(42, "/unsilence")
            bot_api.say(42, "/silence all", date=int((now - timedelta(hours=1)).timestamp()))  # sent while away
            bot_api.say(42, "/status@some_other_bot")  # for another bot in a group: not ours
            bot_api.say(42, "/help@mw_test_bot")
            await _until(bot_api, lambda: len(bot_api.messages_to(42)) == 7)
        finally:
            stop.set()
            await asyncio.wait_for(loop, 20)

    asyncio.run(main())
    replies = bot_api.messages_to(42)
    assert replies[2].startswith("Silenced shaky until")
    assert replies[3].startswith("No account named nobody")
    assert replies[4].startswith("Ended: #1 (shaky)")
    assert replies[5].startswith("Ignored /silence: sent 60 min ago")
    assert replies[6].startswith("<b>marginwatch</b> commands:")
    assert bot_api.messages_to(7) == []  # the foreign chat got nothing
    with store.sessions() as session:
        (silence,) = session.scalars(select(Silence)).all()
        assert silence.ends_at <= datetime.now(UTC)  # made, then ended
    ignored = [r for r in caplog.records if "ignored a message from chat 7" in r.getMessage()]
    assert len(ignored) == 1 and ignored[0].levelno == logging.WARNING
    assert not any(TOKEN in r.getMessage() for r in caplog.records)

    # the acknowledged CRITICAL is not repeated (30 min) ...
    later = now + timedelta(minutes=31)
    assert store.poll("main", 1.08, later) is None
    assert store.poll("main", 1.08, later + timedelta(minutes=31)) is None
    with store.sessions() as session:
        repeats = session.scalars(select(AlertTransition).where(AlertTransition.kind == "repeat")).all()
        # both rules the message told (the health band and the risk level's distance), twice each
        assert sorted((t.subject, t.muted) for t in repeats) == [("distance", True)] * 2 + [("health", True)] * 2
    # ... until it changes level: the recovery is told, and the ack is over
    recovered = store.poll("main", 1.3, later + timedelta(minutes=32))
    assert recovered is not None
    with store.sessions() as session:
        state = session.get(AlertState, (store.ids["main"], "health"))
        assert state.level == 1 and state.acked_level is None
        assert "CRITICAL → WARNING: cross health 1.30" in session.get(AlertNotification, recovered).body_text


def test_poller_runs_the_bot_alerts_and_answers(
    bot_api: FakeBotApi, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`marginwatch poll`'s runtime: the alert reaches Telegram and /status is answered."""
    with running_simulator(scenario()) as sim:
        doc = config_doc(sim.base_url, f"sqlite:///{tmp_path / 'p.db'}", 1, env=monkeypatch)
        del doc["alerts"]["email"]
        doc["alerts"]["telegram"] = [
            {
                "bot_token_env": TOKEN_ENV,
                "chat_ids": [42],
                "api_base_url": bot_api.base_url,
                "poll_timeout_seconds": 1,
            }
        ]
        config = parse_config(doc)

        upgrade(config.database_url)
        sessions = session_factory(make_engine(config.database_url))

        async def main() -> None:
            stop = asyncio.Event()
            poller = asyncio.create_task(run_poller(config, stop=stop, secrets_file={}))
            try:

                def polled() -> bool:
                    with sessions() as session:
                        return any(a.latest_document for a, _ in repo.latest_snapshots(session))

                await _until(bot_api, polled)
                with sessions() as session:
                    document = json.loads(repo.latest_snapshots(session)[0][0].latest_document)
                sim.set_mark("binanceusdm", SYMBOL, mark_for_health(document, 1.05))
                await _until(bot_api, lambda: any("CRITICAL" in m for m in bot_api.messages_to(42)))
                bot_api.say(42, "/status")
                await _until(bot_api, lambda: any(m.startswith("<b>Status</b>") for m in bot_api.messages_to(42)))
            finally:
                stop.set()
                await asyncio.wait_for(poller, 30)

        asyncio.run(main())
    alert = next(m for m in bot_api.messages_to(42) if "CRITICAL" in m)
    assert (
        alert.startswith("<b>CRITICAL · binanceusdm/main · ")
        and "from liquidation at" in alert
        and "Do now:" in alert
        and "add " in alert
    )
