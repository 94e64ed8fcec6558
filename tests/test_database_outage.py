"""A poller whose database stops taking writes keeps running and says so: `marginwatch poll`
(its own process) watches an account whose health alert is firing; another connection
holds SQLite's write lock (BEGIN IMMEDIATE) past the busy timeout, and later the database
file is made read-only (immutable). Each time the poller stays alive (its heartbeat turns
to /fail), a CRITICAL `monitor` alert reaches the webhook directly, once per cause, and
once the database is back the alert is recorded (transition, message, delivery) and its
resolution and the account's own alerts go out again through the outbox."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from simulator import ExchangeSimulator
from store.db import upgrade
from tests.alert_scenario import SYMBOL, mark_for_health, outage_config, scenario, write_toml
from tests.helpers import require_system_part, rows, running_simulator, start_poller
from tests.receivers import Receiver, wait_for

INTERVAL = 0.5


@pytest.fixture
def sim() -> Iterator[ExchangeSimulator]:
    with running_simulator(scenario()) as simulator:
        yield simulator


def _chattr(flag: str, *paths: Path) -> str | None:
    """None when `chattr` worked; else why not."""
    try:
        done = subprocess.run(["chattr", flag, *map(str, paths)], capture_output=True, text=True, timeout=10)
    except OSError as exc:
        return str(exc)
    return None if done.returncode == 0 else (done.stderr.strip() or f"exit {done.returncode}")


def test_locked_then_read_only_database_poller_lives_tells_once_records_after(
    sim: ExchangeSimulator, receiver: Receiver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "outage.db"
    config_path = write_toml(outage_config(sim, receiver, db, "outage", monkeypatch), tmp_path / "marginwatch.toml")
    log = tmp_path / "poller.log"
    upgrade(f"sqlite:///{db}")
    poller = start_poller(config_path, log)
    figures: dict[str, Any] = {}

    def received(fragment: str) -> list[str]:
        return [s for s in receiver.subjects() if fragment in s]

    def set_health(health: float) -> None:
        (document,) = rows(db, "SELECT latest_document FROM accounts WHERE latest_document IS NOT NULL")[0]
        sim.set_mark("binanceusdm", SYMBOL, mark_for_health(json.loads(document), health))

    try:
        wait_for(lambda: rows(db, "SELECT count(*) FROM account_snapshots")[0][0] > 0, what="a poll")
        set_health(1.05)
        wait_for(lambda: received("CRITICAL · binanceusdm/main"), what="the account's alert")

        # 1. another writer holds the lock: every write of the poller's times out
        blocker = sqlite3.connect(db, timeout=30, isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")
        fails_before = receiver.count("/ping/outage/fail")
        try:
            wait_for(lambda: received("poller cannot write the database (database is locked)"), what="locked alert")
            wait_for(lambda: receiver.count("/ping/outage/fail") >= fails_before + 3, what="failed cycles")
            assert poller.poll() is None, log.read_text()
            set_health(2.0)  # the account recovers meanwhile: told once the database is back
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        wait_for(lambda: received("RESOLVED · marginwatch · poller writes the database again"), what="resolution")
        wait_for(lambda: received("RESOLVED · binanceusdm/main"), what="the account's resolution")
        figures["locked_fail_pings"] = receiver.count("/ping/outage/fail") - fails_before

        # 2. the database file turns read-only while the account's alert fires again
        set_health(1.05)
        wait_for(lambda: len(received("CRITICAL · binanceusdm/main")) >= 2, what="the account's second alert")
        frozen = [db, db.with_name(db.name + "-wal")]
        problem = _chattr("+i", *frozen)
        if problem is None:
            try:
                wait_for(
                    lambda: [s for s in received("poller cannot write the database") if "locked" not in s],
                    what="read-only alert",
                )
                fails = receiver.count("/ping/outage/fail")
                wait_for(lambda: receiver.count("/ping/outage/fail") >= fails + 3, what="failed cycles")
                assert poller.poll() is None, log.read_text()
            finally:
                assert _chattr("-i", *frozen) is None
            wait_for(
                lambda: len(received("RESOLVED · marginwatch · poller writes the database again")) >= 2,
                what="second resolution",
            )
        assert poller.poll() is None, log.read_text()
    finally:
        poller.send_signal(signal.SIGTERM)
        poller.wait(30)
        _chattr("-i", db, db.with_name(db.name + "-wal"))
    assert poller.returncode == 0, log.read_text()

    monitor = rows(
        db,
        "SELECT t.kind, n.subject_line, d.channel, d.status FROM alert_transitions t "
        "JOIN alert_notifications n ON n.id = t.notification_id JOIN alert_deliveries d ON d.notification_id = n.id "
        "WHERE t.subject = 'monitor:database' AND t.account_id IS NULL ORDER BY t.id",
    )
    told = [s for s in receiver.subjects() if "poller cannot write" in s]
    causes = [s.split("(", 1)[1] for s in told]
    assert len(causes) == len(set(causes)), f"a cause was told twice: {told}"  # once per cause
    assert [kind for kind, *_ in monitor] == ["fired", "resolved"] * len(told)
    assert all(channel == "webhook:ops" and status == "sent" for _, _, channel, status in monitor), monitor
    assert {subject for kind, subject, *_ in monitor if kind == "fired"} == set(told)
    assert rows(db, "PRAGMA integrity_check") == [("ok",)]
    figures["causes"] = [c.rstrip(")") for c in causes]
    figures["outages_seconds"] = [
        s.split("(after ")[1].rstrip(")") for s in receiver.subjects() if "writes the database again" in s
    ]
    figures["fail_pings_total"] = receiver.count("/ping/outage/fail")
    figures["poller_alive_throughout"] = True  # asserted above, in each outage
    if problem is not None:  # the lock part ran; the read-only part needs chattr (ext4 and root)
        require_system_part(problem, "chattr +i (an immutable database file)", "run as root on ext4 or xfs")
    (Path(__file__).parent / "artifacts").mkdir(exist_ok=True)
    (Path(__file__).parent / "artifacts" / "database-outage.json").write_text(json.dumps(figures))
