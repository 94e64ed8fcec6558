"""Fault injection: which (venue, path) misbehaves, how, and for how many requests.

A fault with `count` applies to that many requests and then clears itself; without it, it
stays until cleared. Path "*" matches every path of the venue, and a path matches the
requests named after it: "/info" covers "/info:clearinghouseState" (Hyperliquid serves
every read from POST /info; the request type names it). The newest matching fault wins, so
a test can stack a short fault over a standing one.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

FAULT_KINDS = frozenset(
    {
        "delay",
        "timeout",
        "http429",
        "http429_retry_after",
        "http500",
        "http502",
        "http503",
        "maintenance",
        "malformed_json",
        "missing_field",
        "wrong_types",
        "connection_reset",
        "stale_timestamp",
        "error_text",
        "huge_body",
    }
)
# what "error_text" answers when no text is given: a markdown link and a remote image (a
# beacon, if rendered), HTML, and rich markup that closes a tag never opened
HOSTILE_TEXT = (
    "[/x] Service unavailable: [re-verify your API key](https://evil.example/login) "
    "![beacon](https://evil.example/pixel.png) <img src=https://evil.example/i.png> [bold]"
)
HUGE_BODY_BYTES = 64 * 1024 * 1024


@dataclass
class Fault:
    venue: str
    path: str
    kind: str
    count: int | None = None  # requests left; None: until cleared
    seconds: float | None = None  # delay, and Retry-After for http429_retry_after
    field: str | None = None  # missing_field / wrong_types: only this key, not the venue's set
    text: str | None = None  # error_text: the body of the 503 (default HOSTILE_TEXT)
    size: int | None = None  # huge_body: bytes of the 200 answer (default HUGE_BODY_BYTES)


class FaultBook:
    """The active faults; safe to use from any thread."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._lock = threading.Lock()

    def add(
        self,
        venue: str,
        path: str,
        kind: str,
        count: int | None = None,
        seconds: float | None = None,
        field: str | None = None,
        text: str | None = None,
        size: int | None = None,
    ) -> Fault:
        """Register a fault; ValueError for an unknown kind or a bad count/seconds/size."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; use one of {', '.join(sorted(FAULT_KINDS))}")
        if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count < 1):
            raise ValueError(f"count must be a positive integer or null, got {count!r}")
        if seconds is not None and (isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds < 0):
            raise ValueError(f"seconds must be a number >= 0, got {seconds!r}")
        if kind == "delay" and seconds is None:
            raise ValueError("a delay needs seconds")
        if size is not None and (isinstance(size, bool) or not isinstance(size, int) or not 0 < size <= 1 << 30):
            raise ValueError(f"size must be a number of bytes from 1 to 1 GiB, got {size!r}")
        if text is not None and not isinstance(text, str):
            raise ValueError(f"text must be a string, got {text!r}")
        path = path if path == "*" or path.startswith("/") else "/" + path
        fault = Fault(venue, path, kind, count, None if seconds is None else float(seconds), field, text, size)
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def take(self, venue: str, path: str) -> Fault | None:
        """The fault for this request, counting it; None when the request is served normally."""
        with self._lock:
            for fault in reversed(self._faults):
                if fault.venue == venue and covers(fault.path, path):
                    if fault.count is not None:
                        fault.count -= 1
                        if fault.count <= 0:
                            self._faults.remove(fault)
                    return fault
        return None

    def listing(self) -> list[dict[str, Any]]:
        with self._lock:
            return [asdict(f) for f in self._faults]


def covers(fault_path: str, path: str) -> bool:
    """Whether a fault registered for `fault_path` applies to a request named `path`."""
    return fault_path in (path, "*") or path.startswith(fault_path + ":")


def drop_fields(payload: Any, fields: Iterable[str]) -> Any:
    """`payload` with every key in `fields` removed, at any depth."""
    names = set(fields)
    return _walk(payload, lambda d: {k: v for k, v in d.items() if k not in names})


def retype_fields(payload: Any, rules: Mapping[str, Callable[[Any], Any]]) -> Any:
    """`payload` with each key in `rules` replaced by rule(old value), at any depth."""
    return _walk(payload, lambda d: {k: rules[k](v) if k in rules else v for k, v in d.items()})


def _walk(payload: Any, fix: Callable[[dict[str, Any]], dict[str, Any]]) -> Any:
    if isinstance(payload, dict):
        return fix({k: _walk(v, fix) for k, v in payload.items()})
    if isinstance(payload, list):
        return [_walk(v, fix) for v in payload]
    return payload
