"""`marginwatch watchdog`: a small process beside the pollers that alerts when none of them
has completed a cycle for `monitor.watchdog_after_intervals` poll intervals (a poller
killed, hung, or its machine gone), and again when one does. It reads the pollers' record
(store.pollers: every time there is the database's, so clocks that disagree do not
matter) and sends through every channel that needs no database (a dead poller's outbox
sender is dead too), then records what it told. A database it cannot read is an alert as
well (`monitor:watchdog`), once per cause, resolved when it can read again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker

from alerts.direct import send_direct
from alerts.monitor import MonitorEvent, compose_monitor, last_kind, message_key, record_told
from config.settings import Config
from poller.outage import DATABASE_ERRORS, cause_of
from store import pollers

log = logging.getLogger(__name__)

POLLER = "monitor:poller"
DATABASE = "monitor:watchdog"


@dataclass(frozen=True)
class Look:
    """One look at the pollers: the database's time, and the newest completed cycle."""

    now: datetime
    last_cycle_at: datetime | None
    who: str  # "host pid 123, last cycle 12:00:01 UTC" for each poller, joined


def look(session: Session) -> Look:
    now = pollers.database_now(session)
    rows = pollers.pollers(session)
    finished = [r.last_cycle_at for r in rows if r.last_cycle_at is not None]
    who = "; ".join(
        f"{r.host} pid {r.pid}: "
        + ("no cycle yet" if r.last_cycle_at is None else f"last cycle {r.last_cycle_at:%H:%M:%S} UTC")
        + (f", stopped at {r.stopped_at:%H:%M:%S} UTC" if r.stopped_at else "")
        for r in rows[:5]
    )
    return Look(now, max(finished) if finished else None, who or "no poller has ever run on this database")


class Watchdog:
    def __init__(
        self,
        config: Config,
        sessions: sessionmaker[Session],
        send: Callable[..., dict[str, str | None]] = send_direct,
    ) -> None:
        self.config = config
        self.sessions = sessions
        self.send = send
        self.limit = config.monitor.watchdog_after_intervals * config.poll_interval_seconds
        self.started_at: datetime | None = None  # the database's time at the first look
        self.silent: bool | None = None  # None: not known yet (read from the store)
        self.unreadable: tuple[MonitorEvent, dict[str, str | None]] | None = None
        self.unreadable_causes: set[str] = set()
        self.told: list[MonitorEvent] = []  # every event told, in order (for callers and tests)

    def _tell(self, event: MonitorEvent) -> dict[str, str | None]:
        message = compose_monitor(event)
        log.warning("%s", message.subject)
        outcome = self.send(
            self.config, message.subject, message.text, message.html, message.payload, message_key(event)
        )
        self.told.append(event)
        return outcome

    def _record(self, event: MonitorEvent, outcome: dict[str, str | None]) -> None:
        try:
            with self.sessions.begin() as session:
                record_told(session, self.config, event, outcome)
        except DATABASE_ERRORS as exc:  # told already; only the record is missing
            log.warning("could not record %s: %s", event.subject, cause_of(exc)[1])

    def check(self, wall_now: datetime) -> None:
        """One look, and whatever it calls for. `wall_now` stamps the events when the
        database cannot be read (its own clock cannot be asked then)."""
        try:
            with self.sessions() as session:
                seen = look(session)
            if self.silent is None:
                self.silent = last_kind(self.sessions, POLLER) == "fired"
        except DATABASE_ERRORS as exc:
            self._cannot_read(exc, wall_now)
            return
        if self.unreadable is not None:
            fired, outcome = self.unreadable
            resolved = MonitorEvent(DATABASE, "resolved", "watchdog reads the database again", seen.now)
            self._record(fired, outcome)
            self._record(resolved, self._tell(resolved))
            self.unreadable, self.unreadable_causes = None, set()
        if self.started_at is None:
            self.started_at = seen.now
            log.info("watchdog: watching the pollers' cycles; alerting after %.1f s without one", self.limit)
        reference = max(seen.last_cycle_at or self.started_at, self.started_at)
        age = (seen.now - reference).total_seconds()
        if age > self.limit and not self.silent:
            last = "never" if seen.last_cycle_at is None else f"{seen.last_cycle_at:%Y-%m-%d %H:%M:%S} UTC"
            event = MonitorEvent(
                POLLER,
                "fired",
                f"no poller has completed a cycle for {age:.1f} s"
                if age < 60
                else f"no poller has completed a cycle for {age / 60:.0f} min",
                seen.now,
                (
                    f"Expected one every {self.config.poll_interval_seconds:g} s; the last completed {last}. "
                    "No account is being watched: check the poller process and its machine.",
                    f"Pollers: {seen.who}",
                ),
            )
            self._record(event, self._tell(event))
            self.silent = True
        elif age <= self.limit and self.silent:
            event = MonitorEvent(
                POLLER,
                "resolved",
                "a poller completes cycles again",
                seen.now,
                (f"Pollers: {seen.who}",),
            )
            self._record(event, self._tell(event))
            self.silent = False
        elif self.silent is None:
            self.silent = False

    def _cannot_read(self, error: BaseException, now: datetime) -> None:
        cause, detail = cause_of(error)
        log.error("watchdog cannot read the database (%s): %s", cause, detail)
        if cause in self.unreadable_causes:
            return
        self.unreadable_causes.add(cause)
        event = MonitorEvent(
            DATABASE,
            "fired",
            f"watchdog cannot read the database ({cause})",
            now,
            (
                "The watchdog cannot tell whether any poller is running, and the dashboard and the "
                "pollers are likely failing too.",
                f"Database error: {detail}",
            ),
        )
        outcome = self._tell(event)
        if self.unreadable is None:
            self.unreadable = (event, outcome)


async def run_watchdog(
    config: Config,
    sessions: sessionmaker[Session],
    stop: asyncio.Event,
    now: Callable[[], datetime],
    every_seconds: float | None = None,
    on_check: Callable[[Watchdog], None] | None = None,
) -> Watchdog:
    """Look every `every_seconds` (default: half a poll interval, at most 10 s) until `stop`."""
    dog = Watchdog(config, sessions)
    pause = every_seconds or min(10.0, config.poll_interval_seconds / 2)
    while not stop.is_set():
        await asyncio.to_thread(dog.check, now())
        if on_check is not None:
            on_check(dog)
        try:
            await asyncio.wait_for(stop.wait(), timeout=pause)
        except TimeoutError:
            pass
    return dog
