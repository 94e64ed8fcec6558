"""An account's level on the dashboard, from its weakest pool's health and the alert
thresholds: critical, warning, ok, or stale (no fresh data, or not polled: nothing is
known of it, so it is never counted as healthy)."""

from __future__ import annotations

from config.settings import AlertRules
from readmodels.accounts import AccountView

CRITICAL, WARNING, OK, STALE = "critical", "warning", "ok", "stale"
ORDER = (CRITICAL, WARNING, OK, STALE)
COLORS = {CRITICAL: "#d62728", WARNING: "#f28e2b", OK: "#2ca02c", STALE: "#9e9e9e"}
# pale versions for table cells: the text stays readable on them
BACKGROUNDS = {CRITICAL: "#fbd5d5", WARNING: "#fde6cc", OK: "#d9f2d9", STALE: "#e8e8e8"}
ALERT_NAMES = {0: "OK", 1: "WARNING", 2: "CRITICAL"}


def level(view: AccountView, rules: AlertRules) -> str:
    if not view.watched:
        return STALE
    health = view.worst_health
    if health is None:  # no position: nothing can be liquidated
        return OK
    if health < rules.critical_below:
        return CRITICAL
    if health < rules.warning_below:
        return WARNING
    return OK


def data_label(view: AccountView, age_text: str) -> str:
    """The data-age cell: the age when fresh, else what makes it unwatched, in capitals."""
    if view.state != "active":
        return view.state.upper()
    if view.stale:
        return f"STALE {age_text}" if view.age_seconds is not None else "STALE (never polled)"
    return age_text
