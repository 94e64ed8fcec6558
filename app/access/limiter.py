"""How fast anyone may guess the team password: one limiter for the whole process.

- Per client address: the first `free` failures cost nothing; each one after waits twice
  as long as the one before (1 s, 2 s, 4 s, ... up to `cap`, 15 min) before the next attempt
  from that address is heard.
- Globally: the same over every address together, from `global_free` failures, up to
  `global_cap` (a minute), so that many addresses (a botnet, or a forged
  X-Forwarded-For) still guess slowly. The price: while an attack is on, a rightful user
  may wait up to that minute too.
- A success clears its address; failures are forgotten after `forget_after` of quiet.
- `HashSlots` bounds the password-hash work: at most `slots` PBKDF2 checks (half a second
  of CPU each) run at once; an attempt that finds them busy is refused at once, costing
  nothing, so guessing can never starve the app.

Pure bookkeeping with an injectable clock; app.access.web does the I/O and the logging.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

GLOBAL = "*"


@dataclass
class _Record:
    failures: int = 0
    until: float = 0.0  # no attempt is heard before this moment
    last: float = 0.0


class LoginLimiter:
    def __init__(
        self,
        *,
        free: int = 3,
        base: float = 1.0,
        cap: float = 900.0,
        global_free: int = 30,
        global_cap: float = 60.0,
        forget_after: float = 3600.0,
        max_addresses: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.free, self.base, self.cap = free, base, cap
        self.global_free, self.global_cap = global_free, global_cap
        self.forget_after = forget_after
        self.max_addresses = max_addresses
        self.clock = clock
        self._records: OrderedDict[str, _Record] = OrderedDict()

    def _record(self, key: str, now: float) -> _Record:
        record = self._records.get(key)
        if record is None or _stale(record, now, self.forget_after):
            record = _Record()
        self._records[key] = record
        self._records.move_to_end(key)
        while len(self._records) > self.max_addresses + 1:  # the oldest quiet addresses go first
            oldest = next(k for k in self._records if k != GLOBAL)
            del self._records[oldest]
        return record

    def wait(self, address: str) -> float:
        """Seconds before an attempt from `address` is heard (0: now)."""
        now = self.clock()
        until = max(self._peek(address).until, self._peek(GLOBAL).until)
        return max(0.0, until - now)

    def _peek(self, key: str) -> _Record:
        record = self._records.get(key)
        if record is None or _stale(record, self.clock(), self.forget_after):
            return _Record()
        return record

    def failed(self, address: str) -> tuple[int, float]:
        """Count a wrong password from `address`: (its failures in a row, the wait now imposed)."""
        now = self.clock()
        record = self._bump(address, now, self.free, self.cap)
        self._bump(GLOBAL, now, self.global_free, self.global_cap)
        return record.failures, self.wait(address)

    def _bump(self, key: str, now: float, free: int, cap: float) -> _Record:
        record = self._record(key, now)
        record.failures += 1
        record.last = now
        excess = record.failures - free
        if excess >= 0:
            record.until = now + min(self.base * 2.0 ** min(excess, 60), cap)
        return record

    def succeeded(self, address: str) -> None:
        self._records.pop(address, None)


def _stale(record: _Record, now: float, forget_after: float) -> bool:
    return record.failures > 0 and now - record.last > forget_after and now >= record.until


class HashSlots:
    """At most `slots` password checks at once; `take()` is False when all are busy."""

    def __init__(self, slots: int = 1) -> None:
        self.slots = slots
        self.busy = 0

    def take(self) -> bool:
        if self.busy >= self.slots:
            return False
        self.busy += 1
        return True

    def give(self) -> None:
        self.busy = max(0, self.busy - 1)
