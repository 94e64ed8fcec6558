"""What one cycle (or the start phase) of a poller did."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass
class CycleReport:
    """What one cycle did: accounts stored, failed (name -> message), skipped (paused)."""

    started: datetime
    seconds: float = 0.0
    stored: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    database_error: str | None = None  # the cause, when the database could not be written

    @property
    def ok(self) -> bool:
        """A good cycle (the heartbeat's success): the database took its writes, and not
        every account polled failed."""
        return self.database_error is None and not (self.failed and not self.stored)

    @property
    def summary(self) -> str:
        if self.database_error:
            return f"database: {self.database_error}"
        failed = f", {len(self.failed)} failed" if self.failed else ""
        return f"{len(self.stored)} stored{failed}"
