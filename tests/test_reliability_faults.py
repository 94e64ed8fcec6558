"""Breaking the exchanges on purpose (the simulator's fault injection), one venue and one
endpoint at a time, through the real poller: it keeps running, the other accounts keep
updating, the broken one is marked stale with the reason stored, the right alert fires,
no stored snapshot is altered or lost, and it recovers when the fault clears.

The outcome of every case is written to tests/artifacts/reliability-faults.json (the
table in docs/reliability.md)."""

from __future__ import annotations

import asyncio
import copy
import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from config.settings import parse_config
from poller.loop import Poller
from poller.runtime import build_connectors
from readmodels.accounts import account_views
from simulator import ExchangeSimulator
from store.db import make_engine, session_factory, upgrade
from store.schema import AccountSnapshot, AlertState, PollError

FIXTURE = Path(__file__).parent / "fixtures" / "simulator" / "scenario.json"
HYPERLIQUID = json.loads((FIXTURE.parent / "hyperliquid.json").read_text())
ARTIFACTS = Path(__file__).parent / "artifacts"
CREDS = {  # venue -> (key, secret, passphrase); Hyperliquid: (wallet address, -, -)
    "binanceusdm": ("bn-key", "bn-secret", None),
    "bybit": ("by-key", "by-secret", None),
    "okx": ("ok-key", "ok-secret", "ok-pass"),
    "hyperliquid": (HYPERLIQUID["accounts"][0]["wallet_address"], None, None),
}
# Hyperliquid answers balance and positions from one request (clearinghouseState), so its
# balance and positions cases break the same request, each through the field read there.
ENDPOINTS = {  # venue -> (balance path, field the normaliser reads there; positions path, field)
    "binanceusdm": ("/fapi/v3/account", "crossWalletBalance", "/fapi/v3/positionRisk", "markPrice"),
    "bybit": ("/v5/account/wallet-balance", "walletBalance", "/v5/position/list", "markPrice"),
    "okx": ("/api/v5/account/balance", "eq", "/api/v5/account/positions", "markPx"),
    "hyperliquid": ("/info:clearinghouseState", "accountValue", "/info:clearinghouseState", "positionValue"),
}
# Cases a venue cannot show: Hyperliquid's reads carry no timestamp and no key.
NOT_APPLICABLE = {
    ("hyperliquid", "stale_timestamp"): "n/a: reads carry no timestamp to be stale",
    ("hyperliquid", "authentication failure midway"): "n/a: reads need no key (the wallet address alone)",
}
EVERY_KIND = [
    "timeout",
    "delay",
    "connection_reset",
    "http429",
    "http429_retry_after",
    "http500",
    "http502",
    "http503",
    "maintenance",
    "malformed_json",
    "missing_field",
    "wrong_types",
    "stale_timestamp",
]
BALANCE_KINDS = ["timeout", "http500", "malformed_json", "missing_field", "wrong_types"]
BUDGET = 1.0  # each account's budget per cycle, retries included
STALE_AFTER = 15.0
# The poller runs on a clock the test moves: each fault cycle happens 20 s after the last
# good one, so the broken account's data is stale by then, as in a real outage.
STEP = timedelta(seconds=20)


class Clock:
    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset


@dataclass
class Case:
    venue: str
    endpoint: str
    kind: str
    path: str | None = None
    field: str | None = None

    @property
    def label(self) -> str:
        return f"{self.venue} {self.endpoint} {self.kind}"


def every_case() -> list[Case]:
    result = []
    for venue, (balance, balance_field, positions, positions_field) in ENDPOINTS.items():
        for kind in EVERY_KIND:
            result.append(Case(venue, "positions", kind, positions, positions_field))
        for kind in BALANCE_KINDS:
            result.append(Case(venue, "balance", kind, balance, balance_field))
        result.append(Case(venue, "positions", "vanishing position"))
        result.append(Case(venue, "key", "authentication failure midway"))
    return result


