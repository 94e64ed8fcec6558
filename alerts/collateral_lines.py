"""The account lines a message adds for a multi-collateral account (issue 13): each
collateral asset with its value after haircut, the venue's own ratio beside ours, and the
share of a 20 % fall's loss that comes from the collateral (wrong-way risk)."""

from __future__ import annotations

from alerts.render import figures as f
from margin.collateral_report import collateral_summary
from margin.snapshot import Snapshot


def collateral_lines(document: Snapshot | None) -> list[tuple[str, str]]:
    """(name, value) rows for the message's account section; none for a single-asset one."""
    if document is None or not document.multi_collateral:
        return []
    summary = collateral_summary(document)
    currency = summary["valuation_currency"]
    rows = []
    for row in summary["rows"]:
        ratio = "" if row["ratio"] is None else f" at {f.percent(row['ratio'])}"
        value = f.money(row["adjusted_value"], currency)
        rows.append(
            (f"Collateral {row['asset']}", f"{f.amount(row['equity'])} × {f.price(row['price'])}{ratio} = {value}")
        )
    name = summary["ratio_name"]
    if name is not None and summary["ratio_ours"] is not None:
        theirs = summary["ratio_exchange"]
        venue = "" if theirs is None else f" (exchange {theirs:.4g}{', differs' if summary['ratio_disagrees'] else ''})"
        rows.append((name, f"{summary['ratio_ours']:.4g}{venue}"))
    share = summary["wrong_way_share"]
    if share is not None:
        rows.append(("Loss from collateral in a 20 % fall", f.chance(share)))
    return rows
