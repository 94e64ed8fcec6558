"""The one home of "how old is this account's data, and is it stale": the status table,
the dashboard pages and the alert rules all ask here.

Ages are in seconds, never negative. A timestamp ahead of the reader's clock (a poller
whose clock runs fast, or a reader whose clock runs slow) is capped at now: its age is 0;
one ahead by more than the stale window cannot be trusted at all and counts as stale.
An account whose last `failed_polls` polls all failed is stale too, however recent its
last success looks: the feed is broken now.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from config.settings import Config


@dataclass(frozen=True)
class Staleness:
    """When data stops counting as fresh: no success for `after_seconds`, or
    `failed_polls` consecutive failed polls (None: that test is off)."""

    after_seconds: float
    failed_polls: int | None = None


@dataclass(frozen=True)
class Freshness:
    age_seconds: float | None  # since the last successful poll (None: never polled), >= 0
    stale: bool
    reason: str | None = None  # why it is stale, in words: "no success for 2 min", ...


def data_age(last_success_at: datetime | None, now: datetime) -> float | None:
    """Seconds since `last_success_at`, capped at 0 for a timestamp from the future."""
    if last_success_at is None:
        return None
    return max(0.0, (now - last_success_at).total_seconds())


def freshness(
    last_success_at: datetime | None, now: datetime, rule: Staleness, consecutive_failures: int = 0
) -> Freshness:
    """The age of an account's data and whether it is stale under `rule`."""
    if last_success_at is None:
        return Freshness(None, True, "never polled successfully")
    ahead = (last_success_at - now).total_seconds()
    age = max(0.0, -ahead)
    if ahead > rule.after_seconds:
        return Freshness(age, True, f"last success stamped {ahead:.0f} s in the future (a clock is wrong)")
    if age > rule.after_seconds:
        return Freshness(age, True, f"no successful poll for {age:.0f} s")
    if rule.failed_polls is not None and consecutive_failures >= rule.failed_polls:
        return Freshness(age, True, f"the last {consecutive_failures} polls failed")
    return Freshness(age, False)


def is_stale(last_success_at: datetime | None, now: datetime, rule: Staleness, consecutive_failures: int = 0) -> bool:
    return freshness(last_success_at, now, rule, consecutive_failures).stale


def staleness(config: Config) -> Staleness:
    """The configured rule: `stale_after_seconds` (default 3 intervals) and
    `stale_after_failed_polls` (default 5; 0 is off)."""
    return Staleness(config.stale_after, config.stale_after_failed_polls or None)
