"""Text that the CLI and the dashboard show alike, so that both say the same thing."""

from __future__ import annotations


def age(seconds: float | None) -> str:
    """How long ago, in the unit a person reads at a glance ("never" before the first time)."""
    if seconds is None:
        return "never"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172_800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86_400:.1f} d"
