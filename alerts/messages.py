"""The alert message: subject, plain text, HTML and a JSON payload for webhooks.

One message per account per cycle lists every rule that changed, the account's figures,
the positions nearest liquidation and the engine's remedy (top up X, or reduce SYMBOL by
N contracts). Pure: everything it says is passed in.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from alerts.rules import Level, Transition

KIND_WORDS = {
    "fired": "entered",
    "escalated": "escalated to",
    "recovered": "recovered to",
    "resolved": "resolved",
    "repeat": "still",
    "liquidated": "liquidated:",
}
SUBJECT_WORDS = {
    "health": "health",
    "chance": "chance of liquidation",
    "distance": "distance to liquidation (no volatility yet)",
    "target": "health under target",
    "data": "data",
}


@dataclass(frozen=True)
class NearPosition:
    symbol: str
    side: str
    mark_price: float
    liquidation_price: float | None
    distance: float | None


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
class Remedy:
    topup: float  # collateral that brings the account to its target health
    target_health: float
    reductions: Sequence[tuple[str, str, float]] = ()  # (symbol, side, contracts)
    reaches_target: bool = True
    note: str = ""


@dataclass(frozen=True)
class MessageInputs:
    label: str  # exchange/name
    collateral: str
    transitions: Sequence[tuple[str, Transition]]
    health: float | None = None
    equity: float | None = None
    maintenance_margin: float | None = None
    stale_reason: str | None = None
    positions: Sequence[NearPosition] = field(default_factory=list)
    remedy: Remedy | None = None
    nearest: Nearest | None = None
    chance_24h: float | None = None  # of touching a liquidation price within 24 h
    level_now: Level | None = None  # the account's worst alert level in force after this poll


@dataclass(frozen=True)
class Message:
    level: Level
    subject: str
    text: str
    html: str
    payload: dict[str, Any]


def _fmt(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:,.{digits}f}"


def _subject_word(subject: str) -> str:
    if subject.startswith("liquidation:"):
        symbol, _, side = subject.removeprefix("liquidation:").rpartition(":")
        return f"{symbol} {side}"
    if subject.startswith("position:"):
        symbol, _, side = subject.removeprefix("position:").rpartition(":")
        return f"{symbol} {side} (isolated) health"
    return SUBJECT_WORDS.get(subject, subject)


def _change_line(subject: str, t: Transition) -> str:
    level = t.to_level.name if t.kind != "resolved" else "OK"
    value = "" if t.value is None or t.value == float("inf") else f" ({_fmt(t.value, 3)})"
    if subject == "distance" and t.value is not None and t.value != float("inf"):
        value = f" ({t.value * 100:.2f}%)"
    if subject == "chance" and t.value is not None and t.value != float("inf"):
        value = f" ({(1 - t.value) * 100:.1f}%)"
    if t.kind == "resolved":
        return f"{_subject_word(subject)} resolved{value}"
    return f"{_subject_word(subject)} {KIND_WORDS[t.kind]} {level}{value}"


def danger_line(nearest: Nearest | None, chance_24h: float | None) -> str | None:
    """ "2.7 % (0.8 σ) to liquidation at 3,063.79 (down) · 43 % chance in 24 h"."""
    if nearest is None:
        return None
    sigma = "" if nearest.sigma is None else f" ({_small(abs(nearest.sigma))} σ)"
    side = f" ({nearest.side})" if nearest.side else ""
    if nearest.distance < 0:
        where = f"PAST LIQUIDATION at {_price(nearest.price)}{side}, {_small(abs(nearest.distance) * 100)} % beyond"
    else:
        where = f"{_small(nearest.distance * 100)} %{sigma} to liquidation at {_price(nearest.price)}{side}"
    chance = "" if chance_24h is None else f" · {_percent(chance_24h)} chance in 24 h"
    return where + chance


def _small(value: float) -> str:
    """One decimal, two below 1 (0.04 %, not 0.0 %)."""
    return f"{value:.2f}" if value < 1 else f"{value:.1f}"


def _price(value: float) -> str:
    magnitude = abs(value)
    digits = 2 if magnitude >= 100 else 4 if magnitude >= 1 else 6
    return f"{value:,.{digits}f}"


def _percent(chance: float) -> str:
    if 0 < chance < 0.01:
        return "< 1 %"
    return f"{chance * 100:.0f} %"


def compose(inputs: MessageInputs) -> Message:
    """Subject line "CRITICAL · okx/main · 2.7 % (0.8 σ) to liquidation at 3,063.79 (down) ·
    43 % chance in 24 h", and the bodies. The level is the account's worst in force (when
    known), not only the worst among this message's changes."""
    changed = max((t.to_level for _, t in inputs.transitions), default=Level.OK)
    level = max(changed, inputs.level_now) if inputs.level_now is not None else changed
    headline = level.name if level > Level.OK else "RESOLVED"
    danger = danger_line(inputs.nearest, inputs.chance_24h)
    if inputs.stale_reason and level > Level.OK and all(s == "data" for s, _ in inputs.transitions):
        detail = inputs.stale_reason
    elif danger is not None:
        detail = danger
    else:
        detail = f"health {_fmt(inputs.health, 2)}"
    subject = f"{headline} · {inputs.label} · {detail}"

    changes = [_change_line(s, t) for s, t in inputs.transitions]
    lines = [
        f"{inputs.label}: {headline}",
        *([danger] if danger else []),
        "",
        "What changed:",
        *[f"  - {c}" for c in changes],
        "",
    ]
    if inputs.stale_reason:
        lines += [f"Data: {inputs.stale_reason}", ""]
    lines += [
        f"Equity:             {_fmt(inputs.equity)} {inputs.collateral}",
        f"Maintenance margin: {_fmt(inputs.maintenance_margin)} {inputs.collateral}",
        f"Health:             {_fmt(inputs.health, 3)} (liquidation at 1)",
    ]
    if inputs.positions:
        lines += ["", "Nearest liquidation:"]
        for p in inputs.positions:
            distance = "n/a" if p.distance is None else f"{p.distance * 100:.2f}%"
            lines.append(
                f"  {p.symbol} {p.side}: mark {_fmt(p.mark_price, 4)}, liquidation "
                f"{_fmt(p.liquidation_price, 4)}, {distance} away"
            )
    remedy_lines = _remedy_lines(inputs)
    if remedy_lines:
        lines += ["", "Remedy:", *[f"  {r}" for r in remedy_lines]]
    text = "\n".join(lines) + "\n"

    e = html.escape
    rows = "".join(
        f"<tr><td>{e(p.symbol)} {e(p.side)}</td><td>{_fmt(p.mark_price, 4)}</td>"
        f"<td>{_fmt(p.liquidation_price, 4)}</td>"
        f"<td>{'n/a' if p.distance is None else f'{p.distance * 100:.2f}%'}</td></tr>"
        for p in inputs.positions
    )
    colour = {Level.CRITICAL: "#b00020", Level.WARNING: "#b36b00"}.get(level, "#1b7f3b")
    body = (
        f'<html><body><h2 style="color:{colour}">{e(headline)} · {e(inputs.label)}</h2>'
        + (f"<p><b>{e(danger)}</b></p>" if danger else "")
        + f"<ul>{''.join(f'<li>{e(c)}</li>' for c in changes)}</ul>"
        + (f"<p>Data: {e(inputs.stale_reason)}</p>" if inputs.stale_reason else "")
        + f"<table><tr><td>Equity</td><td>{_fmt(inputs.equity)} {e(inputs.collateral)}</td></tr>"
        f"<tr><td>Maintenance margin</td><td>{_fmt(inputs.maintenance_margin)} "
        f"{e(inputs.collateral)}</td></tr>"
        f"<tr><td>Health</td><td>{_fmt(inputs.health, 3)}</td></tr></table>"
        + (
            f"<h3>Nearest liquidation</h3><table><tr><th>Position</th><th>Mark</th>"
            f"<th>Liquidation</th><th>Distance</th></tr>{rows}</table>"
            if rows
            else ""
        )
        + (f"<h3>Remedy</h3><ul>{''.join(f'<li>{e(r)}</li>' for r in remedy_lines)}</ul>" if remedy_lines else "")
        + "</body></html>"
    )
    payload = {
        "account": inputs.label,
        "level": headline,
        "subject": subject,
        "changes": [
            {
                "rule": s,
                "kind": t.kind,
                "level": t.to_level.name,
                "value": None if t.value in (None, float("inf")) else t.value,
            }
            for s, t in inputs.transitions
        ],
        "equity": inputs.equity,
        "maintenance_margin": inputs.maintenance_margin,
        "health": inputs.health,
        "nearest": None
        if inputs.nearest is None
        else {
            "symbol": inputs.nearest.symbol,
            "distance": inputs.nearest.distance,
            "distance_sigma": inputs.nearest.sigma,
            "price": inputs.nearest.price,
            "liquidation_side": inputs.nearest.side,
        },
        "touch_probability_24h": inputs.chance_24h,
        "remedy": remedy_lines,
        "text": text,
    }
    return Message(level, subject, text, body, payload)


def _remedy_lines(inputs: MessageInputs) -> list[str]:
    remedy = inputs.remedy
    if remedy is None:
        return []
    lines = []
    if remedy.topup > 0:
        lines.append(f"top up {remedy.topup:,.2f} {inputs.collateral} to reach health {remedy.target_health:g}")
    if remedy.reductions:
        cuts = ", ".join(f"{symbol} {side} by {contracts:g} contracts" for symbol, side, contracts in remedy.reductions)
        lines.append(("or " if lines else "") + f"reduce {cuts}")
    if remedy.note:
        lines.append(remedy.note)
    return lines
