"""The alert message: one per account per cycle, the same facts in every channel.

What a trader reads first is what to do: the subject carries the account's level in force
(never only the level of this message's changes), the account, and the danger in the
market's terms ("CRITICAL · okx/main · ETH 0.9 % (0.3 σ) from liq 3,063.8 · 41 % in 24 h",
a leg beyond its price named "PAST LIQUIDATION"); the body opens with the remedy (add X ->
health, where the liquidation price moves; or reduce a position by N coins), then what
changed, the positions nearest liquidation and the account's figures, and says "as of" when
the figures were taken. A resolution closes the loop: what it was, for how long, where the
account is now. Pure: everything it says is passed in (alerts.service gathers it).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from alerts import identity
from alerts.remedy import Remedy
from alerts.render import figures as f
from alerts.render import lines
from alerts.render.content import Content
from alerts.render.email import render_email
from alerts.render.lines import TOP_POSITIONS, Leg
from alerts.render.payload import payload_of
from alerts.render.summary import one_line
from alerts.rules import Level, Transition


@dataclass(frozen=True)
class Nearest:
    """The liquidation price nearest its mark: signed distance (fraction of mark), in daily
    σ (None without volatility), the price, and its side ("down" or "up")."""

    symbol: str
    distance: float
    sigma: float | None
    price: float
    side: str | None


@dataclass(frozen=True)
class Problem:
    """The feed, not the market: "stale" (no fresh data), "not_polled" (paused after a
    permanent error), "refused" (a key that can withdraw). `detail`: raw text, summarised
    here; `since`: the last good data."""

    kind: str
    detail: str | None
    since: datetime | None = None


@dataclass(frozen=True)
class Incident:
    """The account's episode above OK this message belongs to (alerts.incidents)."""

    id: str
    opened_at: datetime
    closed_at: datetime | None = None
    worst_level: Level = Level.WARNING
    worst_detail: str | None = None


@dataclass(frozen=True)
class Identity:
    notification_id: str
    message_id: str
    thread_id: str | None = None  # the incident's first Message-ID (None: this is it)


