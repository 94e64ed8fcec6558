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
# a cycle that would start later than this far into its interval waits for the next one
LATE_START_LIMIT = 0.5


class AnotherPoller(RuntimeError):
    """A poller already polls this SQLite database (and shard)."""


class SqliteLock:
    """A lock on `<database>.poller.lock`, held while this process runs (the kernel
    releases it when the process ends, however it ends). A poller without --shard locks
    the whole file; a shard i/n locks byte i: shards run side by side, and a poller of
    every account refuses to start beside any of them (and they beside it)."""

    def __init__(self, database: Path, shard: tuple[int, int] | None = None) -> None:
        self.database = database
        self.shard = shard
        self.path = database.with_name(database.name + ".poller.lock")
        self._file: IO[str] | None = None

    def acquire(self) -> None:
        handle = open(self.path, "a+", encoding="utf-8")  # held (locked) for the process's life
        length, start = (0, 0) if self.shard is None else (1, self.shard[0])
        try:
            fcntl.lockf(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB, length, start)
        except OSError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise AnotherPoller(
                f"another poller already polls {self.database} ({holder}); a second one on the same "
                "SQLite file would poll every account twice. Stop it first, split the accounts with "
                "--shard i/n, or use PostgreSQL (database_url) to run several pollers that share the "
                "accounts."
            ) from None
        handle.seek(0)
        handle.truncate()
        shard = "" if self.shard is None else f" (shard {self.shard[0]}/{self.shard[1]})"
        handle.write(
            f"pid {os.getpid()} on {socket.gethostname()}{shard}, since {datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC\n"
        )
        handle.flush()
        self._file = handle

    def release(self) -> None:
        if self._file is not None:
            self._file.close()  # closing releases the process's locks on the file
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
        of the database's clock), or None when cycles are not aligned (one poller). A
        cycle that overran into the next interval is followed at once, so that the
        interval is not lost; it is skipped only when it is (nearly) over."""
        if not self.leasing:
            return None
        seconds = database_now.timestamp()
        current = math.floor(seconds / self.interval)
        claimed = self.last_claim.interval_no if self.last_claim is not None else None
        into = seconds / self.interval - current  # how far into the current interval, 0..1
        if claimed is not None and current > claimed and into < LATE_START_LIMIT:
            return 0.0
        boundary = (current + 1) * self.interval
        return boundary + START_AFTER_BOUNDARY * self.interval - seconds

    def stop(self) -> None:
        """A clean stop: recorded, and the leases end with the current interval."""
        with self.sessions.begin() as session:
            now = pollers.database_now(session)
            if self.leasing:
                leases.release(session, self.poller_id, now, self.interval)
        pollers.stopped(self.sessions, self.poller_id)
