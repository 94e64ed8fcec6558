"""Alert latency, streamed mark to inbox (issue 19): 200 accounts on three venues on the
exchange simulator (its own process, marks moved 1,000 times a second), the real poller
(`run_poller`: polls every 30 s, streams on, alerts by email to an aiosmtpd server on
loopback). Every account holds one BTC long, at leverages spread from 3x to 10x; one per
venue at 14x is the nearest to danger. Two measures, each from the mark move to the SMTP
acceptance of the CRITICAL email:

- one account crossing: that account's mark moved just past its critical alert price, six
  times per venue (the mark then restored and the account's confirming poll awaited);
- a cascade: each venue's BTC mark moved 40 % down, past every holder's liquidation, so all
  of the venue's holders (about 67) are told at once.

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

from sqlalchemy import select

from bench.poll import VENUES
from bench.stream_load import LoadedSimulator, accounts_config, percentile, stream_scenario
from config.settings import parse_config
from poller.report import CycleReport
from poller.runtime import run_poller
from store.db import make_engine, session_factory
from store.schema import Account, AccountSnapshot, PositionSnapshot

INTERVAL = 30.0
SYMBOL = "BTC/USDT:USDT"
LEVERAGES = (3.0, 10.0)  # spread over the accounts
HOT = 14.0  # the first account of each venue: the nearest to danger
CASCADE = 0.40  # past every holder's liquidation (3x: about 33 % down)
ROUNDS = 6  # single crossings per venue


def leveraged_scenario(accounts: int) -> dict[str, Any]:
    """bench/stream_load.py's accounts with one position each (the venue's first market,
    BTC, long, entered at the mark), leverages spread over LEVERAGES, the venue's first
    account at HOT."""
    doc = stream_scenario(accounts, positions=1)
    marks = {v: {m["symbol"]: m for m in doc["markets"][v]} for v in doc["markets"]}
    low, high = LEVERAGES
    for i, account in enumerate(doc["accounts"]):
        [position] = account["positions"]
        market = marks[account["venue"]][position["symbol"]]
        notional = position["contracts"] * market["contract_size"] * market["mark_price"]
        leverage = HOT if i < len(VENUES) else low + (high - low) * (i % 97) / 96
        account["wallet_balance"] = round(notional / leverage, 2)
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

    def critical_since(self, since: float, account: str = "") -> list[tuple[float, str]]:
        with self.lock:
            return [
                (t, s)
                for t, s in self.accepted
                if t >= since and s.startswith("CRITICAL") and (not account or f"/{account} " in s)
            ]


def _config(doc: dict[str, Any], base_url: str, workdir: Path, smtp_port: int) -> Any:
    base = accounts_config(doc, base_url, workdir).model_dump(mode="json", by_alias=True, exclude_none=True)
    base["poll_interval_seconds"] = INTERVAL
    base["alerts"] = {
        "recovery_dwell_minutes": 0,
        "email": {"host": "127.0.0.1", "port": smtp_port, "security": "none", "to": ["risk@example.org"]},
    }
    return parse_config(base)


async def _until(check: Any, timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        await asyncio.sleep(0.02)
    return False


def _latest(sessions: Any, name: str) -> Any:
    """The account's latest stored snapshot and its BTC position row."""
    with sessions() as session:
        account = session.scalars(select(Account).where(Account.name == name)).one()
        snap = session.get(AccountSnapshot, account.latest_snapshot_id) if account.latest_snapshot_id else None
        rows = (
            session.scalars(select(PositionSnapshot).where(PositionSnapshot.snapshot_id == snap.id)).all()
            if snap
            else []
        )
        return snap, next((r for r in rows if r.symbol == SYMBOL), None)


