"""The poller against the exchange simulator: three accounts on three venues, one of them
timing out; the others get a snapshot every interval; the broken one goes stale with its
error stored. SIGTERM finishes the cycle in flight."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from config.settings import parse_config
from poller.runtime import run_poller
from readmodels.accounts import account_views
from simulator import ExchangeSimulator
from store import repo
from store.db import make_engine, session_factory
from store.schema import AccountSnapshot, PollError
from tests.alert_scenario import write_toml
from tests.helpers import keyed_account, running_simulator

FIXTURE = Path(__file__).parent / "fixtures" / "simulator" / "scenario.json"


def _scenario() -> dict[str, Any]:
    doc = json.loads(FIXTURE.read_text())
    next(a for a in doc["accounts"] if a["venue"] == "okx")["permissions"]["withdraw"] = False
    return doc


@pytest.fixture
def sim() -> Iterator[ExchangeSimulator]:
    with running_simulator(_scenario()) as simulator:
        yield simulator


def _config(
    sim: ExchangeSimulator, db: str, env: pytest.MonkeyPatch, interval: float = 2.0, timeout: float = 1.0
) -> dict:
    creds = {
        "binanceusdm": ("bn-key", "bn-secret", None),
        "bybit": ("by-key", "by-secret", None),
        "okx": ("ok-key", "ok-secret", "ok-pass"),
    }
    accounts = [
        keyed_account(
            env,
            f"MW_POLLER_{venue.upper()}",
            *keys,
            name=venue,
            exchange=venue,
            base_url=sim.base_url,
            timeout_seconds=timeout,
        )
        for venue, keys in creds.items()
    ]
    return {"poll_interval_seconds": interval, "database_url": db, "stale_after_seconds": 6.0, "accounts": accounts}


def test_one_broken_account_never_holds_up_the_others(
    sim: ExchangeSimulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An exchange that never answers costs its own account its budget and nothing else: the
    others are stored every cycle. (How long a cycle takes is `make bench`'s business: a busy
    machine must not fail this test.)"""
    db = f"sqlite:///{tmp_path / 'poller.db'}"
    config = parse_config(_config(sim, db, monkeypatch, interval=0.5, timeout=4.0))
    sim.add_fault("okx", "/api/v5/account/positions", "timeout")
    cycles: list[Any] = []
    asyncio.run(run_poller(config, cycles=3, on_cycle=cycles.append, secrets_file={}))

    assert [sorted(c.stored) for c in cycles] == [["binanceusdm", "bybit"]] * 3, [c.failed for c in cycles]
    assert all(set(c.failed) == {"okx"} for c in cycles), [c.failed for c in cycles]
    sessions = session_factory(make_engine(db))
    with sessions() as session:
        ids = {a.name: a.id for a in repo.accounts(session)}
        for name in ("binanceusdm", "bybit"):
            times = session.scalars(
                select(AccountSnapshot.taken_at)
                .where(AccountSnapshot.account_id == ids[name])
                .order_by(AccountSnapshot.taken_at)
            ).all()
            assert len(times) == 3  # one snapshot a cycle
        assert repo.snapshot_count(session, ids["okx"]) == 0
        errors = session.scalars(select(PollError).where(PollError.account_id == ids["okx"])).all()
        assert len(errors) == 3 and all(e.kind == "temporary" and "timed out" in e.message for e in errors)
        views = {v.name: v for v in account_views(session, datetime.now(UTC), config.stale_after)}
    assert views["okx"].stale and views["okx"].state == "active" and "timed out" in views["okx"].last_error
    with sessions() as session:
        ordered = account_views(session, datetime.now(UTC), config.stale_after)
    # an account nobody can see into comes right after known danger
    assert next(v for v in ordered if v.level != "critical").name == "okx"
    assert not views["binanceusdm"].stale and views["binanceusdm"].health is not None


