"""`make soak`: 500 accounts on the exchange simulator polled every 10 s for 10 minutes,
while 20 readers query the store as the dashboard does. Reports cycles (and any that
overran the interval), reader errors ("database is locked" among them) and the poller's
memory over the run (peak RSS, and the last sample against the first after warm-up).

Sizes by environment: SOAK_ACCOUNTS (500), SOAK_INTERVAL (10 s), SOAK_SECONDS (600),
SOAK_READERS (20), SOAK_READ_PERIOD (1 s: each reader loads the overview and one account's
24 h history every second — ten times what an open dashboard does, which refreshes once an
interval).
"""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.poll import config_for, scenario, start_simulator
from config.files import write_config
from config.settings import parse_config
from readmodels.accounts import account_views
from store.db import make_engine, session_factory, upgrade
from store.freshness import staleness
from store.history import history


def _rss_kb(pid: int) -> int | None:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    match = re.search(r"VmRSS:\s+(\d+) kB", text)
    return int(match.group(1)) if match else None


def main() -> None:
    accounts = int(os.environ.get("SOAK_ACCOUNTS", "500"))
    interval = float(os.environ.get("SOAK_INTERVAL", "10"))
    seconds = float(os.environ.get("SOAK_SECONDS", "600"))
    readers = int(os.environ.get("SOAK_READERS", "20"))
    read_period = float(os.environ.get("SOAK_READ_PERIOD", "1.0"))
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        doc = scenario(accounts, 5)
        simulator, base_url = start_simulator(doc, workdir)
        database_url = f"sqlite:///{workdir / 'soak.db'}"
        settings = config_for(doc, base_url, database_url)
        settings = parse_config(
            {
                **settings.model_dump(mode="json", by_alias=True, exclude_defaults=True),
                "poll_interval_seconds": interval,
                "poll_timeout_seconds": interval * 0.8,
            }
        )
        config_path = write_config(settings, workdir / "marginwatch.toml")
        upgrade(database_url)
        log_path = workdir / "poller.log"
        with log_path.open("w") as log:
            poller = subprocess.Popen(
                [sys.executable, "-m", "cli.main", "poll", "--config", str(config_path)],
                env={**os.environ},
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        sessions = session_factory(make_engine(database_url))
        stop = threading.Event()
        errors: list[str] = []
        reads = [0] * readers

        def reader(k: int) -> None:
            rng = random.Random(k)
            while not stop.is_set():
                try:
                    with sessions() as session:
                        views = account_views(session, datetime.now(UTC), staleness(settings))
                        if views:
                            now = datetime.now(UTC)
                            history(session, rng.choice(views).account_id, now - timedelta(hours=24), now)
                    reads[k] += 1
                except Exception as exc:  # every failure is the finding: counted and shown
                    errors.append(f"{type(exc).__name__}: {exc}"[:200])
                stop.wait(read_period * rng.uniform(0.5, 1.5))

        threads = [threading.Thread(target=reader, args=(k,), daemon=True) for k in range(readers)]
        for thread in threads:
            thread.start()
        samples: list[tuple[float, int]] = []
        started = time.monotonic()
        try:
            while time.monotonic() - started < seconds and poller.poll() is None:
                rss = _rss_kb(poller.pid)
                if rss is not None:
                    samples.append((time.monotonic() - started, rss))
                time.sleep(5)
        finally:
            stop.set()
            for thread in threads:
                thread.join(10)
            stopping = time.monotonic()
            poller.terminate()  # SIGTERM: the cycle in flight finishes, then a clean exit
            try:
                poller.wait(60)
                stop_seconds: float | None = round(time.monotonic() - stopping, 1)
            except subprocess.TimeoutExpired:
                poller.kill()
                poller.wait(10)
                stop_seconds = None
            simulator.terminate()
            simulator.wait(10)
        cycles = [float(m) for m in re.findall(r"stored.* in ([0-9.]+) s", log_path.read_text())]
        stored = [int(m) for m in re.findall(r"cycle: (\d+) stored", log_path.read_text())]
        start = re.search(r"start: (\d+) keys checked, (\d+) refused or rejected, in ([0-9.]+) s", log_path.read_text())
        warm = [rss for t, rss in samples if t >= min(120.0, seconds / 3)] or [rss for _, rss in samples]
        result = {
            "accounts": accounts,
            "interval_s": interval,
            "duration_s": seconds,
            "readers": readers,
            "read_period_s": read_period,
            "start_phase_s": float(start.group(3)) if start else None,
            "keys_checked_at_start": int(start.group(1)) if start else None,
            "cycles": len(cycles),
            # a cycle longer than the interval delays the next one: that is a missed cycle
            "cycles_over_interval": sum(1 for c in cycles if c > interval),
            "mean_cycle_s": round(sum(cycles) / len(cycles), 2) if cycles else None,
            "max_cycle_s": max(cycles) if cycles else None,
            "accounts_stored_min": min(stored) if stored else 0,
            "stop_after_sigterm_s": stop_seconds,
            "exit_status": poller.returncode,
            "reads": sum(reads),
            "reader_errors": len(errors),
            "database_locked": sum("locked" in e for e in errors),
            "peak_rss_mb": round(max(r for _, r in samples) / 1024, 1) if samples else None,
            "rss_after_warmup_first_mb": round(warm[0] / 1024, 1) if warm else None,
            "rss_last_mb": round(samples[-1][1] / 1024, 1) if samples else None,
        }
    print(json.dumps(result, indent=1))
    if errors:
        print("first reader errors:", *errors[:5], sep="\n  ")
