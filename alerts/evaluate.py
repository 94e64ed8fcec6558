"""One account's alert rules for one poll: pure, over the figures the store holds.

Subjects: "health" (the cross pool), "distance" (nearest liquidation), "target" (health
under the target health), "touch" (chance of a liquidation price being hit within 24 h),
"position:<symbol>:<side>" (each isolated position's own pool) and "data" (stale data:
WARNING; an account not polled because its key was refused or failed: CRITICAL). While
data is stale the figure rules keep their level: silence about a broken feed is never
taken for recovery.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from alerts.rules import Band, Level, Rule, RuleState, Transition, health_rule, step, step_level
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
    touch_probability: float | None = None  # highest chance of a liquidation price being hit in 24 h


def position_subject(symbol: str, side: str) -> str:
    return f"position:{symbol}:{side}"


def _minutes(value: float | None) -> timedelta | None:
    return None if value is None else timedelta(minutes=value)


def rules_from(settings: AlertRules) -> dict[str, Rule]:
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
    )
    rules = {"health": health}
    if settings.distance_below is not None:
        clear = max(settings.distance_clear_above or settings.distance_below, settings.distance_below)
        rules["distance"] = Rule(
            "distance", (Band(Level.WARNING, settings.distance_below, clear, settings.warning_pending_polls),), repeat
        )
    if settings.touch_probability_above is not None:
        # value = 1 - probability, so that "below the trigger" means "more likely than X";
        # it clears once the chance is back under 60 % of X
        above = settings.touch_probability_above
        rules["touch"] = Rule(
            "touch", (Band(Level.WARNING, 1.0 - above, 1.0 - 0.6 * above, settings.warning_pending_polls),), repeat
        )
    if settings.below_target:
        # value = health / target: below 1 means under the target
        rules["target"] = Rule("target", (Band(Level.WARNING, 1.0, 1.0, settings.warning_pending_polls),), repeat)
    return rules


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
        return new_states, told  # figure rules hold their level until fresh data comes

    values = {
        "health": _value(figures.health),
        "distance": _value(figures.nearest_distance),
        "touch": 1.0 - (figures.touch_probability or 0.0),
    }
    if figures.target_health and figures.health is not None:
        values["target"] = figures.health / figures.target_health
    else:
        values["target"] = math.inf
    for name, rule in rules.items():
        record(name, step(rule, states.get(name, RuleState()), values[name], now))
    position_rule = Rule("position", rules["health"].bands, repeat)
    for subject, health in figures.isolated.items():
        record(subject, step(position_rule, states.get(subject, RuleState()), _value(health), now))
    for subject, state in states.items():
        if subject.startswith("position:") and subject not in figures.isolated:
            # the position is gone (closed, or liquidated): its alert ends here
            record(subject, step_level("position", repeat, state, Level.OK, now))
            if new_states[subject].level == Level.OK:
                del new_states[subject]
    return new_states, told
