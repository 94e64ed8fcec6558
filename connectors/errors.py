"""The one place where exchange errors become ours, and the retry policy.

- Temporary (network, timeout, 5xx, maintenance, rate limit — ccxt's RateLimitExceeded and
  DDoSProtection, which are siblings since ccxt 4.5 —, a stale timestamp, a garbled body):
  retried with exponential backoff and jitter, inside the poll budget.
- Permanent (authentication, permission, a refused key): not retried; the poller pauses
  the account and stores the error.
- Bad data (a payload that does not normalise into a snapshot): not retried in the cycle —
  the same answer would come back —; the account stays stale with the reason stored.

Messages never carry credentials: ccxt puts the request URL in some messages, so they are
cut to the exchange's own answer.
"""

from __future__ import annotations

import asyncio
import random
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar
from urllib.parse import urlsplit

import ccxt

from connectors.guards import AnswerTooLarge

T = TypeVar("T")


class ConnectorError(Exception):
    """An account could not be read. `kind` is "temporary", "permanent" or "data"."""

    kind = "temporary"

    def __init__(self, message: str, *, cause: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.cause = cause  # the ccxt class name, when there is one


class TemporaryError(ConnectorError):
    kind = "temporary"


class PermanentError(ConnectorError):
    kind = "permanent"


class AuthError(PermanentError):
    """The exchange refused the credentials."""


class KeyRefused(PermanentError):
    """We refuse the key: it can withdraw funds."""


class DataError(ConnectorError):
    """The exchange's answer does not make a valid snapshot; `path` names the field."""

    kind = "data"

    def __init__(self, message: str, path: str = "") -> None:
        super().__init__(f"{path}: {message}" if path else message)
        self.path = path


class StaleTimestamp(TemporaryError):
    """The exchange says our clock is off: resync the time difference, then retry."""


_URL = re.compile(r"(GET|POST|DELETE|PUT) (https?://\S+)")


def _clean(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    # ccxt messages look like "binanceusdm GET https://...?signature=... 400 {...}": keep
    # the method, the path and the exchange's answer; drop the host and the query (which
    # carries the signature and, on some venues, the key).
    text = _URL.sub(lambda m: f"{m.group(1)} {urlsplit(m.group(2)).path}", text)
    return text[:500]


def classify(exc: BaseException) -> ConnectorError:
    """Map any exception from a fetch to one of ours."""
    if isinstance(exc, ConnectorError):
        return exc
    name = type(exc).__name__
    message = _clean(exc)
    if isinstance(exc, AnswerTooLarge):  # the same answer would come back: not retried in the cycle
        return DataError(message)
    if isinstance(exc, ccxt.InvalidNonce):
        return StaleTimestamp(f"stale timestamp: {message}", cause=name)
    if isinstance(exc, ccxt.AuthenticationError):  # includes PermissionDenied, AccountSuspended
        return AuthError(f"authentication failed: {message}", cause=name)
    if isinstance(exc, ccxt.RateLimitExceeded | ccxt.DDoSProtection):
        return TemporaryError(f"rate limited: {message}", cause=name)
    if isinstance(exc, ccxt.RequestTimeout | asyncio.TimeoutError | TimeoutError):
        return TemporaryError(f"timed out: {message}", cause=name)
    if isinstance(exc, ccxt.NetworkError | ccxt.BadResponse | OSError):
        return TemporaryError(f"exchange unavailable: {message}", cause=name)
    if isinstance(exc, ccxt.NotSupported):
        return PermanentError(f"not supported by the exchange: {message}", cause=name)
    if isinstance(exc, ccxt.BaseError):
        # Unknown exchange error codes land here; a monitor must not pause an account on
        # a code it has not seen, so they are retried like any passing fault.
        return TemporaryError(f"exchange error: {message}", cause=name)
    if isinstance(exc, ValueError | KeyError | TypeError):
        return DataError(f"unreadable answer ({name}: {message})")
    return TemporaryError(f"{name}: {message}", cause=name)


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter: attempt n waits up to base x 2**n seconds,
    capped; a Retry-After from the exchange is honoured when longer."""

    base_seconds: float = 0.25
    cap_seconds: float = 4.0

    def ceiling(self, attempt: int) -> float:
        """The longest wait after attempt `attempt` (0 for the first): base x 2**attempt, capped."""
        return min(self.cap_seconds, self.base_seconds * 2 ** max(0, attempt))

    def delay(self, attempt: int, retry_after: float | None = None, rng: random.Random | None = None) -> float:
        """A wait drawn from [ceiling / 2, ceiling] (the jitter spreads clients that failed
        together), or the venue's Retry-After when longer."""
        ceiling = self.ceiling(attempt)
        wait = (rng or random).uniform(ceiling / 2, ceiling)
        return max(wait, retry_after or 0.0)


async def with_retries(
    call: Callable[[], Awaitable[T]],
    *,
    deadline: float,
    policy: RetryPolicy = RetryPolicy(),
    on_stale_timestamp: Callable[[], Awaitable[object]] | None = None,
    retry_after: Callable[[], float | None] = lambda: None,
    clock: Callable[[], float] = time.monotonic,
) -> T:
    """Run `call` until it succeeds, a non-temporary error occurs, or the next wait would
    pass `deadline` (a `clock()` time). Raises the classified error."""
    attempt = 0
    while True:
        try:
            return await call()
        except Exception as raw:  # every error is classified below
            error = classify(raw)
            if error.kind != "temporary":
                raise error from raw
            wait = policy.delay(attempt, retry_after())
            if clock() + wait >= deadline:
                raise error from raw
            if isinstance(error, StaleTimestamp) and on_stale_timestamp is not None:
                await on_stale_timestamp()
            await asyncio.sleep(wait)
            attempt += 1