def cases() -> list[Case]:
    """The cases each venue can show."""
    return [c for c in every_case() if (c.venue, c.kind) not in NOT_APPLICABLE]


def _scenario() -> dict[str, Any]:
    doc = json.loads(FIXTURE.read_text())
    for account in doc["accounts"]:
        if account["venue"] == "okx":
            account["permissions"]["withdraw"] = False
    doc["markets"].update(HYPERLIQUID["markets"])
    doc["accounts"] += HYPERLIQUID["accounts"]
    return doc


def _key_of(account: dict[str, Any]) -> str | None:
    return account.get("api_key") or account.get("wallet_address")


def _config(base_url: str, db: str, env: pytest.MonkeyPatch) -> Any:
    accounts = []
    for venue, (key, secret, passphrase) in CREDS.items():
        prefix = f"MW_FAULT_{venue.upper()}"
        entry = {"name": venue, "exchange": venue, "base_url": base_url, "timeout_seconds": BUDGET}
        if secret is None:  # Hyperliquid: the wallet address alone
            env.setenv(f"{prefix}_WALLET", key)
            entry.update(wallet_address_env=f"{prefix}_WALLET", collateral="USDC")
        else:
            env.setenv(f"{prefix}_KEY", key)
            env.setenv(f"{prefix}_SECRET", secret)
            entry.update(key_env=f"{prefix}_KEY", secret_env=f"{prefix}_SECRET")
        if passphrase:
            env.setenv(f"{prefix}_PASS", passphrase)
            entry["passphrase_env"] = f"{prefix}_PASS"
        accounts.append(entry)
    return parse_config(
        {
            "poll_interval_seconds": 5,
            "database_url": db,
            "stale_after_seconds": STALE_AFTER,
            "accounts": accounts,
            "alerts": {"email": {"host": "127.0.0.1", "port": 9, "to": ["x@y.z"]}},
        }
    )


def _stored(sessions) -> dict[int, tuple]:  # sessions: a sessionmaker
    with sessions() as session:
        rows = session.execute(select(AccountSnapshot)).scalars().all()
        return {r.id: (r.account_id, r.taken_at, r.equity, r.maintenance_margin, r.health) for r in rows}


