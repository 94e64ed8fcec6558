"""The risk report as a trader reads it in a terminal (rich).

Text from a snapshot (symbols, names, notes that quote them) is exchange-controlled: it is
put in `Text` objects, never in strings that rich would parse as markup (`[/x]` in a symbol
would raise MarkupError; `[link=...]` would make a link)."""

from __future__ import annotations

import re
from typing import Any

from rich.console import Console
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from readmodels.symbols import pool_name
from readmodels.text import age as age  # the CLI and the dashboard say "how long ago" alike

# A terminal report stays readable (and fast) on a book of thousands of positions: the
# positions nearest to liquidation, a few names per stress row, the pools that liquidate on
# the smallest move. `--format json` keeps everything.
SHOWN_POSITIONS = 50
SHOWN_NAMES = 5
SHOWN_POOLS = 10
SHOWN_NOTES = 5
MORE = "… and {n:,} more{what} (all in --format json)"

LEVEL_STYLES = {"critical": "bold white on red", "warning": "bold black on yellow", "ok": "bold green"}


def plain(value: object) -> Text:
    """`value` as text that rich shows as it is, without reading markup in it."""
    return Text(str(value))


def health_style(health: float | None, limits: dict[str, float]) -> str:
    """A health coloured by the configured bands (the report's `limits`)."""
    if health is None:
        return "dim"
    if health < limits["critical_health"]:
        return "bold red"
    if health < limits["warning_health"]:
        return "yellow"
    return "green"


def money(value: float | None, currency: str = "") -> str:
    if value is None:
        return "—"
    return f"{value:,.2f}{' ' + currency if currency else ''}"


def coin(value: float | None, currency: str, usd: float | None = None, valuation: str = "USD") -> str:
    """A coin amount (a coin-margined account's money) with its coin, to the satoshi's
    neighbourhood, and its value in the valuation currency when given:
    "0.020862 BTC (1,210.00 USD)"."""
    if value is None:
        return "—"
    digits = 6 if abs(value) < 100 else 4
    shown = f"{value:,.{digits}f} {currency}"
    return shown if usd is None else f"{shown} ({usd:,.2f} {valuation})"


def amounts(report: dict[str, Any]) -> Any:
    """How the report's money is written: collateral with 2 decimals (USDT, USDC), or for a
    coin-margined report (it has a `valuation_currency`) the coin and, where the row has
    `<field>_usd`, the USD value beside it."""
    ccy = report["collateral"]
    valuation = report.get("valuation_currency")

    def show(row: dict[str, Any], key: str, with_usd: bool = True, unit: bool = True) -> str:
        if valuation is None:
            return money(row.get(key), ccy if unit else "")
        usd = row.get(f"{key}_usd") if with_usd else None
        return coin(row.get(key), ccy, usd, valuation)

    return show


def price(value: float | None) -> str:
    if value is None:
        return "—"
    magnitude = abs(value)
    digits = 2 if magnitude >= 100 else 4 if magnitude >= 1 else 6
    return f"{value:,.{digits}f}"


def pool_label(key: str, report: dict) -> str:
    """A pool as a person reads it: "cross", or "isolated · BTC short" for "isolated:2"."""
    kind, _, index = key.partition(":")
    if kind != "isolated" or not index.isdigit() or int(index) >= len(report["positions"]):
        return key
    position = report["positions"][int(index)]
    return pool_name("isolated", position["symbol"], position["side"])


def ratio(value: float | None, digits: int = 3) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def percent(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:+.2f}%"


def _chance(value: float | None) -> str:
    if value is None:
        return "—"
    return "< 0.1 %" if 0 < value < 0.001 else f"{value * 100:.1f} %"


