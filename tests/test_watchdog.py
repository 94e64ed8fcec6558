"""The watcher watched: `marginwatch poll` pings a heartbeat receiver every cycle (start,
success, /fail when every account failed; Uptime Kuma's ?status=up/down), and
`marginwatch watchdog` (its own process) alerts through a webhook when the poller is
killed, and again when a poller is back. A watchdog that cannot read the database says so
once, and records it when it can read again."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import socket
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.pool import NullPool

from config.settings import parse_config
from poller.heartbeat import ping_url
from poller.report import CycleReport
from poller.runtime import run_poller
from poller.watchdog import Watchdog
from simulator import ExchangeSimulator
from store import pollers
from store.db import make_engine, session_factory, upgrade
from tests.alert_scenario import outage_config, scenario, write_toml
from tests.helpers import rows, running_simulator, start_poller
from tests.receivers import Receiver, wait_for

INTERVAL = 0.5


@pytest.fixture
def sim() -> Iterator[ExchangeSimulator]:
    with running_simulator(scenario()) as simulator:
        yield simulator


def test_ping_urls_for_both_conventions() -> None:
    hc = "https://hc-ping.com/5f1c-uuid"
    assert ping_url(hc, "healthchecks", "success") == hc
    assert ping_url(hc, "healthchecks", "fail") == hc + "/fail"
    assert ping_url(hc + "/", "healthchecks", "start") == hc + "/start"
    kuma = "https://kuma.example/api/push/Tok3n?status=up&msg=OK&ping="
    assert ping_url(kuma, "uptime-kuma", "start") is None  # Kuma has no start signal
    assert ping_url(kuma, "uptime-kuma", "success", "1 stored", 120) == (
        "https://kuma.example/api/push/Tok3n?status=up&msg=1+stored&ping=120"
    )
    assert "status=down&msg=database%3A+disk+full" in (
        ping_url(kuma, "uptime-kuma", "fail", "database: disk full") or ""
    )


def test_uptime_kuma_pushes_up_and_down_and_the_digest_goes_out_once(
    sim: ExchangeSimulator, receiver: Receiver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    doc = outage_config(sim, receiver, tmp_path / "kuma.db", "unused", monkeypatch)
    doc["monitor"] = {
        "heartbeat_url": f"{receiver.url}/api/push/Tok3n",
        "heartbeat_format": "uptime-kuma",
        "digest_at": "00:00",  # due whenever the test runs: checked after every cycle, sent once
    }
    cycles: list[CycleReport] = []

    def after(report: CycleReport) -> None:  # the exchange fails from the third cycle on
        cycles.append(report)
        if len(cycles) == 2:
            sim.add_fault("binanceusdm", "/fapi/v3/positionRisk", "http503")

    asyncio.run(run_poller(parse_config(doc), cycles=3, on_cycle=after, secrets_file={}))
    assert [p["status"] for p in receiver.pushes] == ["up", "up", "down"]
    assert receiver.pushes[0]["msg"] == "1 stored" and int(receiver.pushes[0]["ping"]) >= 0
    assert receiver.pushes[2]["msg"] == "0 stored, 1 failed"
    digests = [s for s in receiver.subjects() if s.startswith("DIGEST")]
    assert len(digests) == 1, receiver.subjects()
    assert digests[0].startswith("DIGEST · marginwatch · all clear: 1 account watched, worst ")
    assert digests[0].endswith(" away, 0 alerts")


def test_heartbeat_fail_and_the_watchdog_notices_a_killed_poller(
    sim: ExchangeSimulator, receiver: Receiver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "watched.db"
    doc = outage_config(sim, receiver, db, "hb", monkeypatch)
    doc["monitor"]["watchdog_after_intervals"] = 3
    config_path = write_toml(doc, tmp_path / "marginwatch.toml")
    upgrade(f"sqlite:///{db}")
    log = tmp_path / "poller.log"
    poller = start_poller(config_path, log)
    # the watchdog beside a running poller (one started first would rightly alert if no
    # poller completed a cycle within 3 intervals of its start: here, ccxt's import)
    wait_for(lambda: receiver.count("/ping/hb") >= 1, what="a first cycle")
    watchdog = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "watchdog", "--config", str(config_path)],
        stdout=subprocess.DEVNULL,
        stderr=(tmp_path / "watchdog.log").open("wb"),
    )
    figures: dict[str, Any] = {}

    def received(fragment: str) -> list[str]:
        return [s for s in receiver.subjects() if fragment in s]

    try:
        wait_for(lambda: receiver.count("/ping/hb") >= 3, what="success pings")
        assert receiver.count("/ping/hb/start") == 1 and receiver.count("/ping/hb/fail") == 0
        # every account failing is a failed cycle
        for path in ("/fapi/v3/positionRisk", "/fapi/v2/positionRisk"):
            sim.add_fault("binanceusdm", path, "http503")
        wait_for(lambda: receiver.count("/ping/hb/fail") >= 2, what="/fail pings")
        sim.clear_faults()
        good = receiver.count("/ping/hb")
        wait_for(lambda: receiver.count("/ping/hb") > good + 1, what="success again")
        assert received("no poller") == [], "the watchdog alerted while the poller ran"
        watchdog_log = tmp_path / "watchdog.log"
        wait_for(lambda: "watchdog: watching" in watchdog_log.read_text(), what="the watchdog's first look")

        poller.send_signal(signal.SIGKILL)  # the poller, or its machine, is gone
        poller.wait(10)
        pings = len(receiver.pings)
        silent = wait_for(lambda: received("no poller has completed a cycle"), what="the watchdog's alert")
        figures["silent_for_seconds_when_told"] = float(re.search(r"for ([\d.]+) s", silent[0]).group(1))  # type: ignore[union-attr]
        assert len(receiver.pings) == pings  # nothing pings any more: the outside service alerts too

        poller = start_poller(config_path, log)
        wait_for(lambda: received("RESOLVED · marginwatch · a poller completes cycles again"), what="back")
    finally:  # the watchdog first: a poller that stops is silent, rightly told
        watchdog.send_signal(signal.SIGTERM)
        watchdog.wait(30)
        poller.send_signal(signal.SIGTERM)
        poller.wait(30)
    assert watchdog.returncode == 0, (tmp_path / "watchdog.log").read_text()
    assert len(received("no poller has completed a cycle")) == 1  # told once
    told = rows(
        db,
        "SELECT t.kind, t.at, d.status FROM alert_transitions t JOIN alert_deliveries d "
        "ON d.notification_id = t.notification_id WHERE t.subject = 'monitor:poller' ORDER BY t.id",
    )
    assert [(kind, status) for kind, _, status in told] == [("fired", "sent"), ("resolved", "sent")]
    # not before 3 intervals of silence; how long after is a figure, not an assertion
    assert figures["silent_for_seconds_when_told"] >= 3 * INTERVAL
    ((killed_last_cycle,),) = rows(db, "SELECT last_cycle_at FROM pollers ORDER BY id LIMIT 1")
    figures["told_after_last_cycle_seconds"] = (told[0][1] - killed_last_cycle) / 1000  # database times, ms
    (Path(__file__).parent / "artifacts").mkdir(exist_ok=True)
    (Path(__file__).parent / "artifacts" / "watchdog.json").write_text(json.dumps(figures))


def test_watchdog_that_cannot_read_the_database_tells_once_and_records_it(
    receiver: Receiver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "dog.db"
    url = f"sqlite:///{db}"
    monkeypatch.setenv("MW_DOG_HOOK", f"{receiver.url}/hook/ops")
    config = parse_config(
        {
            "database_url": url,
            "poll_interval_seconds": 60,
            "alerts": {"webhooks": [{"name": "ops", "url_env": "MW_DOG_HOOK", "format": "json"}]},
        }
    )
    upgrade(url)
    sessions = session_factory(make_engine(url, poolclass=NullPool))
    pollers.cycle_done(sessions, pollers.register(sessions, 60))
    dog = Watchdog(config, sessions)
    dog.check(datetime.now(UTC))
    assert receiver.webhooks == []  # a poller cycled just now: nothing to say
    moved = db.rename(tmp_path / "elsewhere.db")  # the volume is gone: an empty file in its place
    for _ in range(3):
        dog.check(datetime.now(UTC))
    assert [s.split(" · ")[2] for s in receiver.subjects()] == ["watchdog cannot read the database (OperationalError)"]
    for leftover in tmp_path.glob("dog.db*"):
        leftover.unlink()
    moved.rename(db)
    dog.check(datetime.now(UTC))
    assert receiver.subjects()[-1] == "RESOLVED · marginwatch · watchdog reads the database again"
    with sqlite3.connect(db) as conn:
        kinds = conn.execute("SELECT kind FROM alert_transitions WHERE subject = 'monitor:watchdog' ORDER BY id")
        assert [k for (k,) in kinds] == ["fired", "resolved"]
    from app.views.alerts.data import transitions_frame  # the dashboard's Alerts page lists them

    with sessions() as session:
        frame = transitions_frame(session, datetime(2026, 1, 1, tzinfo=UTC))
    assert list(zip(frame["account"], frame["subject"], frame["kind"], strict=True)) == [
        ("marginwatch", "monitor:watchdog", "fired"),
        ("marginwatch", "monitor:watchdog", "resolved"),
    ]


def test_a_heartbeat_endpoint_that_never_answers_holds_no_cycle(
    sim: ExchangeSimulator, receiver: Receiver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A tarpit (accepts, never answers) as the heartbeat URL, with a 30 s ping timeout:
    the cycles go on at their pace and the poller stops at once."""
    tarpit = socket.socket()
    tarpit.bind(("127.0.0.1", 0))
    tarpit.listen(16)
    doc = outage_config(sim, receiver, tmp_path / "tarpit.db", "unused", monkeypatch)
    doc["monitor"] = {
        "heartbeat_url": f"http://127.0.0.1:{tarpit.getsockname()[1]}/ping/x",
        "heartbeat_timeout_seconds": 30,
    }
    reports: list[CycleReport] = []
    try:
        # a generous deadline, far below what pings holding the cycles would take (30 s each)
        asyncio.run(
            asyncio.wait_for(run_poller(parse_config(doc), cycles=4, on_cycle=reports.append, secrets_file={}), 25)
        )
    finally:
        tarpit.close()
    assert [r.stored for r in reports] == [["main"]] * 4
