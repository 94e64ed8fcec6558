"""A poller that cannot write its database keeps running: it retries with a doubling
backoff, tells a CRITICAL `monitor:database` alert through every channel that needs no
database (once per cause), and when the database takes writes again records what it told
and queues the resolution in the outbox."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import exc as sa_exc
from sqlalchemy.orm import Session, sessionmaker

from alerts.direct import send_direct
from alerts.monitor import MonitorEvent, compose_monitor, message_key, notify, record_told
from config.settings import Config
from connectors.errors import RetryPolicy

log = logging.getLogger(__name__)

# Errors raised by the database driver (locked, read-only, disk full, server gone) and the
# pool (no connection to be had); a poller survives these, not its own bugs.
DATABASE_ERRORS: tuple[type[BaseException], ...] = (sa_exc.DBAPIError, sa_exc.TimeoutError)
SUBJECT = "monitor:database"

# (pattern in the driver's message, cause in words): one alert per cause
CAUSES = (
    (r"database is locked|lock timeout|could not obtain lock", "database is locked"),
    (r"readonly|read-only|read only", "database is read-only"),
    (r"disk is full|no space left|disk full|could not extend", "disk full"),
    (r"disk i/o error|input/output error", "disk I/O error"),
    (r"unable to open database", "database file cannot be opened"),
    (
        r"connection refused|could not connect|server closed|terminating connection|connection.*(lost|reset)",
        "database server unreachable",
    ),
)


def cause_of(error: BaseException) -> tuple[str, str]:
    """(cause, the driver's first line): the cause groups repeats of one problem."""
    original = getattr(error, "orig", None) or error
    detail = (str(original).strip().splitlines() or [type(original).__name__])[0][:300]
    lowered = detail.lower()
    for pattern, cause in CAUSES:
        if re.search(pattern, lowered):
            return cause, detail
    return type(original).__name__, detail


@dataclass
class Told:
    event: MonitorEvent
    outcome: dict[str, str | None] = field(default_factory=dict)
    sending: asyncio.Task[dict[str, str | None]] | None = None


class Outage:
    """The state of one poller's database trouble, from its first failed write to its
    recording once writes work again."""

    def __init__(
        self, config: Config, send: Callable[..., dict[str, str | None]] = send_direct, base_seconds: float = 1.0
    ) -> None:
        self.config = config
        self.send = send
        self.base_seconds = base_seconds
        self.since: datetime | None = None
        self.failures = 0
        self.told: dict[str, Told] = {}

    @property
    def active(self) -> bool:
        return self.since is not None

    def failed(self, error: BaseException, now: datetime) -> str:
        """A write failed: count it, and tell its cause if not told yet (in the background:
        the retries go on meanwhile). Returns the cause."""
        cause, detail = cause_of(error)
        self.since = self.since or now
        self.failures += 1
        log.error("database write failed (%s): %s; retrying", cause, detail)
        if cause not in self.told:
            event = MonitorEvent(
                SUBJECT,
                "fired",
                f"poller cannot write the database ({cause})",
                now,
                (
                    f"The poller on {socket.gethostname()} (pid {os.getpid()}) keeps running and retries, "
                    "but while it cannot write, no snapshot is stored and no account alert can be evaluated: "
                    "the accounts are not being watched.",
                    f"Database error: {detail}",
                    f"Database: {_where(self.config.database_url)}",
                ),
            )
            message = compose_monitor(event)
            told = Told(event)
            told.sending = asyncio.ensure_future(
                asyncio.to_thread(
                    self.send,
                    self.config,
                    message.subject,
                    message.text,
                    message.html,
                    message.payload,
                    message_key(event),
                )
            )
            self.told[cause] = told
        return cause

    def retry_after(self, interval_seconds: float) -> float:
        """Seconds to the next attempt: doubling from base_seconds, at most one interval."""
        return RetryPolicy(self.base_seconds, interval_seconds).ceiling(self.failures - 1)

    async def settle(self) -> None:
        """Wait for the direct sends still on their way (each bounded by its channel's timeout)."""
        for told in self.told.values():
            if told.sending is not None:
                told.outcome = await told.sending
                told.sending = None

    def record(self, sessions: sessionmaker[Session], now: datetime) -> int | None:
        """Writes work again: store every alert told (with how each channel took it) and
        queue the resolution. One transaction; raises (and stays active) if it fails.
        Returns the resolution's notification id. Call settle() first."""
        if self.since is None:
            return None
        seconds = (now - self.since).total_seconds()
        resolved = MonitorEvent(
            SUBJECT,
            "resolved",
            f"poller writes the database again (after {seconds:.0f} s)",
            now,
            (
                f"{self.failures} attempts failed since {self.since:%Y-%m-%d %H:%M:%S} UTC "
                f"({', '.join(self.told) or 'no cause'}).",
                "Snapshots fetched meanwhile were not stored; polling goes on.",
            ),
        )
        with sessions.begin() as session:
            for told in self.told.values():
                record_told(session, self.config, told.event, told.outcome)
            notification_id = notify(session, self.config, resolved)
        log.warning("database writable again after %.0f s; %d failed attempts recorded", seconds, self.failures)
        self.since, self.failures, self.told = None, 0, {}
        return notification_id


def _where(url: str) -> str:
    """The database URL without its password."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # a URL we cannot parse is shown as nothing rather than leaked
        return "(unparsable URL)"
