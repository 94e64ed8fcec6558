"""The alert state machine: hysteresis, pending polls, repeats, no flapping."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from alerts.rules import Level, RuleState, health_rule, step, step_level

T0 = datetime(2026, 11, 1, tzinfo=UTC)
RULE = health_rule()


def run(values: list[float], minutes: float = 1.0) -> list[tuple[str, Level]]:
    state, told = RuleState(), []
    for i, value in enumerate(values):
        state, transition = step(RULE, state, value, T0 + timedelta(minutes=i * minutes))
        if transition:
            told.append((transition.kind, transition.to_level))
    return told


def test_walk_down_to_critical_and_back() -> None:
    path = [2.0, 1.8, 1.45, 1.4, 1.3, 1.1, 1.05, 1.1, 1.2, 1.3, 1.5, 1.65, 1.75, 2.0]
    assert run(path) == [
        ("fired", Level.WARNING),  # second poll below 1.5
        ("escalated", Level.CRITICAL),  # first poll below 1.15: no wait
        ("recovered", Level.WARNING),  # above 1.25
        ("resolved", Level.OK),  # above 1.7
    ]


def test_no_flapping_around_the_warning_trigger() -> None:
    assert run([1.49, 1.51] * 50) == []
    # once in WARNING, wobbling below the clear level keeps it there quietly
    assert run([1.4, 1.4] + [1.49, 1.51] * 50) == [("fired", Level.WARNING)]


def test_repeat_while_unchanged() -> None:
    told = run([1.1] * 200, minutes=1)  # 200 minutes in CRITICAL, repeat every 30
    assert told[0] == ("fired", Level.CRITICAL)
    assert [k for k, _ in told[1:]] == ["repeat"] * 6


def test_externally_decided_level() -> None:
    state, t = step_level("data", {Level.WARNING: timedelta(hours=4)}, RuleState(), Level.WARNING, T0)
    assert t is not None and t.kind == "fired"
    state, t = step_level("data", {}, state, Level.WARNING, T0 + timedelta(hours=5))
    assert t is None  # no repeat configured
    _, t = step_level("data", {}, state, Level.OK, T0 + timedelta(hours=6))
    assert t is not None and t.kind == "resolved"


@settings(max_examples=300, deadline=None)
@given(st.lists(st.floats(0.5, 3.0), min_size=1, max_size=60))
def test_level_is_consistent_with_the_bands(values: list[float]) -> None:
    state = RuleState()
    for i, value in enumerate(values):
        before = state.level
        state, transition = step(RULE, state, value, T0 + timedelta(minutes=i))
        if value < 1.15:
            assert state.level == Level.CRITICAL  # critical never waits
        if value > 1.7:
            assert state.level == Level.OK  # above every clear level: nothing holds
        if state.level > before:
            assert value < (1.15 if state.level == Level.CRITICAL else 1.5)
        assert (transition is not None and transition.kind != "repeat") == (state.level != before)


def _figures(**kwargs):
    from alerts.evaluate import AccountFigures

    return AccountFigures(**{"state": "active", "stale": False, "health": 3.0, "has_snapshot": True, **kwargs})


def test_the_risk_level_is_on_by_default_with_hysteresis() -> None:
    """A healthy health number does not hide danger: a 25 % chance in 24 h is CRITICAL at
    once; a warning waits for its pending polls; each clears only under 60 % of its trigger."""
    from alerts.evaluate import evaluate
    from config.settings import AlertRules

    rules = AlertRules(recovery_dwell_minutes=0)  # the dwell has its own tests below
    states, told = evaluate(rules, _figures(chance=0.25), {}, T0)
    assert [(s, t.kind, t.to_level) for s, t in told] == [("chance", "fired", Level.CRITICAL)]
    states, told = evaluate(rules, _figures(chance=0.15), states, T0 + timedelta(minutes=1))
    assert told == []  # under 20 % but above the 12 % clear level: still critical, no flapping
    states, told = evaluate(rules, _figures(chance=0.10), states, T0 + timedelta(minutes=2))
    assert [(s, t.kind, t.to_level) for s, t in told] == [("chance", "recovered", Level.WARNING)]
    states, told = evaluate(rules, _figures(chance=0.04), states, T0 + timedelta(minutes=3))
    assert told == []  # 4 % is under 5 % but above the 3 % clear level
    _, told = evaluate(rules, _figures(chance=0.02), states, T0 + timedelta(minutes=4))
    assert [(s, t.kind) for s, t in told] == [("chance", "resolved")]


def test_without_volatility_the_distance_decides() -> None:
    from alerts.evaluate import evaluate
    from config.settings import AlertRules

    rules = AlertRules(warning_pending_polls=0)
    states, told = evaluate(rules, _figures(fallback_distance=0.05), {}, T0)
    assert [(s, t.to_level) for s, t in told] == [("distance", Level.WARNING)]
    _, told = evaluate(rules, _figures(fallback_distance=0.03), states, T0)
    assert [(s, t.to_level) for s, t in told] == [("distance", Level.CRITICAL)]
    _, told = evaluate(rules, _figures(fallback_distance=0.10), {}, T0)
    assert told == []  # 10 % away is not a warning


def test_the_earlier_opt_in_keys_still_read() -> None:
    from config.settings import AlertRules

    rules = AlertRules.model_validate(
        {"touch_probability_above": 0.1, "distance_below": 0.08, "distance_clear_above": 0.1}
    )
    assert (rules.touch_warning_above, rules.distance_warning_below) == (0.1, 0.08)


DWELL = health_rule(dwell=timedelta(minutes=3))


def _walk(rule, values: list[float], seconds: float) -> list[tuple[str, Level, float]]:
    """(kind, level, seconds from the start) of each transition."""
    state, told = RuleState(), []
    for i, value in enumerate(values):
        state, transition = step(rule, state, value, T0 + timedelta(seconds=i * seconds))
        if transition:
            told.append((transition.kind, transition.to_level, i * seconds))
    return told


def test_a_step_down_waits_for_the_dwell_and_escalation_does_not() -> None:
    told = _walk(DWELL, [2.0, 1.1, 1.3, 1.3, 1.3, 1.3, 1.8, 1.8, 1.8, 1.8], seconds=60)
    assert told == [
        ("fired", Level.CRITICAL, 60),  # at once
        ("recovered", Level.WARNING, 300),  # fit for WARNING from 120 s: 3 min later
        ("resolved", Level.OK, 540),  # fit for OK from 360 s
    ]


def test_a_step_down_to_ok_needs_ok_at_every_poll_of_the_dwell() -> None:
    # while CRITICAL, the health wanders between the WARNING and OK zones: WARNING once it
    # has been out of CRITICAL for the dwell (at a poll fitting WARNING); OK only after a
    # dwell of polls that all fit OK
    told = _walk(DWELL, [1.1, 1.3, 1.8, 1.3, 1.8, 1.8, 1.8, 1.8], seconds=60)
    assert told == [("fired", Level.CRITICAL, 0), ("resolved", Level.OK, 420)]  # OK from 240 on
    told = _walk(DWELL, [1.1, 1.3, 1.8, 1.3, 1.3, 1.8, 1.8, 1.8, 1.8], seconds=60)
    assert told == [("fired", Level.CRITICAL, 0), ("recovered", Level.WARNING, 240), ("resolved", Level.OK, 480)]


def test_a_wobble_across_the_critical_band_every_second_tells_one_escalation_and_one_resolution() -> None:
    """A 20x leg whose health crosses the critical band every second for a minute, then
    settles: without a dwell, 60 messages; with it, the escalation and, once settled, the
    resolution."""
    wobble = [1.10, 1.30] * 30  # CRITICAL, then WARNING-fit (above the 1.25 clear), every second
    settled = [2.0] * 300
    assert len(_walk(health_rule(), wobble + settled, seconds=1)) > 30
    told = _walk(DWELL, wobble + settled, seconds=1)
    assert [(kind, level) for kind, level, _ in told] == [("fired", Level.CRITICAL), ("resolved", Level.OK)]
    assert told[1][2] == 60 + 180  # three minutes after it settled


@settings(max_examples=300, deadline=None)
@given(st.lists(st.floats(0.5, 3.0), min_size=1, max_size=80), st.integers(1, 5))
def test_with_a_dwell_no_level_falls_before_a_calm_run_has_lasted(values: list[float], minutes: int) -> None:
    rule = health_rule(dwell=timedelta(minutes=minutes))
    state = RuleState()
    for i, value in enumerate(values):
        before = state.level
        state, transition = step(rule, state, value, T0 + timedelta(minutes=i))
        if state.level < before:
            # every poll of the last `minutes` fitted the new level or lower
            window = values[i - minutes : i + 1] if i >= minutes else None
            assert window is not None
            fitted = [
                max((b.level for b in rule.bands if v < b.clear and b.level < before), default=Level.OK) for v in window
            ]
            assert max(fitted) <= state.level
            assert transition is not None and transition.kind in ("recovered", "resolved")
        if value < 1.15:
            assert state.level == Level.CRITICAL  # escalation never waits


def test_stale_data_breaks_a_calm_run() -> None:
    """Polls not seen are not calm polls: a recovery under way starts again with fresh data."""
    from dataclasses import replace

    from alerts.evaluate import evaluate
    from config.settings import AlertRules

    rules = AlertRules(recovery_dwell_minutes=3)
    states, _ = evaluate(rules, _figures(health=1.1), {}, T0)
    states, _ = evaluate(rules, _figures(health=2.0), states, T0 + timedelta(minutes=1))
    assert states["health"].calm_since == T0 + timedelta(minutes=1)
    stale = replace(_figures(health=2.0), stale=True)
    states, _ = evaluate(rules, stale, states, T0 + timedelta(minutes=2))
    assert states["health"].calm_since is None and states["health"].level == Level.CRITICAL
    states, told = evaluate(rules, _figures(health=2.0), states, T0 + timedelta(minutes=10))
    assert ("health", "resolved") not in [(s, t.kind) for s, t in told]  # a fresh run starts here
    _, told = evaluate(rules, _figures(health=2.0), states, T0 + timedelta(minutes=13))
    assert ("health", "resolved") in [(s, t.kind) for s, t in told]
