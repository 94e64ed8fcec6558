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

    return AccountFigures(state="active", stale=False, health=3.0, has_snapshot=True, **kwargs)


def test_the_risk_level_is_on_by_default_with_hysteresis() -> None:
    """A healthy health number does not hide danger: a 25 % chance in 24 h is CRITICAL at
    once; a warning waits for its pending polls; each clears only under 60 % of its trigger."""
    from alerts.evaluate import evaluate
    from config.settings import AlertRules

    rules = AlertRules()
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
