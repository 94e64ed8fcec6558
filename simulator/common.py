"""What every venue module shares: the request as the venue sees it, venue errors, routes,
and number formatting (exchanges send numbers as strings)."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from simulator.scenario import AccountSpec
    from simulator.state import SimState


@dataclass(frozen=True)
class SimRequest:
    """One request, with the host stripped: `path` is what the venue's docs call the path
    ("/fapi/v3/positionRisk"), `raw_query` the query string exactly as sent (signatures
    are over the raw bytes, so it must not be re-encoded)."""

    venue: str
    host: str
    method: str
    path: str
    raw_query: str
    query: Mapping[str, str]
    headers: Mapping[str, str]
    body: str
    now_ms: int


class VenueError(Exception):
    """An answer in the venue's own error shape: HTTP status, JSON (or text) body, headers;
    a text body is sent as `content_type` (default text/html)."""

    def __init__(
        self, status: int, body: Any, headers: Mapping[str, str] | None = None, content_type: str = "text/html"
    ) -> None:
        super().__init__(f"{status} {body}")
        self.status = status
        self.body = body
        self.headers = dict(headers or {})
        self.content_type = content_type


Handler = Callable[["SimRequest", "AccountSpec | None", "SimState"], Any]


@dataclass(frozen=True)
class Route:
    """An endpoint: `signed` ones authenticate the caller and receive its account."""

    handler: Handler
    signed: bool = False
    host: str | None = None  # the host that serves it, when the venue has several


def signed(account: AccountSpec | None) -> AccountSpec:
    """The caller's account in a signed route (the server authenticates before calling)."""
    if account is None:
        raise RuntimeError("a signed route was called without an authenticated account")
    return account


@dataclass(frozen=True)
class VenueSpec:
    """A venue as the server dispatches to it.

    `error(kind, req)` builds the venue's answer for "rate_limit", "maintenance",
    "stale_timestamp" and "not_found"; `key_fields` are dropped by the missing_field fault;
    `wrong_types` maps a field name to the wrong value the wrong_types fault puts there.
    `request_name(path, body)` names a request in the request log and for faults when the
    path alone does not (Hyperliquid's one POST /info: "/info:clearinghouseState");
    `fault_kinds` are the faults the venue can show (a venue whose reads carry no
    timestamp cannot refuse one as stale).
    """

    name: str
    hosts: tuple[str, ...]
    routes: Mapping[tuple[str, str], Route]
    authenticate: Callable[[SimRequest, SimState], AccountSpec]
    error: Callable[[str, SimRequest], VenueError]
    key_fields: tuple[str, ...] = ()
    wrong_types: Mapping[str, Callable[[Any], Any]] = field(default_factory=dict)
    request_name: Callable[[str, str], str] | None = None
    fault_kinds: frozenset[str] | None = None  # None: every kind


def fixed(value: float | None, places: int = 8, none: str = "") -> str:
    """Fixed-point string, as Binance sends money ("31.02261200")."""
    if value is None or not math.isfinite(value):
        return none
    text = f"{value:.{places}f}"
    return text.lstrip("-") if float(text) == 0 else text  # never "-0.00000000"


def plain(value: float | None, places: int = 10, none: str = "") -> str:
    """Shortest fixed-point string without trailing zeros ("91000.5", "0.004")."""
    if value is None or not math.isfinite(value):
        return none
    text = f"{value:.{places}f}".rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def places_of(step: float) -> int:
    """Decimals of a tick or lot step: 0.1 -> 1, 0.001 -> 3, 1 -> 0."""
    text = plain(step, 12)
    return len(text.split(".")[1]) if "." in text else 0


def int_param(query: Mapping[str, str], key: str, default: int | None, error: Callable[[], VenueError]) -> int | None:
    """An integer query parameter (`default` when absent); `error()` is raised when it
    is not an integer."""
    raw = query.get(key)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise error() from None


def negated(value: object) -> str:
    """A size turned negative, as the wrong_types fault sends it."""
    return "-" + str(value).lstrip("-")
