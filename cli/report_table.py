"""The risk report as a trader reads it in a terminal (rich).

Text from a snapshot (symbols, names, notes that quote them) is exchange-controlled: it is
put in `Text` objects, never in strings that rich would parse as markup (`[/x]` in a symbol
would raise MarkupError; `[link=...]` would make a link)."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from readmodels.text import age as age  # the CLI and the dashboard say "how long ago" alike

CRITICAL_HEALTH = 1.15
WARNING_HEALTH = 1.5


def plain(value: object) -> Text:
    """`value` as text that rich shows as it is, without reading markup in it."""
    return Text(str(value))


def health_style(health: float | None) -> str:
    if health is None:
        return "dim"
    if health < CRITICAL_HEALTH:
        return "bold red"
    if health < WARNING_HEALTH:
        return "yellow"
    return "green"


def money(value: float | None, currency: str = "") -> str:
    if value is None:
        return "—"
    return f"{value:,.2f}{' ' + currency if currency else ''}"


def price(value: float | None) -> str:
    if value is None:
        return "—"
    magnitude = abs(value)
    digits = 2 if magnitude >= 100 else 4 if magnitude >= 1 else 6
    return f"{value:,.{digits}f}"


def ratio(value: float | None, digits: int = 3) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def percent(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:+.2f}%"


def render_risk(report: dict[str, Any], console: Console) -> None:
    """Print the account summary, positions, remedy and stress test."""
    acct = report["account"]
    ccy = report["collateral"]
    health = acct["health"]
    summary = Text.assemble(
        ("health ", "bold"),
        (ratio(acct["health"]), health_style(health)),
        f"   worst pool {ratio(acct['worst_health'])}",
        f"   margin ratio {percent(acct['margin_ratio']).lstrip('+')}",
        f"\nequity {money(acct['equity'], ccy)}   maintenance {money(acct['maintenance_margin'], ccy)}",
        f"   deficit {money(acct['deficit'], ccy)}",
        (
            f"\ntop up {money(acct['topup_to_target'], ccy)} to reach health {report['target_health']:g}",
            "bold yellow" if acct["topup_to_target"] > 0 else "green",
        ),
    )
    console.print(Panel(summary, title=plain(f"{report['exchange']} / {report['account_name']}")))

    table = Table(title="Positions", title_justify="left", pad_edge=False)
    for col in ("position", "size", "mark", "uPnL", "maint.", "liq. ours", "liq. exch.", "distance", "σ"):
        table.add_column(col, justify="left" if col == "position" else "right", no_wrap=True)
    for p in report["positions"]:
        flag = " ⚠" if p["disagrees_with_exchange"] else ""
        distance = p["distance_to_liquidation"]
        style = "bold red" if distance is not None and distance < 0.05 else ""
        mode = " iso" if p["margin_mode"] == "isolated" else ""
        table.add_row(
            plain(f"{p['symbol'].split(':')[0]} {p['side']}{mode}"),
            f"{p['size']:g}",
            price(p["mark_price"]),
            money(p["unrealized_pnl"]),
            money(p["maintenance_margin"]),
            price(p["liquidation_price"]),
            plain(price(p["exchange_liquidation_price"]) + flag),
            Text(percent(distance), style=style),
            ratio(p["distance_sigma"], 1),
        )
    console.print(table)

    remedy = report["deleverage"]
    summary_line = report["deleverage_summary"]
    if remedy or summary_line["note"]:
        lines = [
            f"reduce {r['symbol']} {r['side']} by {r['reduce_contracts']:g} contracts "
            f"({money(r['reduce_notional'], ccy)}, cost {money(r['fee'] + r['slippage_cost'], ccy)})"
            for r in remedy
        ]
        if remedy:
            lines.append(f"health after: {ratio(summary_line['health_after'])}")
        if summary_line["note"]:
            lines.append(summary_line["note"])
        console.print(Panel(plain("\n".join(lines)), title="Deleverage plan", title_align="left"))

    stress = Table(title="Stress test (uniform price shock)", title_justify="left")
    stress.add_column("shock", justify="right")
    stress.add_column("equity", justify="right")
    stress.add_column("health", justify="right")
    stress.add_column("liquidated positions")
    for s in report["stress"]["scenarios"]:
        h = s["account"]["health"]
        names = ", ".join(report["positions"][i]["symbol"] for i in s["liquidated_positions"])
        stress.add_row(
            percent(s["shock"]),
            money(s["account"]["equity"]),
            Text(ratio(h), style=health_style(h)),
            plain(names or "—"),
        )
    console.print(stress)
    for shock in report["stress"]["liquidating_shocks"]:
        console.print(
            plain(
                f"{shock['pool']}: liquidated by a uniform move of {percent(shock['down'])} "
                f"(down) / {percent(shock['up'])} (up)"
            )
        )
