"""Alert rules: a pure state machine, one step per poll. No I/O, no clock of its own.

A rule watches one number (health, distance to liquidation, health over target) through
bands, most severe first. Each band has a trigger (enter when the value falls below it),
a higher clear level (stay until the value rises above it: hysteresis, so a value that
oscillates around a trigger does not flap) and a number of consecutive breaching polls
before it is entered (0 or 1: at once — liquidation does not wait). Escalation notifies
at once. A step down waits for the rule's recovery dwell: the value must have fitted a
lower level at every poll for that long (to OK: OK at every poll for that long; a poll that
fits OK never steps to WARNING), so a value wobbling across a band every second tells one
escalation and, once it has settled, one resolution. A level that holds is repeated at its own interval.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from margin.danger import Level as Level  # one scale of danger for levels and alerts


@dataclass(frozen=True)
class Band:
    level: Level
    trigger: float  # enter when value < trigger
    clear: float  # hold while value < clear (clear >= trigger)
    pending_polls: int = 0

    @property
    def polls_needed(self) -> int:
        return max(1, self.pending_polls)


@dataclass(frozen=True)
class Rule:
    """`bands` most severe first; `repeat` per level (None: never repeat)."""

    name: str
    bands: tuple[Band, ...]
    repeat: dict[Level, timedelta | None] = field(default_factory=dict)
    dwell: timedelta = timedelta(0)  # how long a lower level must fit before the level falls


@dataclass(frozen=True)
class RuleState:
    """Where one rule stands for one subject. `counts[i]`: consecutive polls below the
    trigger of bands[i]. `calm_since`: the first of the current run of polls that fitted a
    level below `level` (None: the last poll fitted `level` or above); `clear_since`: the
    first of the current run of polls that fitted OK."""

    level: Level = Level.OK
    counts: tuple[int, ...] = ()
    since: datetime | None = None
    last_notified: datetime | None = None
    value: float | None = None
    calm_since: datetime | None = None
    clear_since: datetime | None = None


@dataclass(frozen=True)
class Transition:
    """A change worth telling: kind is fired, escalated, recovered, resolved or repeat."""

    rule: str
    kind: str
    from_level: Level
    to_level: Level
    value: float | None
    at: datetime


def _kind(old: Level, new: Level) -> str:
    if new > old:
        return "fired" if old == Level.OK else "escalated"
    return "resolved" if new == Level.OK else "recovered"


def step(rule: Rule, state: RuleState, value: float, now: datetime) -> tuple[RuleState, Transition | None]:
    """One poll's value through the rule. Returns the new state and what to tell, if any."""
    previous = state.counts if len(state.counts) == len(rule.bands) else (0,) * len(rule.bands)
    counts = tuple(c + 1 if value < b.trigger else 0 for b, c in zip(rule.bands, previous, strict=True))
    entered = max((b.level for b, c in zip(rule.bands, counts, strict=True) if c >= b.polls_needed), default=Level.OK)
    held = max((b.level for b in rule.bands if b.level <= state.level and value < b.clear), default=Level.OK)
    level = max(entered, held)
    new_state = replace(state, counts=counts, value=value, calm_since=None, clear_since=None)
    if level < state.level and rule.dwell > timedelta(0):
        calm_since = state.calm_since or now
        clear_since = (state.clear_since or now) if level == Level.OK else None
        # to OK it falls only once it has fitted OK for the dwell: a run that fitted WARNING
        # earlier on is past, and would tell a step this poll already contradicts
        settled = now - (clear_since if clear_since is not None else calm_since) >= rule.dwell
        if not settled:
            held_state = replace(new_state, calm_since=calm_since, clear_since=clear_since)
            return _maybe_repeat(rule, held_state, value, now)
    if level != state.level:
        new_state = replace(new_state, level=level, since=now, last_notified=now)
        return new_state, Transition(rule.name, _kind(state.level, level), state.level, level, value, now)
    return _maybe_repeat(rule, new_state, value, now)


def without_calm(state: RuleState) -> RuleState:
    """The state with its calm run forgotten: polls not seen (stale data) break the run."""
    return replace(state, calm_since=None, clear_since=None)


def step_level(
    rule_name: str, repeat: dict[Level, timedelta | None], state: RuleState, level: Level, now: datetime
) -> tuple[RuleState, Transition | None]:
    """A rule whose level is decided outside (stale data, a paused or refused key)."""
    if level != state.level:
        new_state = replace(state, level=level, since=now, last_notified=now)
        return new_state, Transition(rule_name, _kind(state.level, level), state.level, level, None, now)
    return _maybe_repeat(Rule(rule_name, (), repeat), state, None, now)


def _maybe_repeat(
    rule: Rule, state: RuleState, value: float | None, now: datetime
) -> tuple[RuleState, Transition | None]:
    interval = rule.repeat.get(state.level)
    if state.level == Level.OK or interval is None or state.last_notified is None:
        return state, None
    if now - state.last_notified < interval:
        return state, None
    return (replace(state, last_notified=now), Transition(rule.name, "repeat", state.level, state.level, value, now))


def health_rule(
    warning_below: float = 1.5,
    warning_clear: float = 1.7,
    critical_below: float = 1.15,
    critical_clear: float = 1.25,
    warning_polls: int = 2,
    critical_polls: int = 0,
    repeat_warning: timedelta | None = timedelta(hours=4),
    repeat_critical: timedelta | None = timedelta(minutes=30),
    name: str = "health",
    dwell: timedelta = timedelta(0),
) -> Rule:
    """The default health rule: warn below 1.5 (clear above 1.7) after 2 polls; critical
    below 1.15 (clear above 1.25) at once."""
    return Rule(
        name,
        (
            Band(Level.CRITICAL, critical_below, critical_clear, critical_polls),
            Band(Level.WARNING, warning_below, warning_clear, warning_polls),
        ),
        {Level.WARNING: repeat_warning, Level.CRITICAL: repeat_critical},
        dwell,
    )
