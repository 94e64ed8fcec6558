"""More than one poller. PostgreSQL: three `marginwatch poll` processes share six accounts
through leases; one is SIGKILLed mid-cycle. From the exchange's side (the simulator's log
of authenticated requests): no account is polled twice in one interval, ever, and from
the second interval after the kill every account is polled in every interval. The alerts
of every account, the dead poller's too, are told once each. SQLite: a second poller on
the same file is refused with a clear message."""

from __future__ import annotations

import copy
import json
import math
import signal
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from simulator import ExchangeSimulator
from store.db import upgrade
from tests.alert_scenario import HEALTH_BANDS_ONLY, SYMBOL, mark_for_health, scenario, write_toml
from tests.helpers import rows, run_cli, running_simulator, start_poller
from tests.receivers import Receiver, wait_for

INTERVAL = 1.0
ACCOUNTS = [f"acct{i}" for i in range(6)]
POSITIONS = "/fapi/v3/positionRisk"


def _scenario() -> dict[str, Any]:
    doc = scenario()
    (one,) = doc["accounts"]
    doc["accounts"] = [
        {**copy.deepcopy(one), "name": name, "api_key": f"key-{name}", "secret": f"secret-{name}"} for name in ACCOUNTS
    ]
    return doc


@pytest.fixture
def sim() -> Iterator[ExchangeSimulator]:
    with running_simulator(_scenario()) as simulator:
        yield simulator


def _config(sim: ExchangeSimulator, receiver: Receiver, database_url: str, env: pytest.MonkeyPatch) -> dict[str, Any]:
    env.setenv("MW_MULTI_HOOK", f"{receiver.url}/hook/ops")
    accounts = []
    for name in ACCOUNTS:
        env.setenv(f"MW_MULTI_{name}_KEY", f"key-{name}")
        env.setenv(f"MW_MULTI_{name}_SECRET", f"secret-{name}")
        accounts.append(
            {
                "name": name,
                "exchange": "binanceusdm",
                "key_env": f"MW_MULTI_{name}_KEY",
                "secret_env": f"MW_MULTI_{name}_SECRET",
                "base_url": sim.base_url,
                "timeout_seconds": 0.8,
                # a target under the alert's 1.05: no top-up to price, so no order book is
                # fetched after each poll (cycles stay short on a busy 2-core machine)
                "target_health": 1.01,
            }
        )
    return {
        "poll_interval_seconds": INTERVAL,
        "database_url": database_url,
        "stale_after_seconds": 10,  # a busy machine's slow cycle is not what this test is about
        "alerts": {
            **HEALTH_BANDS_ONLY,  # the health bands alone: 2.0 resolves (at 20x the risk level would not)
            "recovery_dwell_minutes": 0,  # the dwell counts minutes: this run lasts seconds
            "retry_base_seconds": 0.2,
            "retry_cap_seconds": 0.5,
            "webhooks": [{"name": "ops", "url_env": "MW_MULTI_HOOK", "format": "json", "timeout_seconds": 3}],
        },
        # the leases are the subject: a streamed crossing's re-poll is a second poll in its
        # interval by design, which the count below would take for a lease broken
        "streaming": {"enabled": False},
        "accounts": accounts,
    }