def _nearest(nearest: dict[str, Any] | None) -> str:
    if nearest is None:
        return "no liquidation price on either side"
    sigma = "" if nearest["distance_sigma"] is None else f" ({abs(nearest['distance_sigma']):.1f} σ)"
    where = "past liquidation" if nearest["distance"] < 0 else "to liquidation"
    return (
        f"{abs(nearest['distance']) * 100:.2f} %{sigma} {where} at {price(nearest['price'])} "
        f"({nearest['liquidation_side']}, {nearest['symbol']} {nearest['side']})"
    )


def _market_name(symbol: str) -> str:
    """BTC/USDT:USDT -> BTC/USDT; a dated contract keeps its expiry (BTC/USD:BTC-261225 ->
    BTC/USD 261225), so a quarterly is told from the perpetual beside it."""
    pair, _, settle = symbol.partition(":")
    expiry = settle.partition("-")[2]
    return f"{pair} {expiry}" if expiry else pair


def _nearest_first(positions: list[dict[str, Any]]) -> list[int]:
    """Indices of the positions, nearest to liquidation first (signed distance: those past
    liquidation come first), those with no liquidation price last."""
    return sorted(
        range(len(positions)),
        key=lambda i: (positions[i]["distance_to_liquidation"] is None, positions[i]["distance_to_liquidation"] or 0.0),
    )


def shown_positions(positions: list[dict[str, Any]], limit: int = SHOWN_POSITIONS) -> list[int]:
    """The rows of the positions table: all, in the report's order, when they fit; else the
    `limit` nearest to liquidation."""
    if len(positions) <= limit:
        return list(range(len(positions)))
    return _nearest_first(positions)[:limit]


def few_names(names: list[str], limit: int = SHOWN_NAMES) -> str:
    """`a, b, c and 12 more`: a stress row names a few, not thousands."""
    if len(names) <= limit:
        return ", ".join(names)
    return f"{', '.join(names[:limit])} and {len(names) - limit:,} more"


def _first_move(shock: dict[str, Any]) -> float:
    return float("inf") if shock["side"] is None else abs(shock["smallest"])


def _sentences(note: str, limit: int = SHOWN_NOTES) -> str:
    """The first `limit` sentences of a note, and how many more there are."""
    parts = re.split(r"(?<=\.)\s+(?=\S)", note)
    if len(parts) <= limit:
        return note
    return " ".join(parts[:limit]) + "\n" + MORE.format(n=len(parts) - limit, what="")


