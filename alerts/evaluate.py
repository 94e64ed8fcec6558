"""One account's alert rules for one poll: pure, over the figures the store holds.

Subjects: "health" (the cross pool's health bands), "chance" (the risk level's chance that a
liquidation price is touched within the horizon, for positions whose volatility is known),
"distance" (the risk level's fallback: the nearest liquidation distance of positions
without a volatility yet), "target" (health under the target health, opt-in),
"position:<symbol>:<side>" (each isolated position's own pool) and "data" (stale data:
WARNING; an account not polled because its key was refused or failed: CRITICAL). The
chance and distance bands are margin.danger's thresholds, with hysteresis. While
data is stale the figure rules keep their level: silence about a broken feed is never
taken for recovery.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from alerts.rules import Band, Level, Rule, RuleState, Transition, health_rule, step, step_level, without_calm
from config.settings import AlertRules

DATA = "data"


@dataclass(frozen=True)
class AccountFigures:
    """What the rules read of one account. Figures are None before a first snapshot."""

    state: str  # active | paused | refused
    stale: bool
    health: float | None = None
    nearest_distance: float | None = None
    target_health: float | None = None
    isolated: Mapping[str, float | None] = field(default_factory=dict)  # subject -> health
    has_snapshot: bool = False
    chance: float | None = None  # highest chance of a liquidation price being touched in the horizon
    fallback_distance: float | None = None  # nearest distance of a position without volatility


def position_subject(symbol: str, side: str) -> str:
    return f"position:{symbol}:{side}"


def _minutes(value: float | None) -> timedelta | None:
    return None if value is None else timedelta(minutes=value)


def rules_from(settings: AlertRules) -> dict[str, Rule]:
    dwell = timedelta(minutes=settings.recovery_dwell_minutes)
    repeat = {
        Level.WARNING: _minutes(settings.repeat_warning_minutes),
        Level.CRITICAL: _minutes(settings.repeat_critical_minutes),
    }
    health = health_rule(
        settings.warning_below,
        settings.warning_clear_above,
        settings.critical_below,
        settings.critical_clear_above,
        settings.warning_pending_polls,
        settings.critical_pending_polls,
        repeat[Level.WARNING],
        repeat[Level.CRITICAL],
        dwell=dwell,
    )
    rules = {"health": health}
    # value = 1 - chance, so that "below the trigger" means "at least as likely as X"
    clear = settings.danger_clear_ratio
    rules["chance"] = Rule(
        "chance",
        (
            Band(
                Level.CRITICAL,
                _above(settings.touch_critical_above),
                1.0 - clear * settings.touch_critical_above,
                settings.critical_pending_polls,
            ),
            Band(
                Level.WARNING,
                _above(settings.touch_warning_above),
                1.0 - clear * settings.touch_warning_above,
                settings.warning_pending_polls,
            ),
        ),
        repeat,
        dwell,
    )
    rules["distance"] = Rule(
        "distance",
        (
            Band(
                Level.CRITICAL,
                settings.distance_critical_below,
                settings.distance_critical_below / clear,
                settings.critical_pending_polls,
            ),
            Band(
                Level.WARNING,
                settings.distance_warning_below,
                settings.distance_warning_below / clear,
                settings.warning_pending_polls,
            ),
        ),
        repeat,
        dwell,
    )
    if settings.below_target:
        # value = health / target: below 1 means under the target
        rules["target"] = Rule(
            "target", (Band(Level.WARNING, 1.0, 1.0, settings.warning_pending_polls),), repeat, dwell
        )
    return rules


def _above(chance: float) -> float:
    """The trigger on 1 - chance for "chance >= X" (value < trigger): 1 - X, nudged so that
    a chance of exactly X enters the band, as margin.danger.chance_level has it."""
    return math.nextafter(1.0 - chance, math.inf)


def _value(x: float | None) -> float:
    return math.inf if x is None else x  # no position: nothing to liquidate


def evaluate(
    settings: AlertRules,
    figures: AccountFigures,
    states: Mapping[str, RuleState],
    now: datetime,
) -> tuple[dict[str, RuleState], list[tuple[str, Transition]]]:
    """New states for every subject, and the transitions of this poll as (subject, t)."""
    rules = rules_from(settings)
    repeat = rules["health"].repeat
    new_states = dict(states)
    told: list[tuple[str, Transition]] = []

    def record(subject: str, result: tuple[RuleState, Transition | None]) -> None:
        new_states[subject], transition = result
        if transition is not None:
            told.append((subject, transition))

    if figures.state != "active":
        data_level = Level.CRITICAL
    elif figures.stale:
        data_level = Level.WARNING
    else:
        data_level = Level.OK
    record(DATA, step_level(DATA, repeat, states.get(DATA, RuleState()), data_level, now))
    if data_level != Level.OK or not figures.has_snapshot:
        # figure rules hold their level until fresh data comes, and a recovery under way
        # starts again then: polls not seen are not calm polls
        for subject, state in states.items():
            if subject != DATA and state.calm_since is not None:
                new_states[subject] = without_calm(state)
        return new_states, told

    values = {
        "health": _value(figures.health),
        "chance": 1.0 - (figures.chance or 0.0),
        "distance": _value(figures.fallback_distance),
    }
    if figures.target_health and figures.health is not None:
        values["target"] = figures.health / figures.target_health
    else:
        values["target"] = math.inf
    for name, rule in rules.items():
        record(name, step(rule, states.get(name, RuleState()), values[name], now))
    position_rule = Rule("position", rules["health"].bands, repeat, rules["health"].dwell)
    for subject, health in figures.isolated.items():
        record(subject, step(position_rule, states.get(subject, RuleState()), _value(health), now))
    for subject, state in states.items():
        if subject.startswith("position:") and subject not in figures.isolated:
            # the position is gone (closed, or liquidated): its alert ends here
            record(subject, step_level("position", repeat, state, Level.OK, now))
            if new_states[subject].level == Level.OK:
                del new_states[subject]
    return new_states, told
