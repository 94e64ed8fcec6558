"""Stream faults: which venue's websocket connections misbehave, how, and for how many
data frames (applied by ws_common.StreamSession; docs/simulator.md, "Stream faults")."""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass
from typing import Any

CHANNELS = ("public", "private")
STREAM_FAULT_KINDS = frozenset({"silent", "duplicate", "out_of_order"})


@dataclass
class StreamFault:
    """`silent`: the venue's connections send nothing, not even pongs, until cleared.
    `duplicate`: each data frame is sent twice. `out_of_order`: a data frame is held back and
    sent after the next one. `count`: data frames it applies to (None: until cleared)."""

    venue: str
    kind: str
    channel: str = "*"  # "public", "private" or "*"
    count: int | None = None


class StreamFaults:
    """The active stream faults; safe to use from any thread."""

    def __init__(self) -> None:
        self._faults: list[StreamFault] = []
        self._lock = threading.Lock()

    def add(self, venue: str, kind: str, channel: str = "*", count: int | None = None) -> StreamFault:
        """Register a fault; ValueError names a bad kind, channel or count."""
        if kind not in STREAM_FAULT_KINDS:
            raise ValueError(f"unknown stream fault kind {kind!r}; use one of {', '.join(sorted(STREAM_FAULT_KINDS))}")
        if channel not in (*CHANNELS, "*"):
            raise ValueError(f"channel must be public, private or *, got {channel!r}")
        if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count < 1):
            raise ValueError(f"count must be a positive integer, got {count!r}")
        if kind == "silent" and count is not None:
            raise ValueError("a silent fault lasts until cleared: it takes no count")
        fault = StreamFault(venue, kind, channel, count)
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def silent(self, venue: str, channel: str) -> bool:
        with self._lock:
            return any(f.kind == "silent" and _matches(f, venue, channel) for f in self._faults)

    def take(self, venue: str, channel: str, kind: str) -> bool:
        """Whether this data frame gets `kind`, counting it."""
        with self._lock:
            for fault in reversed(self._faults):
                if fault.kind == kind and _matches(fault, venue, channel):
                    if fault.count is not None:
                        fault.count -= 1
                        if fault.count <= 0:
                            self._faults.remove(fault)
                    return True
        return False

    def listing(self) -> list[dict[str, Any]]:
        with self._lock:
            return [asdict(f) for f in self._faults]


def _matches(fault: StreamFault, venue: str, channel: str) -> bool:
    return fault.venue == venue and fault.channel in (channel, "*")
