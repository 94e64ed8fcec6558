"""Streamed marks under load (issue 19): 200 accounts on three venues on the exchange
simulator (its own process), marks moved 1,000 times a second server-side, and one mark at
a time pushed across the accounts' watches.

Prints the latency from the simulated mark crossing (the venue's event time in the pushed
frame) to the Streams' crossing callback (connectors/streams.py), p50 and p99. That is the
streaming part of issue 19's figure; the whole one (to SMTP acceptance, and by polling
alone beside it) needs the alert pipeline, which plugs into `on_crossing`. The pieces are
meant for that: `LoadedSimulator` (the simulator process with its mark load, `cross`),
`accounts_config`, `credentials`, `watches_around`.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.poll import VENUES, config_for, scenario
from config.settings import Config, StreamingConfig
from connectors.streams import Crossing, Streams, Watch

RATE = 1000.0  # mark updates per second, all venues together
AMPLITUDE = 0.0005  # the load's moves: +-0.05 % around each market's anchor
BAND = 0.02  # watches at +-2 %: the load never reaches them, a crossing move does
CROSSINGS = 30


class LoadedSimulator:
    """The simulator in its own process, its marks moved `rate` times a second."""

    def __init__(self, doc: dict[str, Any], workdir: Path, rate: float = RATE, amplitude: float = AMPLITUDE) -> None:
        path = workdir / "stream-scenario.json"
        path.write_text(json.dumps(doc))
        self.process = subprocess.Popen(
            [sys.executable, "-m", "simulator", "--scenario", str(path)], stdout=subprocess.PIPE, text=True
        )
        assert self.process.stdout is not None
        self.base_url = self.process.stdout.readline().strip()
        self.rate, self.amplitude = rate, amplitude

    def admin(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        request = urllib.request.Request(  # noqa: S310 - our own simulator on 127.0.0.1
            self.base_url + path,
            data=None if body is None else json.dumps(body).encode(),
            method=method,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310 - our own simulator on 127.0.0.1
            return json.loads(answer.read())

    def start_load(self) -> None:
        self.admin("POST", "/_admin/mark_load", {"rate": self.rate, "amplitude": self.amplitude})

    def stop_load(self) -> dict[str, Any]:
        return self.admin("DELETE", "/_admin/mark_load")

    def marks(self) -> dict[str, dict[str, float]]:
        return self.admin("GET", "/_admin/state")["marks"]

    def cross(self, venue: str, symbol: str, price: float) -> float:
        """Move a mark (it becomes the load's anchor); returns the wall time it was sent."""
        sent = time.time()
        self.admin("POST", "/_admin/mark", {"venue": venue, "symbol": symbol, "price": price})
        return sent

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(10)


def stream_scenario(accounts: int = 200, positions: int = 5) -> dict[str, Any]:
    """bench/poll.py's accounts; no liquidations (each of 1,000 moves a second would revalue
    every holder), marks pushed again every second as Binance does."""
    doc = scenario(accounts, positions)
    return {**doc, "auto_liquidate": False, "streams": {"mark_interval_seconds": 1.0}, "ohlcv_history_days": 1}


def accounts_config(doc: dict[str, Any], base_url: str, workdir: Path) -> Config:
    return config_for(doc, base_url, f"sqlite:///{workdir / 'stream-bench.db'}")


def credentials(doc: dict[str, Any]) -> dict[str, dict[str, str]]:
    creds: dict[str, dict[str, str]] = {}
    for account in doc["accounts"]:
        creds[account["name"]] = {"apiKey": account["api_key"], "secret": account["secret"]}
        if account.get("passphrase"):
            creds[account["name"]]["password"] = account["passphrase"]
    return creds


def watches_around(doc: dict[str, Any], marks: dict[str, dict[str, float]], band: float = BAND) -> dict[str, Any]:
    """account -> (symbols held, one Watch per symbol at +-band around the mark)."""
    updates: dict[str, Any] = {}
    for account in doc["accounts"]:
        symbols = sorted({p["symbol"] for p in account["positions"]})
        mark = marks[account["venue"]]
        watches = [Watch(account["name"], s, mark[s] * (1 - band), mark[s] * (1 + band), "bench") for s in symbols]
        updates[account["name"]] = (symbols, watches)
    return updates


async def _until(check: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"not within {timeout:g} s: {what}")
        await asyncio.sleep(0.01)


async def measure(doc: dict[str, Any], sim: LoadedSimulator, workdir: Path, crossings: int) -> dict[str, Any]:
    config = accounts_config(doc, sim.base_url, workdir)
    seen: list[tuple[Crossing, float]] = []
    streams = Streams(
        StreamingConfig(), config.accounts, credentials(doc), lambda c: seen.append((c, time.time())), lambda e: None
    )
    await streams.start()
    try:
        marks = sim.marks()
        streams.update_many(watches_around(doc, marks))
        await _until(lambda: all(s.state.connected for s in streams.marks.values()), "every mark stream up")
        await _until(lambda: all(a.state.connected for a in streams.accounts.values()), "every account stream up")
        sim.start_load()
        await asyncio.sleep(2.0)  # the load running before the first crossing
        before = {k: s.state.messages for k, s in streams.marks.items()}
        started = time.monotonic()
        first: list[float] = []  # per crossing move: to the first callback
        every: list[float] = []  # per account crossed
        holders = {v: sum(1 for a in doc["accounts"] if a["venue"] == v) for v in VENUES}
        for i in range(crossings):
            venue = VENUES[i % len(VENUES)]
            symbol = "BTC/USDT:USDT"
            anchor = marks[venue][symbol]
            seen.clear()
            # from a thread: a blocking call on the loop would hold up the frames it measures
            await asyncio.to_thread(sim.cross, venue, symbol, anchor * (1 - 2 * BAND))
            await _until(lambda venue=venue: len(seen) >= holders[venue], "every holder crossed")
            latencies = [at - c.timestamp / 1000 for c, at in seen if c.timestamp]
            first.append(min(latencies))
            every.extend(latencies)
            await asyncio.to_thread(sim.cross, venue, symbol, anchor)  # back, and the watches re-armed
            streams.update_many(watches_around(doc, marks))
            await asyncio.sleep(0.2)
        elapsed = time.monotonic() - started
        load = sim.stop_load()
        rate = sum(s.state.messages - before[k] for k, s in streams.marks.items()) / elapsed
        dropped = sum(s.state.dropped for s in streams.marks.values())
    finally:
        await streams.stop()
    return {"first": first, "every": every, "load": load, "received_rate": rate, "dropped": dropped}


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1] if len(values) > 1 else values[0]


