"""The Prometheus endpoint's cost on a large book: 500 accounts, each with the demo
snapshot's positions, in SQLite. Prints the store read done after each cycle (on the
exporter's thread, off the event loop) and one scrape (the text Prometheus fetches), with
the number of series and the size of that text.

`python -m bench metrics`
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from prometheus_client import generate_latest

from margin.snapshot import parse_snapshot
from poller.rows import Polled, account_rows
from readmodels.exporter import MetricsExporter
from store import repo
from store.db import make_engine, session_factory, upgrade

ROOT = Path(__file__).resolve().parents[1]
ACCOUNTS = 500


def _median_ms(fn: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def main() -> None:
    doc = json.loads((ROOT / "examples" / "demo-snapshot.json").read_text())
    with tempfile.TemporaryDirectory() as scratch:
        url = f"sqlite:///{Path(scratch) / 'metrics-bench.db'}"
        upgrade(url)
        sessions = session_factory(make_engine(url))
        names = [f"acct-{i:03d}" for i in range(ACCOUNTS)]
        ids = repo.ensure_accounts(sessions, [repo.AccountInfo(n, "binanceusdm", "USDT") for n in names])
        now = datetime.now(UTC)
        for name in names:
            account_doc = {**doc, "account": name}
            ((row, positions),) = account_rows([Polled(parse_snapshot(account_doc), now, 1.5)])
            repo.record_snapshot(sessions, ids[name], row, positions, json.dumps(account_doc))
        exporter = MetricsExporter(sessions, 90.0, dict.fromkeys(names, "binanceusdm"), 30.0, ["email"])
        try:
            read = _median_ms(exporter.refresh, 5)
            text = generate_latest(exporter.registry)
            scrape = _median_ms(lambda: generate_latest(exporter.registry), 5)
        finally:
            exporter.close()
    series = sum(1 for line in text.decode().splitlines() if line and not line.startswith("#"))
    per_account = len(doc["positions"])
    print(f"{ACCOUNTS} accounts x {per_account} positions: store read after a cycle {read:.0f} ms (exporter thread)")
    print(f"scrape: {scrape:.0f} ms, {series:,} series, {len(text) / 1e3:.0f} kB of text")


if __name__ == "__main__":
    main()
