"""`marginwatch status`: every account's latest health in a terminal table, worst first."""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Console
from rich.table import Table
from rich.text import Text

from monitor.overview import AccountView
from monitor.risk_table import health_style, money, percent, ratio


def age(seconds: float | None) -> str:
    if seconds is None:
        return "never"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def render_status(views: Sequence[AccountView], console: Console) -> None:
    table = Table(title="marginwatch: accounts, worst first", title_justify="left")
    for column in ("account", "health", "worst", "equity", "maint.", "top-up", "nearest liq.",
                   "data", "key", "problem"):
        table.add_column(column, justify="left" if column in ("account", "data", "key", "problem")
                         else "right")
    for v in views:
        if v.state != "active":
            data = Text(v.state.upper(), style="bold red")
        elif v.stale:
            data = Text(f"STALE {age(v.age_seconds)}", style="bold red")
        else:
            data = Text(age(v.age_seconds), style="green")
        # a stale health is history, not the present: shown dim, never green
        style = "dim" if not v.watched else health_style(v.worst_health)
        table.add_row(
            f"{v.exchange}/{v.name}",
            Text(ratio(v.health), style=style),
            Text(ratio(v.worst_health), style=style),
            money(v.equity),
            money(v.maintenance_margin),
            money(v.topup_to_target),
            percent(v.nearest_distance),
            data,
            v.key_status or "—",
            (v.state_reason or v.last_error or "")[:80],
        )
    console.print(table)
