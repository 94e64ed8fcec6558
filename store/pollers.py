"""The pollers' own record (table `pollers`) and the database's clock.

Every time here is the database's: pollers on several machines, and the watchdog, compare
them alike whatever their own clocks say (a poller whose clock runs an hour fast still
records its cycles at the right time). With SQLite the database's clock is the machine's.
"""

from __future__ import annotations

import os
import socket
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select, text, update
from sqlalchemy.orm import Session, sessionmaker

from store.schema import PollerProcess

FORGET_AFTER_DAYS = 7


def database_now(session: Session) -> datetime:
    """The database server's clock, as an aware UTC datetime."""
    if session.get_bind().dialect.name == "postgresql":
        value = session.execute(text("SELECT clock_timestamp()")).scalar_one()
        return value.astimezone(UTC)
    seconds = session.execute(text("SELECT (julianday('now') - 2440587.5) * 86400.0")).scalar_one()
    return datetime.fromtimestamp(float(seconds), UTC)


def register(sessions: sessionmaker[Session], interval_seconds: float) -> int:
    """A row for this process (host, pid); returns its id. Rows of pollers gone for a
    week are dropped."""
    with sessions.begin() as session:
        now = database_now(session)
        session.execute(delete(PollerProcess).where(PollerProcess.seen_at < now - timedelta(days=FORGET_AFTER_DAYS)))
        row = PollerProcess(
            host=socket.gethostname()[:255],
            pid=os.getpid(),
            started_at=now,
            seen_at=now,
            interval_seconds=interval_seconds,
        )
        session.add(row)
        session.flush()
        return int(row.id)


def seen(session: Session, poller_id: int, now: datetime) -> None:
    """Alive at `now`: a cycle starts. Only there, so that a poller that dies is counted
    out of the live ones (store.leases) at the same pace wherever in its cycle it died."""
    session.execute(update(PollerProcess).where(PollerProcess.id == poller_id).values(seen_at=now))


def cycle_done(sessions: sessionmaker[Session], poller_id: int) -> datetime:
    """A cycle completed: the watchdog's evidence. Returns the database's time."""
    with sessions.begin() as session:
        now = database_now(session)
        session.execute(update(PollerProcess).where(PollerProcess.id == poller_id).values(last_cycle_at=now))
        return now


def stopped(sessions: sessionmaker[Session], poller_id: int) -> None:
    with sessions.begin() as session:
        now = database_now(session)
        session.execute(update(PollerProcess).where(PollerProcess.id == poller_id).values(stopped_at=now))


def pollers(session: Session) -> list[PollerProcess]:
    """Every poller ever registered, the most recently active first."""
    return list(session.scalars(select(PollerProcess).order_by(PollerProcess.seen_at.desc(), PollerProcess.id)))
