"""How the dashboard colours a level. The level itself is the read model's
(readmodels.accounts.AccountView.level, from the engine's risk level): critical, warning,
ok, or stale / not watched (nothing is known of the account now, so it is never counted as
healthy)."""

from __future__ import annotations

from readmodels.accounts import CRITICAL, NOT_WATCHED, OK, ORDER, STALE, WARNING, AccountView
from readmodels.text import age

__all__ = ["ALERT_NAMES", "BACKGROUNDS", "COLORS", "CRITICAL", "NOT_WATCHED", "OK", "ORDER", "STALE", "WARNING"]

COLORS = {CRITICAL: "#d62728", WARNING: "#f28e2b", OK: "#2ca02c", STALE: "#9e9e9e", NOT_WATCHED: "#6b6b6b"}
# pale versions for table cells: the text stays readable on them
BACKGROUNDS = {CRITICAL: "#fbd5d5", WARNING: "#fde6cc", OK: "#d9f2d9", STALE: "#e8e8e8", NOT_WATCHED: "#dcdcdc"}
ALERT_NAMES = {0: "OK", 1: "WARNING", 2: "CRITICAL"}


def data_label(view: AccountView, age_text: str) -> str:
    """The data-age cell: the age when fresh, else what makes it unwatched, in capitals."""
    if view.state != "active":
        return view.state.upper()
    if view.stale:
        return f"STALE {age_text}" if view.age_seconds is not None else "STALE (never polled)"
    return age_text + stream_suffix(view)


def stream_suffix(view: AccountView) -> str:
    """ " · mark 1 s" (the newest streamed mark), " · stream STALE" or " · stream DOWN";
    nothing for an account whose marks are not streamed."""
    if view.stream is None:
        return ""
    if view.stream != "live":
        return f" · stream {view.stream.upper()}"
    return "" if view.mark_age_seconds is None else f" · mark {age(view.mark_age_seconds)}"
