"""store.freshness: the one rule for the age of an account's data and whether it is stale."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from store.freshness import Staleness, data_age, freshness, is_stale

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
RULE = Staleness(after_seconds=90.0, failed_polls=5)


def test_age_is_never_negative_and_a_timestamp_far_ahead_is_stale() -> None:
    assert data_age(None, NOW) is None
    assert data_age(NOW - timedelta(seconds=30), NOW) == 30.0
    assert data_age(NOW + timedelta(seconds=3593), NOW) == 0.0  # capped at now, never "−3593 s"
    slightly_ahead = freshness(NOW + timedelta(seconds=2), NOW, RULE)
    assert slightly_ahead.age_seconds == 0.0 and not slightly_ahead.stale
    far_ahead = freshness(NOW + timedelta(hours=1), NOW, RULE)
    assert far_ahead.stale and far_ahead.age_seconds == 0.0 and "future" in (far_ahead.reason or "")


def test_stale_by_age_by_failures_or_never_polled() -> None:
    assert is_stale(None, NOW, RULE)
    assert not is_stale(NOW - timedelta(seconds=89), NOW, RULE)
    assert is_stale(NOW - timedelta(seconds=91), NOW, RULE)
    recent = NOW - timedelta(seconds=10)
    assert not is_stale(recent, NOW, RULE, consecutive_failures=4)
    five = freshness(recent, NOW, RULE, consecutive_failures=5)
    assert five.stale and five.reason == "the last 5 polls failed"
    assert not is_stale(recent, NOW, Staleness(90.0, None), consecutive_failures=50)  # the test is off
