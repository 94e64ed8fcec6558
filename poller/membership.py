"""A poller's place among the pollers of one database.

- Every poller has a row in `pollers` (store.pollers): seen at each cycle's start, its
  last completed cycle at each end, its clean stop. The watchdog reads it.
- PostgreSQL: any number of pollers share the accounts through leases (store.leases),
  their cycles aligned on the database clock's interval boundaries.
- SQLite: one poller per database file (per shard), held by an exclusive lock on a file
  beside it: a second poller would double every request, so it is refused.
"""

from __future__ import annotations

import fcntl
import logging
import math
import os
import socket
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from store import leases, pollers
from store.leases import Claim

log = logging.getLogger(__name__)

# cycles start this long after an interval boundary: the database's clock, estimated
# from the last read, must be past it when the leases are claimed
START_AFTER_BOUNDARY = 0.02


class AnotherPoller(RuntimeError):
    """A poller already polls this SQLite database (and shard)."""


class SqliteLock:
    """An exclusive lock on `<database>.poller.lock`, held while this process runs (the
    kernel releases it when the process ends, however it ends)."""

    def __init__(self, database: Path, shard: tuple[int, int] | None = None) -> None:
        suffix = "" if shard is None else f"-{shard[0]}of{shard[1]}"
        self.database = database
        self.path = database.with_name(database.name + f".poller{suffix}.lock")
        self._file: IO[str] | None = None

    def acquire(self) -> None:
        handle = open(self.path, "a+", encoding="utf-8")  # held (locked) for the process's life
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise AnotherPoller(
                f"another poller already polls {self.database} ({holder}); "
                "a second one on the same SQLite file would poll every account twice. Stop it first, "
                "split the accounts with --shard i/n, or use PostgreSQL (database_url) to run several "
                "pollers that share the accounts."
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()} on {socket.gethostname()}, since {datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC\n")
        handle.flush()
        self._file = handle

    def release(self) -> None:
        if self._file is not None:
            fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
            self._file.close()
            self._file = None


def sqlite_file(url: str) -> Path | None:
    """The SQLite database file of `url` (None: not SQLite, or in memory)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database).resolve()


class Membership:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        interval_seconds: float,
        account_ids: Sequence[int],
        *,
        leasing: bool,
    ) -> None:
        self.sessions = sessions
        self.interval = interval_seconds
        self.account_ids = list(account_ids)
        self.leasing = leasing
        self.poller_id = pollers.register(sessions, interval_seconds)
        if leasing:
            leases.ensure_rows(sessions, self.account_ids)
        self.last_claim: Claim | None = None

    def begin(self, session: Session, now: datetime) -> frozenset[int] | None:
        """A cycle starts (in the cycle's first transaction, `now` the database's time):
        seen; with leases, the accounts this poller polls now (None: all of them)."""
        pollers.seen(session, self.poller_id, now)
        if not self.leasing:
            return None
        self.last_claim = leases.claim(session, self.poller_id, self.account_ids, now, self.interval)
        return self.last_claim.accounts

    def cycle_done(self) -> datetime:
        return pollers.cycle_done(self.sessions, self.poller_id)

    def next_start(self, database_now: datetime) -> float | None:
        """Seconds until the next cycle should start (aligned to the interval boundaries
        of the database's clock), or None when cycles are not aligned (one poller)."""
        if not self.leasing:
            return None
        seconds = database_now.timestamp()
        boundary = (math.floor(seconds / self.interval) + 1) * self.interval
        return boundary + START_AFTER_BOUNDARY * self.interval - seconds

    def stop(self) -> None:
        """A clean stop: recorded, and the leases end with the current interval."""
        with self.sessions.begin() as session:
            now = pollers.database_now(session)
            if self.leasing:
                leases.release(session, self.poller_id, now, self.interval)
        pollers.stopped(self.sessions, self.poller_id)