@dataclass(frozen=True)
class MessageInputs:
    label: str  # exchange/name
    collateral: str
    transitions: Sequence[tuple[str, Transition]]
    health: float | None = None
    equity: float | None = None
    maintenance_margin: float | None = None
    positions: Sequence[Leg] = field(default_factory=list)
    remedy: Remedy | None = None
    nearest: Nearest | None = None  # when no position rows are known
    chance_24h: float | None = None  # the account's highest chance of touching a liquidation price
    level_now: Level | None = None  # the account's worst alert level in force after this poll
    problem: Problem | None = None
    incident: Incident | None = None
    identity: Identity | None = None
    as_of: datetime | None = None  # when the figures were taken
    # set when the figures are the last poll's positions at a streamed mark price (the
    # mark's time is `as_of`): when those positions were polled
    positions_as_of: datetime | None = None
    now: datetime | None = None  # when the message is written
    exchange: str = ""
    account: str = ""
    event: str | None = None  # "liquidated": a confirmed liquidation, told as such
    ticks: Mapping[str, float | None] = field(default_factory=dict)  # price ticks beyond the positions'
    # issue 13: a multi-collateral account's collateral rows (alerts.collateral_lines)
    collateral_rows: Sequence[tuple[str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class Message:
    level: Level
    subject: str
    text: str
    html: str
    payload: dict[str, Any]
    content: Content | None = None


def danger_line(nearest: Nearest | None, chance_24h: float | None) -> str | None:
    """ "2.7 % (0.8 σ) to liquidation at 3,063.79 (down) · 43 % chance in 24 h" (no symbol,
    no tick: the stored nearest alone)."""
    if nearest is None:
        return None
    leg = Leg(nearest.symbol, "", "cross", 0.0, 1.0, 0.0, 0.0, nearest.price, nearest.side, nearest.distance)
    sigma = "" if nearest.sigma is None else f" ({f.sigmas(nearest.sigma)})"
    side = f" ({nearest.side})" if nearest.side else ""
    chance = "" if chance_24h is None else f" · {f.chance(chance_24h)} chance in 24 h"
    if leg.past:
        return f"PAST LIQUIDATION at {f.price(nearest.price)}{side}, {f.percent(nearest.distance)} beyond{chance}"
    return f"{f.percent(nearest.distance)}{sigma} to liquidation at {f.price(nearest.price)}{side}{chance}"


def level_of(inputs: MessageInputs) -> Level:
    changed = max((t.to_level for _, t in inputs.transitions), default=Level.OK)
    return max(changed, inputs.level_now) if inputs.level_now is not None else changed


def headline_leg(inputs: MessageInputs) -> Leg | None:
    """The position the message is about: past liquidation first, else nearest it."""
    ordered = lines.danger_order([p for p in inputs.positions if p.distance is not None])
    return ordered[0] if ordered else None


def compose(inputs: MessageInputs) -> Message:
    level = level_of(inputs)
    content = _content(inputs, level)
    text, body = render_email(content)
    return Message(level, content.subject, text, body, payload_of(inputs, content, text), content)


def _content(inputs: MessageInputs, level: Level) -> Content:
    collateral = inputs.collateral
    leg = headline_leg(inputs)
    ticks = {**inputs.ticks, **{p.symbol: p.price_tick for p in inputs.positions if p.price_tick}}
    if inputs.event == "test":
        return _test_content(inputs)
    if inputs.event == "liquidated":
        headline = "LIQUIDATED"
    else:
        headline = level.name if level > Level.OK else "RESOLVED"
    danger = lines.danger(leg, collateral) if leg else danger_line(inputs.nearest, inputs.chance_24h)
    compact = lines.danger(leg, collateral, compact=True) if leg else danger
    problem = _problem_words(inputs.problem, inputs.now)
    resolved = headline == "RESOLVED"
    if inputs.event == "liquidated":
        lead = "; ".join(lines.change_line(s, t, collateral, ticks) for s, t in inputs.transitions)
        lead = lead.removeprefix("LIQUIDATED: ")
        detail = lead.replace(" liquidated at ", " at ", 1)  # the headline says LIQUIDATED
    elif problem is not None and level > Level.OK:
        detail, lead = problem
    elif resolved:
        detail, lead = _resolution(inputs, compact)
    else:
        detail = compact or f"health {f.health(inputs.health)}"
        lead = danger or f"cross health {f.health(inputs.health)}"
    subject = one_line(f"{headline} · {inputs.label} · {detail}", limit=200)

    legs = {(p.symbol, p.side): p for p in inputs.positions}
    actions = lines.remedy_lines(inputs.remedy, legs, collateral) if level > Level.OK else []
    action_title = "Do now" if actions else ""
    if resolved:
        action_title, actions = "Resolved", _resolution_lines(inputs, danger)
    elif problem is not None and level > Level.OK:
        action_title, actions = "Check", [*_problem_actions(inputs.problem), *actions]
    changes = [lines.change_line(s, t, collateral, ticks) for s, t in inputs.transitions]
    ordered = lines.danger_order(list(inputs.positions))[:TOP_POSITIONS]
    account = [
        ("Equity", f.money(inputs.equity, collateral)),
        ("Maintenance margin", f.money(inputs.maintenance_margin, collateral)),
        (
            "Cross health",
            "n/a (no cross position)" if inputs.health is None else f"{f.health(inputs.health)} (liquidation at 1.00)",
        ),
        *inputs.collateral_rows,
    ]
    now = inputs.now
    as_of = f.as_of(inputs.as_of, now, inputs.positions_as_of) if now is not None else ""
    footer = ""
    if inputs.identity is not None:
        footer = f"notification {inputs.identity.notification_id}"
        if inputs.incident is not None:
            footer += f" · incident {inputs.incident.id}"
    return Content(
        level=level,
        headline=headline,
        label=inputs.label,
        subject=subject,
        lead=lead,
        action_title=action_title,
        actions=actions,
        changes=changes,
        positions=[lines.leg_lines(p, collateral) for p in ordered],
        account=account,
        as_of=as_of,
        footer=footer,
    )


def _problem_words(problem: Problem | None, now: datetime | None) -> tuple[str, str] | None:
    """(subject detail, lead) of a feed problem."""
    if problem is None:
        return None
    reason = one_line(problem.detail, limit=120)
    if problem.kind in ("refused", "not_polled"):
        short = "API key refused" if problem.kind == "refused" else one_line(problem.detail, limit=60)
        return f"not watched: {short or 'a permanent error'}", f"Not polled: {reason or 'a permanent error'}."
    age = ""
    if problem.since is not None and now is not None:
        age = f" for {f.duration((now - problem.since).total_seconds())}"
    since = "never" if problem.since is None else f"{f.clock(problem.since)}"
    lead = f"No fresh data{age} (last good data: {since})" + (f"; last error: {reason}" if reason else "") + "."
    return f"no fresh data{age}", lead


def _problem_actions(problem: Problem | None) -> list[str]:
    if problem is None:
        return []
    if problem.kind == "refused":
        return ["create a read-only key (no trade, no withdraw); the account is polled again at the next start"]
    if problem.kind == "not_polled":
        return ["fix the key or permission named above; the account is polled again at the next start"]
    return ["the figures below are the last known ones: check the exchange's status before acting on them"]


def _resolution(inputs: MessageInputs, compact: str | None) -> tuple[str, str]:
    incident = inputs.incident
    was = ""
    if incident is not None and inputs.now is not None:
        lasted = f.duration((inputs.now - incident.opened_at).total_seconds())
        was = f"after {lasted} (at worst {incident.worst_level.name})"
    now = f"now {compact}" if compact else f"now health {f.health(inputs.health)}"
    detail = " · ".join(part for part in (was, now) if part)
    return detail, detail[:1].upper() + detail[1:]


def _resolution_lines(inputs: MessageInputs, danger: str | None) -> list[str]:
    """What it was, for how long, where it is now."""
    incident = inputs.incident
    result = []
    if incident is not None and inputs.now is not None:
        lasted = f.duration((inputs.now - incident.opened_at).total_seconds())
        worst = f": {incident.worst_detail}" if incident.worst_detail else ""
        result.append(f"at risk from {f.clock(incident.opened_at)} to {f.clock(inputs.now)} ({lasted})")
        result.append(f"at worst {incident.worst_level.name}{worst}")
    result.append(f"now: {danger}" if danger else f"now: cross health {f.health(inputs.health)}")
    return result


def _test_content(inputs: MessageInputs) -> Content:
    when = "" if inputs.now is None else f"written {inputs.now:%Y-%m-%d} {f.clock(inputs.now)}"
    footer = "" if inputs.identity is None else f"notification {inputs.identity.notification_id}"
    return Content(
        level=Level.OK,
        headline="TEST",
        label=inputs.label,
        subject=f"TEST · {inputs.label} · alert channel check",
        lead="This is a test message from marginwatch: this channel delivers alerts.",
        action_title="",
        actions=[],
        changes=[],
        positions=[],
        account=[],
        as_of=when,
        footer=footer,
    )


def channel_test(now: datetime, sender: str | None) -> Message:
    """The message `marginwatch alerts test` sends through every channel (its own ids)."""
    key = identity.new_key()
    ids = Identity(key, identity.message_id(key, identity.domain_of(sender)))
    return compose(MessageInputs("marginwatch", "", (), identity=ids, now=now, event="test"))
