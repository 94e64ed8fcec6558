"""Terminal tables for the cross-account stress and the rebalancing plans. Names (accounts,
owners) come from the config and are shown as plain `Text`, never parsed as rich markup."""

from __future__ import annotations

import math
from collections.abc import Mapping

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from cli.report_table import health_style, money, percent, plain, ratio
from config.settings import AlertRules
from margin.correlation import CorrelatedStress
from margin.rebalance import RebalancePlan


def render_stress(
    result: CorrelatedStress,
    console: Console,
    bands: Mapping[str, dict[str, float]] | None = None,
    collateral: Mapping[str, str] | None = None,
) -> None:
    """`bands`: each account's configured health bands ({"critical_health", "warning_health"});
    `collateral`: each account's collateral currency (the "to survive" rows, one per
    currency: USDT and USDC are not added together)."""
    rules = AlertRules()  # an account without bands: the configuration's default levels
    default = {"critical_health": rules.critical_below, "warning_health": rules.warning_below}
    table = Table(
        title="Correlated stress: BTC shock, each symbol by its beta",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
    )
    table.add_column("account", no_wrap=True, overflow="ellipsis", max_width=24)
    for scenario in result.scenarios:
        table.add_column(f"{scenario.btc_shock * 100:+.0f}%", justify="right", no_wrap=True)
    for i, name in enumerate(result.accounts):
        cells = []
        for scenario in result.scenarios:
            health = float(scenario.worst_health[i])
            value = None if math.isnan(health) else health
            label = "LIQ" if scenario.liquidated[i] else ratio(value, 2)
            style = "bold red" if scenario.liquidated[i] else health_style(value, (bands or {}).get(name, default))
            cells.append(Text(label, style=style))
        table.add_row(Text(name), *cells)
    currencies = [(collateral or {}).get(name, "") for name in result.accounts]
    several = len(set(currencies)) > 1
    for currency in sorted(set(currencies)):
        members = [i for i, c in enumerate(currencies) if c == currency]
        # one currency: named in the legend below (a wider label squeezes the shocks)
        label = f"to survive {currency}" if several else "to survive"
        table.add_row(
            label, *[f"{sum(float(s.collateral_to_survive[i]) for i in members):,.0f}" for s in result.scenarios]
        )
    console.print(table)
    order = result.liquidation_order()
    if order:
        console.print(
            Text(
                "liquidate first: "
                + ", ".join(
                    f"{name} at BTC {percent(shock)} ({'down' if shock < 0 else 'up'})" for name, shock in order
                )
            )
        )
    unit = "" if len(set(currencies)) != 1 or not currencies[0] else f" ({currencies[0]})"
    console.print(f"to survive{unit}: collateral that keeps every pool above its maintenance requirement")


def render_rebalance(plans: Mapping[str, RebalancePlan], console: Console) -> None:
    for owner, plan in plans.items():
        console.print(Text(f"{owner}: {len(plan.transfers)} transfer(s) ({plan.method} search)", style="bold"))
        if not plan.transfers and plan.shortfall <= 0:
            console.print("every account is at or above its target health")
            continue
        table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
        for column in ("from", "to", "amount"):
            table.add_column(column, justify="right" if column == "amount" else "left")
        for t in plan.transfers:
            table.add_row(plain(t.source), plain(t.destination), money(t.amount))
        console.print(table)
        if plan.shortfall > 0:
            console.print(Text(f"shortfall: {money(plan.shortfall)} more collateral is needed", style="bold red"))