def test_every_fault_on_every_venue(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sim = ExchangeSimulator(copy.deepcopy(_scenario()))
    sim.start()
    db = f"sqlite:///{tmp_path / 'faults.db'}"
    config = _config(sim.base_url, db, monkeypatch)
    upgrade(db)
    sessions = session_factory(make_engine(db))
    results: list[dict[str, Any]] = []
    problems: list[str] = []
    clock = Clock()

    async def main() -> None:
        connectors, _ = build_connectors(config, {})
        # the test moves time by hand: the poller's clock is not capped at the database's
        poller = Poller(config, sessions, connectors, alerts_wake=asyncio.Event(), now=clock, cap_clock=False)
        try:
            await poller.start()  # key checks and markets, as `marginwatch poll` does first
            warm = await poller.cycle()
            assert sorted(warm.stored) == sorted(CREDS), warm.failed
            for case in cases():
                results.append(await _run(case, poller, sim, sessions, config, clock, problems))
        finally:
            await poller.close()

    try:
        asyncio.run(main())
    finally:
        sim.stop()
        ARTIFACTS.mkdir(exist_ok=True)
        skipped = [
            {"case": c.label, "outcome": NOT_APPLICABLE[(c.venue, c.kind)]} for c in every_case() if c not in cases()
        ]
        (ARTIFACTS / "reliability-faults.json").write_text(json.dumps(results + skipped, indent=1, default=str))
    assert not problems, "\n".join(problems)
    assert len(results) == len(cases()) >= 78


async def _run(
    case: Case, poller: Poller, sim: ExchangeSimulator, sessions, config, clock: Clock, problems: list[str]
) -> dict[str, Any]:
    before = _stored(sessions)
    errors_before = _count(sessions, PollError)
    if case.kind == "vanishing position":
        key = CREDS[case.venue][0]
        account = next(a for a in _scenario()["accounts"] if _key_of(a) == key)
        sim.set_positions(case.venue, key, account["positions"][:-1])
    elif case.kind == "authentication failure midway":
        sim.revoke_key(case.venue, CREDS[case.venue][0])
    else:
        seconds = BUDGET + 2 if case.kind == "delay" else 0.05 if case.kind == "http429_retry_after" else None
        field = case.field if case.kind in ("missing_field", "wrong_types") else None
        sim.add_fault(case.venue, case.path, case.kind, seconds=seconds, field=field)
    clock.offset += STEP
    started = time.monotonic()
    report = await poller.cycle()
    seconds = time.monotonic() - started
    others = sorted(set(CREDS) - {case.venue})
    expect_failure = case.kind != "vanishing position"
    outcome = {
        "case": case.label,
        "cycle_seconds": round(seconds, 2),
        "stored": sorted(report.stored),
        "error": report.failed.get(case.venue),
    }

    def check(condition: bool, what: str) -> None:
        if not condition:
            problems.append(f"{case.label}: {what} ({outcome})")

    check(all(o in report.stored for o in others), "the other accounts were not updated")
    check(seconds < BUDGET + 3.0, "the cycle overran the account's budget")
    after = _stored(sessions)
    check(all(after.get(i) == row for i, row in before.items()), "a stored snapshot was altered or lost")
    check(len(after) == len(before) + len(report.stored), "snapshots stored do not match the cycle")
    with sessions() as session:
        views = {v.name: v for v in account_views(session, clock(), config.stale_after)}
        data_alert = session.scalar(
            select(AlertState.level).where(
                AlertState.account_id == views[case.venue].account_id, AlertState.subject == "data"
            )
        )
    outcome["alert"] = {0: "none", 1: "WARNING (stale data)", 2: "CRITICAL (not polled)"}.get(data_alert or 0)
    if expect_failure:
        check(case.venue in report.failed, "the broken account was not reported failed")
        check(_count(sessions, PollError) == errors_before + 1, "the error was not stored")
        check(views[case.venue].stale or views[case.venue].state != "active", "the broken account is not stale")
        wanted = 2 if case.kind == "authentication failure midway" else 1
        check(data_alert == wanted, f"the data alert is {data_alert}, not {wanted}")
    else:
        check(case.venue in report.stored, "the account with a vanished position was not stored")
        check(not views[case.venue].stale and not data_alert, "fresh data was reported stale")
    check(all(not views[o].stale for o in others), "a healthy account went stale")
    # recovery
    sim.clear_faults()
    sim.reset()
    clock.offset += STEP
    recovered = await poller.cycle()
    if case.kind == "authentication failure midway":
        outcome["after"] = "paused until restart (a bad key is not retried every cycle)"
        check(case.venue in recovered.skipped, "a paused account was polled again")
        # a restart: a new poller gives paused accounts one more try (a key may have been fixed)
        restarted = Poller(
            config, sessions, poller.connectors, alerts_wake=poller.alerts_wake, now=clock, cap_clock=False
        )
        try:
            recovered = await restarted.cycle()
        finally:
            restarted.writer.shutdown(wait=True)  # its connectors are the first poller's, closed with it
    outcome["recovered"] = case.venue in recovered.stored
    check(case.venue in recovered.stored, "no recovery after the fault cleared")
    with sessions() as session:
        cleared = session.scalar(
            select(AlertState.level).where(
                AlertState.account_id == views[case.venue].account_id, AlertState.subject == "data"
            )
        )
    check(not cleared, "the data alert did not resolve after recovery")
    return outcome


def _count(sessions, table) -> int:
    with sessions() as session:
        return len(session.scalars(select(table)).all())
