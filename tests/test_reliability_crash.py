"""Crash safety: SIGKILL the poller at random moments, at least 20 times and until at least
10 alerts have fired, while alerts fire. After each kill the database passes PRAGMA
integrity_check and every snapshot committed before it is still there; at the end the SMTP
inbox holds every alert at least once, and a repeat (the window between SMTP accepting and
the outbox recording it cannot be closed) carries the same Message-ID. No step counts on the
machine's speed: a busy machine only takes more kills to get its alerts."""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from simulator import ExchangeSimulator
from store.db import upgrade
from tests.alert_scenario import SYMBOL, config_doc, mark_for_health, scenario, write_toml
from tests.helpers import SmtpServer, free_port

KILLS = int(os.environ.get("MARGINWATCH_CRASH_KILLS", "20"))
ALERTS = 10  # fewer, and the test would not mean much
DEADLINE_SECONDS = 600.0  # a guard against a hang, never reached on a working poller


def _poller(config_path: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "cli.main", "poll", "--config", str(config_path)],
        env={**os.environ},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
    )


def _rows(db: Path, query: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(db, timeout=30) as conn:
        return conn.execute(query).fetchall()


def _ids(db: Path, table: str) -> set[int]:
    """Row ids of `table`; none while the killed poller had not created it yet."""
    if not db.exists():
        return set()
    try:
        return {row[0] for row in _rows(db, f"SELECT id FROM {table}")}
    except sqlite3.OperationalError:  # no such table: killed during its first migration
        return set()


def test_twenty_sigkills_lose_nothing_and_tell_each_alert_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(20261126)
    sim = ExchangeSimulator(scenario())
    sim.start()
    smtp = SmtpServer(free_port())
    smtp.start()
    db = tmp_path / "crash.db"
    # the health bands alone: at 20x health 2.0 is 0.4 % from liquidation, critical by the
    # risk level, and the swing would not resolve
    doc = config_doc(sim.base_url, f"sqlite:///{db}", smtp.port, interval=0.3, danger=False, env=monkeypatch)
    # every swing told at once (no recovery dwell): many alerts in a short run
    doc["alerts"].update(
        delivery_lease_seconds=4, retry_base_seconds=0.2, retry_cap_seconds=0.5, recovery_dwell_minutes=0
    )
    doc["alerts"]["email"]["timeout_seconds"] = 2
    config_path = tmp_path / "marginwatch.toml"
    write_toml(doc, config_path)
    upgrade(f"sqlite:///{db}")  # the schema first: a kill during the first start's migration is not this test's
    stop = threading.Event()
    figures = {"kills": 0, "integrity_checks": 0, "snapshots_checked": 0}

    def swing_the_market() -> None:
        """Health 1.05 (critical) and 2.0 (resolved) in turn: an alert every swing."""
        document = None
        healthy = True
        while not stop.is_set():
            if document is None and db.exists():
                try:
                    found = _rows(db, "SELECT latest_document FROM accounts WHERE latest_document IS NOT NULL")
                    document = json.loads(found[0][0]) if found else None
                except sqlite3.Error:
                    pass
            if document is not None:
                healthy = not healthy
                sim.set_mark("binanceusdm", SYMBOL, mark_for_health(document, 2.0 if healthy else 1.05))
            stop.wait(0.8)

    swinger = threading.Thread(target=swing_the_market)
    swinger.start()
    deadline = time.monotonic() + DEADLINE_SECONDS
    try:
        while figures["kills"] < KILLS or len(_ids(db, "alert_notifications")) < ALERTS:
            assert time.monotonic() < deadline, f"no {ALERTS} alerts after {figures['kills']} kills"
            poller = _poller(config_path)
            before = len(_ids(db, "account_snapshots"))
            if figures["kills"] % 3 == 0:  # any moment, start-up and migrations included
                time.sleep(rng.uniform(0.2, 3.0))
            else:  # once it is cycling, so that every run moves the alerts on, however slow the machine
                while len(_ids(db, "account_snapshots")) <= before and poller.poll() is None:
                    assert time.monotonic() < deadline, "the poller never stored a snapshot"
                    time.sleep(0.1)
                time.sleep(rng.uniform(0.0, 1.5))
            committed = _ids(db, "account_snapshots")
            poller.send_signal(signal.SIGKILL)
            poller.wait(10)
            figures["kills"] += 1
            if db.exists():
                assert _rows(db, "PRAGMA integrity_check") == [("ok",)]
                figures["integrity_checks"] += 1
            still = _ids(db, "account_snapshots")
            assert committed <= still, f"lost snapshots {sorted(committed - still)[:5]}"
            figures["snapshots_checked"] += len(committed)
        stop.set()
        swinger.join()
        # one last, clean run delivers whatever the kills left in the outbox
        poller = _poller(config_path)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                pending = _rows(db, "SELECT count(*) FROM alert_deliveries WHERE status != 'sent'")[0][0]
            except sqlite3.OperationalError:  # no schema yet: this run is the first to get that far
                pending = -1
            if pending == 0:
                break
            time.sleep(0.5)
        poller.send_signal(signal.SIGTERM)
        poller.wait(30)
    finally:
        stop.set()
        swinger.join()
        sim.stop()
        smtp.stop()
    notifications = {row[0] for row in _rows(db, "SELECT message_id FROM alert_notifications")}
    sent = _rows(db, "SELECT notification_id, status FROM alert_deliveries")
    received = [m["Message-ID"] for m in smtp.inbox.messages]
    expected = notifications  # each notification's stored Message-ID
    assert len(notifications) >= ALERTS
    assert all(status == "sent" for _, status in sent), sent
    # at least once: every alert arrived; a repeat is the same message (same Message-ID),
    # which a mail service shows once
    assert set(received) == expected, "an alert was lost, or a message arrived that was never stored"
    figures.update(alerts=len(notifications), emails=len(received), repeats=len(received) - len(set(received)))
    (Path(__file__).parent / "artifacts").mkdir(exist_ok=True)
    (Path(__file__).parent / "artifacts" / "reliability-crash.json").write_text(json.dumps(figures))
