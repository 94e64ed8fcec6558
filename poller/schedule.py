"""When a poller cycles: every poll interval; sooner after a cycle the database failed
(a doubling backoff, at most one interval: poller.outage); with leases, on the interval
boundaries of the database's clock (poller.membership), so that every poller's cycle for
interval k starts in interval k. Each cycle is reported to the heartbeat."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from poller.report import CycleReport

if TYPE_CHECKING:
    from poller.loop import Poller

log = logging.getLogger(__name__)


async def run_cycles(
    poller: Poller,
    stop: asyncio.Event,
    cycles: int | None = None,
    on_cycle: Callable[[CycleReport], None] | None = None,
) -> None:
    """Start, then cycle every poll interval until `stop` is set (or `cycles` have run).
    After a cycle the database failed, the next comes sooner (doubling backoff); with
    leases, cycles start on the database clock's interval boundaries."""
    await poller.start()
    if poller.heartbeat is not None:
        poller.heartbeat.start()
    done = 0
    while not stop.is_set() and (cycles is None or done < cycles):
        started = time.monotonic()
        report = await poller.cycle()
        done += 1
        if on_cycle:
            try:
                on_cycle(report)
            except Exception:
                # a report that cannot be shown (a display bug, hostile text) must not stop
                # the watching: it is logged, and the next cycle comes on time
                log.exception("the cycle report could not be shown")
        if poller.heartbeat is not None:
            poller.heartbeat.cycle(report.ok, report.summary, report.seconds)
        wait = next_wait(poller, started, report)
        if wait > 0 and (cycles is None or done < cycles):
            try:
                await asyncio.wait_for(stop.wait(), timeout=wait)
            except TimeoutError:
                pass


def next_wait(poller: Poller, started: float, report: CycleReport) -> float:
    """Seconds until the next cycle."""
    interval = poller.config.poll_interval_seconds
    if report.database_error is not None:
        return poller.outage.retry_after(interval)
    database = poller.database_clock()
    if poller.membership is not None and database is not None:
        aligned = poller.membership.next_start(database)
        if aligned is not None:
            return aligned
    return interval - (time.monotonic() - started)
