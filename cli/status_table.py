"""`marginwatch status`: every account in a terminal table, worst first, coloured by its
risk level (readmodels.accounts: the same level and order as the dashboard and alerts).

Every cell is a rich Text, so that exchange text ([/x] in an error, a symbol) is shown as
it is, never read as markup."""

from __future__ import annotations

from collections.abc import Sequence

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from cli.report_table import age, money, ratio
from readmodels.accounts import CRITICAL, NOT_WATCHED, OK, STALE, WARNING, AccountView

LEVEL_STYLES = {
    CRITICAL: "bold white on red",
    WARNING: "bold black on yellow",
    OK: "green",
    STALE: "bold red",
    NOT_WATCHED: "bold red",
}


def chance_text(value: float | None) -> str:
    """A chance as the dashboard shows it: one decimal, "< 0.1 %" for a small one."""
    if value is None:
        return "—"
    if 0 < value < 0.001:
        return "< 0.1 %"
    return f"{value * 100:.1f} %"


def nearest_text(v: AccountView) -> str:
    """ "2.7 % (0.8 σ) down": the nearest liquidation distance, in σ, and its side."""
    if v.nearest is None:
        return "—"
    distance = f"{v.nearest.distance * 100:.1f} %"
    sigma = "" if v.nearest.distance_sigma is None else f" ({v.nearest.distance_sigma:.1f} σ)"
    side = f" {v.nearest.liquidation_side}" if v.nearest.liquidation_side else ""
    return distance + sigma + side


# column: (width, priority): on a narrow terminal the lowest priorities go first, so the
# level, the chance and the nearest liquidation are never cut
COLUMNS = {  # widths hold the cell's padding (one space each side)
    "level": (13, 0),
    "chance 24h": (12, 0),
    "nearest liq.": (22, 0),
    "data": (18, 1),
    "health": (8, 2),
    "top-up": (12, 3),
    "equity": (14, 4),
}


def render_status(views: Sequence[AccountView], console: Console) -> None:
    table = Table(title="marginwatch: accounts, worst first", title_justify="left", pad_edge=False, box=box.SIMPLE_HEAD)
    # Rich shrinks every column of a table too wide for the terminal, figures included: so
    # the table is built to fit, and only the account and problem texts are shortened.
    account_width = min(30, max([len(v.label) for v in views] + [7]))
    shown = dict(COLUMNS)
    while True:
        room = console.width - sum(w for w, _ in shown.values()) - (len(shown) + 2) - account_width
        if room >= 8 or max(p for _, p in shown.values()) == 0:
            break
        del shown[max(shown, key=lambda c: shown[c][1])]
    if room < 8:  # still narrow: the account name gives way, down to 12
        account_width = max(12, account_width + room - 8)
        room = 8
    table.add_column("account", no_wrap=True, overflow="ellipsis", width=account_width)
    order = [c for c in COLUMNS if c in shown]
    for column in order:
        table.add_column(
            column, justify="left" if column in ("level", "data") else "right", no_wrap=True, width=shown[column][0]
        )
    table.add_column("problem", no_wrap=True, overflow="ellipsis", width=room)
    for v in views:
        if v.state != "active":
            data = Text(v.state.upper(), style="bold red")
        elif v.stale:
            data = Text(f"STALE {age(v.age_seconds)}", style="bold red")
        else:
            data = Text(age(v.age_seconds), style="green")
            if v.stream == "live" and v.mark_age_seconds is not None:
                data.append(f" · mark {age(v.mark_age_seconds)}")
        # figures of an account not watched now are history, not the present: dim, never green
        figure_style = "" if v.watched else "dim"
        cells = {
            "level": Text(v.level.upper(), style=LEVEL_STYLES[v.level]),
            "chance 24h": Text(chance_text(v.touch_probability), style=figure_style),
            "nearest liq.": Text(nearest_text(v), style=figure_style),
            "health": Text(ratio(v.worst_health), style=figure_style),  # the weakest pool's
            "equity": Text(money(v.equity), style=figure_style),
            "top-up": Text(money(v.topup_to_target), style=figure_style),
            "data": data,
        }
        table.add_row(Text(v.label), *[cells[c] for c in order], Text(v.problem))
    console.print(table)