def test_three_pollers_one_killed_mid_cycle(
    sim: ExchangeSimulator, receiver: Receiver, postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config_path = write_toml(_config(sim, receiver, postgres_url, monkeypatch), tmp_path / "marginwatch.toml")
    upgrade(postgres_url)
    db = psycopg.connect(postgres_url, autocommit=True)

    def query(sql: str) -> list[tuple[Any, ...]]:
        return db.execute(sql).fetchall()  # type: ignore[arg-type]

    def database_seconds() -> float:
        return query("SELECT extract(epoch FROM clock_timestamp())")[0][0].__float__()

    # every poll takes 0.2 s at the exchange: a cycle is long enough to be killed in
    sim.add_fault("binanceusdm", POSITIONS, "delay", seconds=0.2)
    logs = [tmp_path / f"poller{i}.log" for i in range(3)]
    processes = [start_poller(config_path, log) for log in logs]
    figures: dict[str, Any] = {}
    try:

        def balanced() -> bool:
            cycled = query("SELECT count(*) FROM pollers WHERE last_cycle_at IS NOT NULL")[0][0]
            held = query(
                "SELECT poller_id, count(*) FROM account_leases WHERE expires_at > "
                "(extract(epoch FROM clock_timestamp()) * 1000)::bigint GROUP BY poller_id"
            )
            return cycled == 3 and sorted(n for _, n in held) == [2, 2, 2]

        wait_for(balanced, timeout=90, what="three pollers sharing the accounts")
        all_running = time.time()
        (document,) = query("SELECT latest_document FROM accounts WHERE latest_document IS NOT NULL LIMIT 1")[0]
        sim.set_mark("binanceusdm", SYMBOL, mark_for_health(json.loads(document), 1.05))
        wait_for(lambda: len([s for s in receiver.subjects() if s.startswith("CRITICAL")]) >= 6, what="6 alerts")
        wait_for(
            lambda: query("SELECT count(*) FROM alert_deliveries WHERE status != 'sent'")[0][0] == 0,
            what="the outbox drained",
        )

        # the victim: a poller holding two accounts, killed while a cycle of its runs
        victim_id, pid = query("SELECT id, pid FROM pollers ORDER BY id LIMIT 1")[0]
        victim = next(p for p in processes if p.pid == pid)
        victim_accounts = {
            name
            for (name,) in query(
                f"SELECT a.name FROM account_leases l JOIN accounts a ON a.id = l.account_id "
                f"WHERE l.poller_id = {victim_id}"
            )
        }

        def mid_cycle() -> bool:
            ((seen, last),) = query(f"SELECT seen_at, last_cycle_at FROM pollers WHERE id = {victim_id}")
            return last is not None and seen > last

        wait_for(mid_cycle, what="the victim mid-cycle")
        victim.send_signal(signal.SIGKILL)
        victim.wait(10)
        killed_at = database_seconds()
        kill_interval = math.floor(killed_at / INTERVAL)
        wait_for(lambda: database_seconds() >= (kill_interval + 7) * INTERVAL, timeout=60, what="7 intervals")
        sim.set_mark("binanceusdm", SYMBOL, mark_for_health(json.loads(document), 2.0))
        wait_for(lambda: len([s for s in receiver.subjects() if s.startswith("RESOLVED")]) >= 6, what="resolutions")
        observed_until = math.floor(database_seconds() / INTERVAL) - 1
        wait_for(
            lambda: query("SELECT count(*) FROM alert_deliveries WHERE status != 'sent'")[0][0] == 0,
            what="the outbox drained",
        )
    finally:
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in processes:
            process.wait(30)
        sim.clear_faults()

    # the exchange's view: when each account's positions were asked for
    polls = [(t, name) for t, _, path, name in sim.signed_requests if path == POSITIONS and t >= all_running]
    per_interval = Counter((math.floor(t / INTERVAL), name) for t, name in polls)
    twice = {key: n for key, n in per_interval.items() if n > 1}
    assert not twice, f"polled twice in one interval: {twice}"
    missed = [
        (k, name)
        for k in range(kill_interval + 2, observed_until + 1)
        for name in ACCOUNTS
        if per_interval[(k, name)] == 0
    ]
    assert not missed, (
        f"not polled in an interval from the second after the kill on: "
        f"{[(k - kill_interval, n) for k, n in missed]} (observed to {observed_until - kill_interval}); "
        f"polls: {sorted((round(t - kill_interval * INTERVAL, 2), n) for t, n in polls if t > killed_at - 2)}"
        + "".join(log.read_text()[-3000:] for log in logs)
    )
    first_after = {name: min(t for t, n in polls if n == name and t > killed_at) for name in victim_accounts}
    figures["takeover_seconds"] = round(max(first_after.values()) - killed_at, 2)
    figures["intervals_observed_after_kill"] = observed_until - kill_interval
    figures["polls_checked"] = len(polls)

    # alerts: every account's CRITICAL and RESOLVED once, whichever poller evaluated them
    told = Counter(s.split(" · ")[0] + " " + s.split(" · ")[1] for s in receiver.subjects())
    assert told == Counter(
        {f"{level} binanceusdm/{name}": 1 for name in ACCOUNTS for level in ("CRITICAL", "RESOLVED")}
    )
    transitions = query(
        "SELECT a.name, t.kind FROM alert_transitions t JOIN accounts a ON a.id = t.account_id "
        "WHERE t.subject = 'health' ORDER BY t.id"
    )
    assert Counter(transitions) == Counter({(name, kind): 1 for name in ACCOUNTS for kind in ("fired", "resolved")})
    figures["alerts_told"] = sum(told.values())
    db.close()
    (Path(__file__).parent / "artifacts").mkdir(exist_ok=True)
    (Path(__file__).parent / "artifacts" / "multi-poller.json").write_text(json.dumps(figures))


def test_a_second_poller_on_one_sqlite_file_is_refused(
    sim: ExchangeSimulator, receiver: Receiver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "one.db"
    doc = _config(sim, receiver, f"sqlite:///{db}", monkeypatch)
    doc["accounts"] = doc["accounts"][:1]
    config_path = write_toml(doc, tmp_path / "marginwatch.toml")
    upgrade(f"sqlite:///{db}")
    first = start_poller(config_path, tmp_path / "first.log")
    try:
        # its first cycle done: it holds the lock, and stops cleanly on SIGTERM
        wait_for(lambda: rows(db, "SELECT count(*) FROM account_snapshots")[0][0] > 0, what="its first cycle")
        assert "pid" in (tmp_path / "one.db.poller.lock").read_text()
        code, _, err = run_cli("poll", "--config", str(config_path), "--cycles", "1")
        assert code == 2
        assert f"another poller already polls {db} (pid {first.pid} on" in err
        assert "use PostgreSQL" in err
        # one shard of the accounts beside a poller of all of them: refused too
        code, _, err = run_cli("poll", "--config", str(config_path), "--cycles", "1", "--shard", "1/2")
        assert code == 2 and "another poller already polls" in err
    finally:
        first.send_signal(signal.SIGTERM)
        first.wait(30)
    assert first.returncode == 0
    code, _, err = run_cli("poll", "--config", str(config_path), "--cycles", "1")  # its lock went with it
    assert code == 0, err
