"""One alert, formatted and in reading order: what every channel renders."""

from __future__ import annotations

from dataclasses import dataclass

from alerts.rules import Level


@dataclass(frozen=True)
class Content:
    level: Level
    headline: str  # CRITICAL, WARNING, RESOLVED, LIQUIDATED, TEST
    label: str  # exchange/name
    subject: str
    lead: str  # the danger, the feed's problem or the resolution, in one line
    action_title: str  # "Do now", "Check", "Resolved" ("" without actions)
    actions: list[str]
    changes: list[str]
    positions: list[tuple[str, list[str]]]  # (title, lines), nearest liquidation first
    account: list[tuple[str, str]]  # (name, value with its currency)
    as_of: str  # "as of 13:02:11 UTC (data age 4 s)"
    footer: str  # the ids
