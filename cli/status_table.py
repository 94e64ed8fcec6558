"""`marginwatch status`: every account's latest health in a terminal table, worst first."""

from __future__ import annotations

from collections.abc import Sequence

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from cli.report_table import age, health_style, money, percent, ratio
from readmodels.accounts import AccountView


def render_status(views: Sequence[AccountView], console: Console) -> None:
    table = Table(title="marginwatch: accounts, worst first", title_justify="left", pad_edge=False, box=box.SIMPLE_HEAD)
    # figures keep their width; the account and the problem text give way
    # Rich shrinks every column of a table too wide for the terminal, figures included: so
    # the table is built to fit, and only the account and problem texts are shortened.
    fixed = {"health": 8, "equity": 12, "top-up": 10, "liq. in": 9, "data": 10}
    account_width = min(30, max([len(f"{v.exchange}/{v.name}") for v in views] + [7]))
    room = console.width - sum(fixed.values()) - (len(fixed) + 2) - account_width
    if room < 8:  # a narrow terminal: the account name gives way first, down to 12
        account_width = max(12, account_width + room - 8)
        room = 8
    table.add_column("account", no_wrap=True, overflow="ellipsis", width=account_width)
    for column, width in fixed.items():
        table.add_column(column, justify="left" if column == "data" else "right", no_wrap=True, width=width)
    table.add_column("problem", no_wrap=True, overflow="ellipsis", width=room)
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
            Text(ratio(v.worst_health), style=style),  # the weakest pool is the account's risk
            money(v.equity),
            money(v.topup_to_target),
            percent(v.nearest_distance),
            data,
            v.problem,
        )
    console.print(table)
