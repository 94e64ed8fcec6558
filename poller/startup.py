"""The start phase of a poller: before the first cycle, every key's permissions and every
venue's markets, all at once."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

from config.settings import AccountConfig
from connectors.errors import ConnectorError, KeyRefused, classify
from poller.report import CycleReport
from store import repo

if TYPE_CHECKING:
    from poller.loop import Poller

log = logging.getLogger("poller.loop")


async def start_phase(poller: Poller) -> CycleReport:
    """At start, before the first cycle: every key's permissions and every venue's
    markets, all at once. A refused or rejected key is stored and its account paused
    now; a passing fault is left to the first cycle."""
    report = CycleReport(started=poller.clock())
    clock = time.monotonic()

    async def prepare(account: AccountConfig) -> tuple[AccountConfig, ConnectorError | None]:
        connector = poller.connectors[account.name]
        budget = (account.timeout_seconds or poller.config.account_timeout) * 3
        try:
            permissions = await asyncio.wait_for(connector.prepare(), timeout=budget)
        except Exception as exc:  # classified and stored below; none escapes
            return account, classify(exc)
        return account, KeyRefused(permissions.message) if permissions.status == "refused" else None

    for account, error in await asyncio.gather(*(prepare(a) for a in poller.accounts)):
        if error is None or error.kind == "temporary":
            report.stored.append(account.name)
            continue
        pause = "refused" if isinstance(error, KeyRefused) else "paused"
        await poller.write(
            repo.record_failure,
            poller.sessions,
            poller.ids[account.name],
            poller.clock(),
            error.kind,
            error.message,
            error.cause,
            pause,
        )
        report.failed[account.name] = error.message
    await poller.record_key_checks(poller.accounts)
    report.seconds = time.monotonic() - clock
    log.info(
        "start: %d keys checked, %d refused or rejected, in %.1f s",
        len(report.stored) + len(report.failed),
        len(report.failed),
        report.seconds,
    )
    return report
