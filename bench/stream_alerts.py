"""Alert latency, streamed mark to inbox (issue 19): 200 accounts on three venues on the
exchange simulator (its own process, marks moved 1,000 times a second), the real poller
(`run_poller`: polls every 30 s, streams on, alerts by email to an aiosmtpd server on
loopback). One venue's BTC mark at a time is moved across every holder's critical alert
price; each holder's CRITICAL email is timed from the move to its SMTP acceptance.

Printed beside it: the same by polling alone. A crossing lands at a random phase of the
30 s interval, so polling alone tells it after the rest of the interval (uniform over
0-30 s) plus a cycle's own time (measured here, the first cycle's) plus the same delivery.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench.poll import VENUES
from bench.stream_load import LoadedSimulator, accounts_config, percentile, stream_scenario
from config.settings import parse_config
from poller.report import CycleReport
from poller.runtime import run_poller

INTERVAL = 30.0
SYMBOL = "BTC/USDT:USDT"
LEVERAGE = 10.0  # each account: one BTC long at 10x, so a 12 % fall is past its liquidation
DROP = 0.12


def leveraged_scenario(accounts: int) -> dict[str, Any]:
    """bench/stream_load.py's accounts with one position each (the venue's first market,
    BTC, long), the wallet a tenth of the notional."""
    doc = stream_scenario(accounts, positions=1)
    marks = {v: {m["symbol"]: m for m in doc["markets"][v]} for v in doc["markets"]}
    for account in doc["accounts"]:
        [position] = account["positions"]
        market = marks[account["venue"]][position["symbol"]]
        notional = position["contracts"] * market["contract_size"] * market["mark_price"]
        account["wallet_balance"] = round(notional / LEVERAGE, 2)
        position["entry_price"] = market["mark_price"]
    return doc


class TimedInbox:
    """An aiosmtpd handler noting when each message was accepted, by account."""

    def __init__(self) -> None:
        self.accepted: list[tuple[float, str]] = []  # (wall time, subject)
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self.lock:
            self.accepted.append((time.time(), str(message["Subject"])))
        return "250 OK"

    def critical_since(self, since: float) -> list[tuple[float, str]]:
        with self.lock:
            return [(t, s) for t, s in self.accepted if t >= since and s.startswith("CRITICAL")]


def _config(doc: dict[str, Any], base_url: str, workdir: Path, smtp_port: int) -> Any:
    base = accounts_config(doc, base_url, workdir).model_dump(mode="json", by_alias=True, exclude_none=True)
    base["poll_interval_seconds"] = INTERVAL
    base["alerts"] = {
        "recovery_dwell_minutes": 0,
        "email": {"host": "127.0.0.1", "port": smtp_port, "security": "none", "to": ["risk@example.org"]},
    }
    return parse_config(base)


async def _run(config: Any, sim: LoadedSimulator, inbox: TimedInbox, doc: dict[str, Any]) -> dict[str, Any]:
    stop = asyncio.Event()
    cycles: list[CycleReport] = []
    poller = asyncio.create_task(run_poller(config, stop=stop, on_cycle=cycles.append, secrets_file={}))
    holders = {v: [a["name"] for a in doc["accounts"] if a["venue"] == v and _holds(a)] for v in VENUES}
    latencies: list[float] = []
    try:
        while not cycles:
            if poller.done():
                poller.result()
            await asyncio.sleep(0.1)
        await asyncio.sleep(3.0)  # the streams subscribed to the symbols the first poll found
        sim.start_load()
        await asyncio.sleep(2.0)
        marks = sim.marks()
        for venue in VENUES:
            sent = await asyncio.to_thread(sim.cross, venue, SYMBOL, marks[venue][SYMBOL] * (1 - DROP))
            wanted = len(holders[venue])
            deadline = time.monotonic() + 60
            while len(inbox.critical_since(sent)) < wanted and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            got = inbox.critical_since(sent)
            latencies.extend(t - sent for t, _ in got[:wanted])
            if len(got) < wanted:
                print(f"  {venue}: {len(got)} of {wanted} holders told within 60 s")
        sim.stop_load()
        streamed_cycles = len(cycles)
    finally:
        stop.set()
        await poller
    return {"latencies": latencies, "cycle_seconds": cycles[0].seconds, "cycles": streamed_cycles}


def _holds(account: dict[str, Any]) -> bool:
    return any(p["symbol"] == SYMBOL for p in account["positions"])


def main() -> None:
    from aiosmtpd.controller import Controller

    from tests.conftest import free_port

    accounts = int(os.environ.get("BENCH_ACCOUNTS", "200"))
    inbox = TimedInbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            workdir = Path(tmp)
            doc = leveraged_scenario(accounts)
            sim = LoadedSimulator(doc, workdir)
            try:
                result = asyncio.run(_run(_config(doc, sim.base_url, workdir, port), sim, inbox, doc))
            finally:
                sim.close()
    finally:
        controller.stop()
    latencies = sorted(result["latencies"])
    if not latencies:
        print("no alert arrived")
        return
    p50, p99 = percentile(latencies, 50), percentile(latencies, 99)
    cycle = result["cycle_seconds"]
    # polling alone: the rest of the interval (uniform), then a cycle, then the same delivery
    poll_p50, poll_p99 = INTERVAL * 0.50 + cycle + p50, INTERVAL * 0.99 + cycle + p99
    print(
        f"accounts                          {accounts} on {len(VENUES)} venues, 1,000 mark updates/s, poll every 30 s"
    )
    print(f"crossing -> SMTP, streamed {p50 * 1000:8.0f} ms p50 {p99 * 1000:8.0f} ms p99  ({len(latencies)} alerts)")
    print(
        f"by polling alone (computed) {poll_p50 * 1000:8.0f} ms p50 {poll_p99 * 1000:8.0f} ms p99 (cycle {cycle:.2f} s)"
    )
    print(f"ratio                             {poll_p50 / p50:8.0f}x p50 {poll_p99 / p99:8.0f}x p99")
    print(f"poll cycles while measuring       {result['cycles']} (the alerts came from the streams)")


if __name__ == "__main__":
    main()
