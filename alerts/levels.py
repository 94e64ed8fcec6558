"""The configured thresholds as the engine's risk-level limits (margin.danger): the one
place that reads AlertRules into DangerLimits, for the poller, the alerts and every screen."""

from __future__ import annotations

from config.settings import AlertRules
from margin.danger import DangerLimits


def limits_for(rules: AlertRules) -> DangerLimits:
    """The risk-level thresholds of one account's rules."""
    return DangerLimits(
        warning_health=rules.warning_below,
        critical_health=rules.critical_below,
        warning_chance=rules.touch_warning_above,
        critical_chance=rules.touch_critical_above,
        warning_distance=rules.distance_warning_below,
        critical_distance=rules.distance_critical_below,
        horizon_hours=rules.touch_horizon_hours,
    )