async def _single_crossings(sim: LoadedSimulator, sessions: Any, inbox: TimedInbox, doc: dict[str, Any]) -> list[float]:
    latencies: list[float] = []
    anchors = sim.marks()
    for venue in VENUES:
        [hot] = [a["name"] for a in doc["accounts"][: len(VENUES)] if a["venue"] == venue]
        for _ in range(ROUNDS):
            snap, row = _latest(sessions, hot)
            if snap is None or row is None or snap.level != 0 or row.critical_price_down is None:
                print(f"  {venue}: {hot} is not OK with a critical price; skipped")
                break
            sent = await asyncio.to_thread(sim.cross, venue, SYMBOL, row.critical_price_down * 0.999)
            if not await _until(lambda sent=sent, hot=hot: inbox.critical_since(sent, hot)):
                print(f"  {venue}: {hot} not told within 60 s")
                break
            latencies.append(inbox.critical_since(sent, hot)[0][0] - sent)
            restored = await asyncio.to_thread(sim.cross, venue, SYMBOL, anchors[venue][SYMBOL])
            # its confirming poll at the restored mark: OK again, its watches armed again
            await _until(
                lambda hot=hot, restored=restored: (
                    (s := _latest(sessions, hot)[0]) is not None
                    and s.source is None
                    and s.level == 0
                    and s.taken_at.timestamp() > restored
                )
            )
    return latencies


async def _cascade(sim: LoadedSimulator, inbox: TimedInbox, doc: dict[str, Any]) -> list[float]:
    latencies: list[float] = []
    holders = {v: sum(1 for a in doc["accounts"] if a["venue"] == v and _holds(a)) for v in VENUES}
    marks = sim.marks()
    for venue in VENUES:
        sent = await asyncio.to_thread(sim.cross, venue, SYMBOL, marks[venue][SYMBOL] * (1 - CASCADE))
        await _until(lambda venue=venue, sent=sent: len(inbox.critical_since(sent)) >= holders[venue])
        got = inbox.critical_since(sent)
        latencies.extend(t - sent for t, _ in got[: holders[venue]])
        if len(got) < holders[venue]:
            print(f"  {venue}: {len(got)} of {holders[venue]} holders told within 60 s")
    return latencies


async def _run(config: Any, sim: LoadedSimulator, inbox: TimedInbox, doc: dict[str, Any]) -> dict[str, Any]:
    stop = asyncio.Event()
    cycles: list[CycleReport] = []
    poller = asyncio.create_task(run_poller(config, stop=stop, on_cycle=cycles.append, secrets_file={}))
    sessions = session_factory(make_engine(config.database_url))
    try:
        while not cycles:
            if poller.done():
                poller.result()
            await asyncio.sleep(0.1)
        await asyncio.sleep(3.0)  # the streams subscribed to the symbols the first poll found
        sim.start_load()
        await asyncio.sleep(2.0)
        single = await _single_crossings(sim, sessions, inbox, doc)
        cascade = await _cascade(sim, inbox, doc)
        sim.stop_load()
        streamed_cycles = len(cycles)
    finally:
        stop.set()
        await poller
    return {"single": single, "cascade": cascade, "cycle_seconds": cycles[0].seconds, "cycles": streamed_cycles}


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
    cycle = result["cycle_seconds"]
    print(
        f"accounts                          {accounts} on {len(VENUES)} venues, 1,000 mark updates/s, poll every 30 s"
    )
    for name, values in (("one account crossing", result["single"]), ("cascade, all holders", result["cascade"])):
        if not values:
            print(f"{name:34s}no alert arrived")
            continue
        p50, p99 = percentile(sorted(values), 50), percentile(sorted(values), 99)
        # polling alone: the rest of the interval (uniform), then a cycle, then the same delivery
        poll_p50, poll_p99 = INTERVAL * 0.50 + cycle + p50, INTERVAL * 0.99 + cycle + p99
        print(f"{name:34s}{p50 * 1000:7.0f} ms p50 {p99 * 1000:7.0f} ms p99  ({len(values)} alerts)")
        print(f"  by polling alone (computed)     {poll_p50 * 1000:7.0f} ms p50 {poll_p99 * 1000:7.0f} ms p99")
        print(f"  ratio                           {poll_p50 / p50:7.0f}x p50 {poll_p99 / p99:7.0f}x p99")
    print(f"first cycle                       {cycle:.2f} s")
    print(f"poll cycles while measuring       {result['cycles']} (the alerts came from the streams)")


if __name__ == "__main__":
    main()