def test_authentication_failure_pauses_the_account(
    sim: ExchangeSimulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = f"sqlite:///{tmp_path / 'poller.db'}"
    doc = _config(sim, db, monkeypatch)
    monkeypatch.setenv("MW_POLLER_BYBIT_SECRET", "wrong")
    config = parse_config(doc)
    cycles: list[Any] = []
    asyncio.run(run_poller(config, cycles=2, on_cycle=cycles.append, secrets_file={}))
    assert "bybit" in cycles[0].failed and "bybit" in cycles[1].skipped  # not retried every cycle
    with session_factory(make_engine(db))() as session:
        bybit = next(a for a in repo.accounts(session) if a.name == "bybit")
    assert bybit.state == "paused" and "authentication failed" in bybit.state_reason


def test_sigterm_finishes_the_cycle_in_flight(
    sim: ExchangeSimulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = f"sqlite:///{tmp_path / 'poller.db'}"
    config_path = tmp_path / "marginwatch.toml"
    doc = _config(sim, db, monkeypatch, interval=30.0, timeout=3.0)
    sim.add_fault("bybit", "/v5/position/list", "delay", seconds=1.5)  # a cycle takes ~1.5 s
    write_toml(doc, config_path)
    process = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "poll", "--config", str(config_path)],
        env={**os.environ},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120  # a guard against a hang, not a speed limit
    before = len(sim.requests)
    while time.monotonic() < deadline and "/v5/position/list" not in [p for *_, p in sim.requests[before:]]:
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)  # while bybit's positions are still on their way
    _, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert "cycle: 3 stored" in err  # the cycle in flight was finished and written
    with session_factory(make_engine(db))() as session:
        assert all(repo.snapshot_count(session, a.id) == 1 for a in repo.accounts(session))


def test_snapshot_and_status_commands(sim: ExchangeSimulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`marginwatch snapshot --account` prints a snapshot `marginwatch risk` reads;
    `marginwatch status` lists every account, worst first."""
    from tests.helpers import run_cli

    db = f"sqlite:///{tmp_path / 'cli.db'}"
    config_path = tmp_path / "marginwatch.toml"
    write_toml(_config(sim, db, monkeypatch), config_path)
    code, out, err = run_cli("snapshot", "--account", "okx", "--config", str(config_path))
    assert code == 0, err
    doc = json.loads(out)
    assert doc["exchange"] == "okx" and len(doc["positions"]) == 2
    snapshot_file = tmp_path / "okx.json"
    snapshot_file.write_text(out)
    code, out, _ = run_cli("risk", str(snapshot_file), "--format", "json")
    assert code == 0 and json.loads(out)["account"]["health"] > 1
    code, _, err = run_cli("snapshot", "--account", "nobody", "--config", str(config_path))
    assert code == 2 and "no account named 'nobody'" in err

    asyncio.run(run_poller(parse_config(_config(sim, db, monkeypatch)), cycles=1, secrets_file={}))
    code, out, _ = run_cli("status", "--config", str(config_path))
    assert code == 0
    assert all(name in out for name in ("binanceusdm/b", "bybit/bybit", "okx/okx")), out


def test_shards_split_the_accounts_between_pollers(
    sim: ExchangeSimulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two pollers with --shard 1/2 and 2/2 on one database poll every account once."""
    from poller.loop import in_shard, parse_shard

    names = [f"acct-{i}" for i in range(200)]
    halves = [{n for n in names if in_shard(n, (i, 2))} for i in (1, 2)]
    assert halves[0].isdisjoint(halves[1]) and halves[0] | halves[1] == set(names)
    assert 60 < len(halves[0]) < 140  # crc32 spreads them
    with pytest.raises(ValueError, match="1 <= i <= n"):
        parse_shard("3/2")
    db = f"sqlite:///{tmp_path / 'shards.db'}"
    config = parse_config(_config(sim, db, monkeypatch))
    stored: list[str] = []
    for shard in ((1, 2), (2, 2)):
        asyncio.run(
            run_poller(config, shard=shard, cycles=1, secrets_file={}, on_cycle=lambda c: stored.extend(c.stored))
        )
    assert sorted(stored) == ["binanceusdm", "bybit", "okx"]  # each exactly once