def main() -> None:
    accounts = int(os.environ.get("BENCH_ACCOUNTS", "200"))
    crossings = int(os.environ.get("BENCH_CROSSINGS", str(CROSSINGS)))
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        doc = stream_scenario(accounts)
        sim = LoadedSimulator(doc, workdir)
        try:
            result = asyncio.run(measure(doc, sim, workdir, crossings))
        finally:
            sim.close()
    first, every = result["first"], result["every"]
    print(f"accounts                         {accounts} on {len(VENUES)} venues, simulator in its own process")
    print(f"mark load                        {RATE:.0f} updates/s asked, {result['load']['updates']} made")
    print(f"marks received by the streams    {result['received_rate']:8.0f} /s  ({result['dropped']} refused)")
    print(
        f"mark crossing -> callback, first {percentile(first, 50) * 1000:8.1f} ms p50 "
        f"{percentile(first, 99) * 1000:8.1f} ms p99  ({len(first)} crossings)"
    )
    print(
        f"mark crossing -> callback, all   {percentile(every, 50) * 1000:8.1f} ms p50 "
        f"{percentile(every, 99) * 1000:8.1f} ms p99  ({len(every)} account crossings)"
    )
    print("  (streams only: the alert pipeline to SMTP plugs into on_crossing; see docs/streaming.md)")


if __name__ == "__main__":
    main()
