"""The poll cycle: 200 accounts with 5 positions each on the exchange simulator (its own
process), concurrent as the poller runs it, against the same fetches one after another;
and the database bytes per account-day at 1-minute polling.

Goal (issue "store and poller"): <= 2 s per cycle and >= 10x the sequential fetches.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import text

from config.settings import Config, parse_config
from poller.loop import Poller
from poller.rows import Polled, account_rows
from poller.runtime import build_connectors, build_market_data
from simulator.__main__ import DEMO
from store import repo
from store.db import make_engine, session_factory, upgrade

VENUES = ("binanceusdm", "bybit", "okx")


def scenario(accounts: int, positions: int, seed: int = 11) -> dict[str, Any]:
    """`accounts` accounts spread over three venues, each with `positions` positions."""
    rng = random.Random(seed)
    demo = json.loads(DEMO.read_text())
    markets = demo["markets"]
    result = []
    for i in range(accounts):
        venue = VENUES[i % 3]
        symbols = [m["symbol"] for m in markets[venue]]
        held = []
        for j in range(positions):
            market = markets[venue][j % len(symbols)]
            side = "long" if (j // len(symbols)) % 2 == 0 else "short"  # a symbol twice: hedged
            notional = rng.uniform(2_000, 40_000)
            contracts = notional / market["mark_price"] / market["contract_size"]
            step = 1.0 if venue == "okx" else 0.001
            held.append(
                {
                    "symbol": market["symbol"],
                    "side": side,
                    "contracts": max(step, round(contracts / step) * step),
                    "entry_price": market["mark_price"] * rng.uniform(0.95, 1.05),
                    "margin_mode": "cross",
                    "isolated_margin": None,
                    "leverage": 20,
                }
            )
        result.append(
            {
                "venue": venue,
                "name": f"{venue}-{i}",
                "api_key": f"key-{i}",
                "secret": f"secret-{i}",
                "passphrase": "pass" if venue == "okx" else None,
                "permissions": {"trade": False, "withdraw": False},
                "collateral": "USDT",
                "wallet_balance": rng.uniform(20_000, 200_000),
                "positions": held,
            }
        )
    return {"seed": seed, "random_walk": {"enabled": False}, "markets": markets, "accounts": result}


def start_simulator(doc: dict[str, Any], workdir: Path) -> tuple[subprocess.Popen[str], str]:
    path = workdir / "scenario.json"
    path.write_text(json.dumps(doc))
    process = subprocess.Popen(
        [sys.executable, "-m", "simulator", "--scenario", str(path)], stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    return process, process.stdout.readline().strip()


def config_for(doc: dict[str, Any], base_url: str, database_url: str) -> Config:
    accounts = []
    for i, account in enumerate(doc["accounts"]):
        os.environ[f"MW_BENCH_{i}_KEY"] = account["api_key"]
        os.environ[f"MW_BENCH_{i}_SECRET"] = account["secret"]
        entry = {
            "name": account["name"],
            "exchange": account["venue"],
            "key_env": f"MW_BENCH_{i}_KEY",
            "secret_env": f"MW_BENCH_{i}_SECRET",
            "base_url": base_url,
        }
        if account["passphrase"]:
            os.environ[f"MW_BENCH_{i}_PASS"] = account["passphrase"]
            entry["passphrase_env"] = f"MW_BENCH_{i}_PASS"
        accounts.append(entry)
    return parse_config(
        {"poll_interval_seconds": 30, "poll_timeout_seconds": 20, "database_url": database_url, "accounts": accounts}
    )


async def measure_cycles(config: Config, cycles: int) -> tuple[list[float], float]:
    upgrade(config.database_url)
    sessions = session_factory(make_engine(config.database_url))
    connectors, problems = build_connectors(config, {})
    assert not problems, problems
    markets = build_market_data(config)  # as `marginwatch poll` runs: market data enrichment on
    poller = Poller(config, sessions, connectors, markets=markets)
    try:
        warm = await poller.cycle()  # markets, key checks and tiers: once a day, not per cycle
        assert len(warm.stored) == len(config.accounts), warm.failed
        times = []
        for _ in range(cycles):
            report = await poller.cycle()
            assert not report.failed, report.failed
            times.append(report.seconds)
        started = time.perf_counter()
        for name in connectors:  # the same fetches, one after another
            await connectors[name].fetch_snapshot()
        sequential = time.perf_counter() - started
    finally:
        await poller.close()
        for market in {id(m): m for m in markets.values()}.values():
            await market.close()
    return times, sequential


def bytes_per_account_day(workdir: Path, positions: int = 5, samples: int = 2000) -> tuple[float, float]:
    """Database growth per raw snapshot (with its positions) and per hourly row, SQLite."""
    url = f"sqlite:///{workdir / 'size.db'}"
    upgrade(url)
    engine = make_engine(url)
    sessions = session_factory(engine)
    doc = scenario(1, positions)["accounts"][0]
    markets = {m["symbol"]: m for m in scenario(1, positions)["markets"][doc["venue"]]}
    snapshot_doc = {
        "exchange": doc["venue"],
        "account": "a",
        "collateral": "USDT",
        "wallet_balance": doc["wallet_balance"],
        "positions": [
            {
                **p,
                "contract_size": markets[p["symbol"]]["contract_size"],
                "mark_price": markets[p["symbol"]]["mark_price"],
                "maintenance_margin_rate": 0.005,
            }
            for p in doc["positions"]
        ],
    }
    from margin.snapshot import parse_snapshot

    snap = parse_snapshot(snapshot_doc)
    ids = repo.ensure_accounts(sessions, [repo.AccountInfo("a", doc["venue"], "USDT")])

    def size() -> int:
        with engine.connect() as conn:
            conn.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
            pages = conn.execute(text("PRAGMA page_count")).scalar_one()
            free = conn.execute(text("PRAGMA freelist_count")).scalar_one()
            page = conn.execute(text("PRAGMA page_size")).scalar_one()
        return (pages - free) * page

    start = datetime(2026, 1, 1, tzinfo=UTC)
    before = size()
    ((row, rows),) = account_rows([Polled(snap, start, 1.5)])
    for i in range(samples):
        repo.record_snapshot(sessions, ids["a"], {**row, "taken_at": start + timedelta(minutes=i)}, rows)
    per_snapshot = (size() - before) / samples
    before = size()
    repo.apply_retention(sessions, start + timedelta(minutes=samples, days=7), keep_days=7)
    hours = samples / 60
    # rows removed free their pages; what remains is the hourly rows
    per_hour = max(0.0, (size() - (before - per_snapshot * samples)) / hours)
    return per_snapshot, per_hour


def main() -> None:
    accounts = int(os.environ.get("BENCH_ACCOUNTS", "200"))
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        doc = scenario(accounts, 5)
        process, base_url = start_simulator(doc, workdir)
        try:
            config = config_for(doc, base_url, f"sqlite:///{workdir / 'bench.db'}")
            times, sequential = asyncio.run(measure_cycles(config, 3))
        finally:
            process.terminate()
            process.wait(10)
        cycle = sum(times) / len(times)
        print(f"accounts x positions            {accounts} x 5, simulator in its own process")
        print(
            f"poll cycle (mean of {len(times)})          {cycle:8.3f} s   (goal <= 2 s) "
            f"[{', '.join(f'{t:.2f}' for t in times)}]"
        )
        print(f"same fetches one after another  {sequential:8.3f} s")
        print(f"concurrency gain                {sequential / cycle:8.1f} x   (goal >= 10 x)")
        per_snapshot, per_hour = bytes_per_account_day(workdir)
        day = per_snapshot * 1440
        year_50 = 50 * (7 * day + 365 * 24 * per_hour)
        print(f"bytes per snapshot (5 positions) {per_snapshot:8.0f} B")
        print(f"bytes per account-day, raw       {day / 1e6:8.2f} MB at 1-minute polling")
        print(f"bytes per account-day, hourly    {24 * per_hour / 1e3:8.2f} kB after retention")
        print(f"50 accounts for a year           {year_50 / 1e9:8.3f} GB (7 days raw + hourly; goal < 1 GB)")
