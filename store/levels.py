"""An account's level on every screen and its place in every list (dashboard, CLI status,
Telegram /status, metrics): the one rule, over what the store holds.

The level is the risk level the poller stored with the latest snapshot (margin.danger:
critical / warning / ok), unless nothing is known of the account now: "not watched" (its
key was refused or failed, so it is not polled) or "stale" (no fresh snapshot). The order:
worst level first (critical, then not watched, stale, warning, ok: an account nobody can
see into comes right after known danger), then the highest chance of touching a liquidation
price within 24 h, then the nearest liquidation distance, then the lowest health."""

from __future__ import annotations

import math

from margin.danger import Level

CRITICAL, WARNING, OK, STALE, NOT_WATCHED = "critical", "warning", "ok", "stale", "not watched"
ORDER = (CRITICAL, NOT_WATCHED, STALE, WARNING, OK)
LEVEL_NAMES = {Level.OK: OK, Level.WARNING: WARNING, Level.CRITICAL: CRITICAL}
# the numbers metrics and exports use (issue 21): 0 ok, 1 warning, 2 critical, 3 stale, 4 not watched
LEVEL_NUMBERS = {OK: 0, WARNING: 1, CRITICAL: 2, STALE: 3, NOT_WATCHED: 4}


def display_level(state: str, stale: bool, risk_level: int | None, positions: int) -> str:
    """critical | warning | ok from the latest snapshot, or why nothing is known now."""
    if state != "active":
        return NOT_WATCHED
    if stale:
        return STALE
    if risk_level is None:
        return OK if positions == 0 else STALE  # a snapshot from before the risk level
    return LEVEL_NAMES[Level(risk_level)]


def order_key(
    level: str, chance: float | None, distance: float | None, health: float | None
) -> tuple[int, float, float, float]:
    """Worst level first, then the highest chance, then the nearest distance, then the
    lowest health (for accounts without positions to tell apart)."""
    return (
        ORDER.index(level),
        -(chance if chance is not None else -1.0),
        abs(distance) if distance is not None else math.inf,
        health if health is not None else math.inf,
    )