def render_risk(report: dict[str, Any], console: Console) -> None:
    """Print the account summary, positions, remedy and stress test."""
    acct = report["account"]
    limits = report["limits"]
    show = amounts(report)
    inverse = report.get("valuation_currency") is not None
    health = acct["health"]
    summary = Text.assemble(
        (f" {acct['level'].upper()} ", LEVEL_STYLES[acct["level"]]),
        f"   chance of liquidation in 24 h {_chance(acct['touch_probability_24h'])}",
        f"\nnearest: {_nearest(acct['nearest'])}",
        ("\nhealth ", "bold"),
        (ratio(acct["health"]), health_style(health, limits)),
        f"   worst pool {ratio(acct['worst_health'])}",
        f"   margin ratio {percent(acct['margin_ratio']).lstrip('+')}",
        f"\nequity {show(acct, 'equity')}   maintenance {show(acct, 'maintenance_margin')}",
        f"   deficit {show(acct, 'deficit')}",
        (
            f"\ntop up {show(acct, 'topup_to_target')} to reach health {report['target_health']:g}",
            "bold yellow" if acct["topup_to_target"] > 0 else "green",
        ),
    )
    console.print(Panel(summary, title=Text(f"{report['exchange']} / {report['account_name']}")))

    rows = shown_positions(report["positions"])
    capped = len(rows) < len(report["positions"])
    title = f"Positions ({len(rows)} nearest to liquidation of {len(report['positions']):,})" if capped else "Positions"
    table = Table(title=title, title_justify="left", pad_edge=False)
    columns = (
        "position",
        "size",
        "mark",
        "uPnL",
        "maint.",
        "liq. down",
        "liq. up",
        "liq. exch.",
        "nearest",
        "σ",
        "24h",
    )
    for col in columns:
        table.add_column(col, justify="left" if col == "position" else "right", no_wrap=True)
    for p in (report["positions"][i] for i in rows):
        flag = " ⚠" if p["disagrees_with_exchange"] else ""
        distance = p["distance_to_liquidation"]
        style = LEVEL_STYLES.get(p["level"], "") if p["level"] != "ok" else ""
        mode = " iso" if p["margin_mode"] == "isolated" else ""
        side = {"down": " ↓", "up": " ↑"}.get(p["liquidation_side"], "")
        table.add_row(
            Text(f"{_market_name(p['symbol'])} {p['side']}{mode}"),
            f"{p['size']:g} {report['valuation_currency']}" if inverse else f"{p['size']:g}",
            price(p["mark_price"]),
            show(p, "unrealized_pnl", with_usd=False, unit=False),
            show(p, "maintenance_margin", with_usd=False, unit=False),
            price(p["liquidation_price_down"]),
            price(p["liquidation_price_up"]),
            price(p["exchange_liquidation_price"]) + flag,
            Text(percent(distance) + side, style=style),
            ratio(p["distance_sigma"], 1),
            _chance(p["touch_probability_24h"]),
        )
    console.print(table)
    if capped:
        console.print(Text(MORE.format(n=len(report["positions"]) - len(rows), what=" positions")))

    remedy = report["deleverage"]
    summary_line = report["deleverage_summary"]
    if remedy or summary_line["note"]:
        lines = [
            f"reduce {r['symbol']} {r['side']} by {r['reduce_contracts']:g} contracts "
            f"({show(r, 'reduce_notional')}, cost {show({'c': r['fee'] + r['slippage_cost']}, 'c')})"
            for r in remedy
        ]
        if remedy:
            after = summary_line["nearest_distance_after"]
            lines.append(
                f"health after: {ratio(summary_line['health_after'])}; nearest liquidation after: "
                f"{'none' if after is None else f'{after * 100:.2f} %'}; chance in 24 h after: "
                f"{_chance(summary_line['touch_probability_24h_after'])}"
            )
        if summary_line["note"]:
            lines.append(_sentences(summary_line["note"]))
        console.print(Panel(Text("\n".join(lines)), title="Deleverage plan", title_align="left"))

    stress = Table(title="Stress test (uniform price shock, both ways)", title_justify="left")
    stress.add_column("shock", justify="right")
    stress.add_column("equity", justify="right", no_wrap=True)
    stress.add_column("health", justify="right")
    stress.add_column("liquidated positions")
    for s in report["stress"]["scenarios"]:
        h = s["account"]["health"]
        names = few_names([report["positions"][i]["symbol"] for i in s["liquidated_positions"]])
        shown = "past liq." if h is not None and h < 0 else ratio(h)
        stress.add_row(
            percent(s["shock"]),
            show(s["account"], "equity", unit=False),
            Text(shown, style=health_style(h, limits)),
            Text(names or "—"),
        )
    console.print(stress)
    # The pools that liquidate on the smallest move first; those no move in range liquidates last.
    shocks = sorted(report["stress"]["liquidating_shocks"], key=_first_move)
    for shock in shocks[:SHOWN_POOLS]:
        pool = pool_label(shock["pool"], report)
        if shock["side"] is None:
            console.print(Text(f"{pool}: no uniform move in range liquidates it"))
            continue
        first, other = (shock["down"], shock["up"]) if shock["side"] == "down" else (shock["up"], shock["down"])
        other_side = "up" if shock["side"] == "down" else "down"
        rest = "" if other is None else f"; {other_side}: {percent(other)}"
        console.print(Text(f"{pool}: liquidates first on a move of {percent(first)} ({shock['side']}){rest}"))
    if len(shocks) > SHOWN_POOLS:
        console.print(Text(MORE.format(n=len(shocks) - SHOWN_POOLS, what=" pools")))
