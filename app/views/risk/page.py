"""The Risk page: every account under a correlated BTC crash (who liquidates first, the
collateral needed to survive each shock, the betas used) and collateral rebalancing
between the accounts of one owner (app.views.risk.data)."""

from __future__ import annotations

import math

import pandas as pd
import streamlit as st

from app.components import fmt, tables, tz
from app.components.context import DashboardContext, context_or_stop
from app.components.levels import BACKGROUNDS, COLORS, CRITICAL, OK, WARNING
from app.components.safe import md
from app.views.risk.data import RiskData, betas_frame, load_risk, rebalance_frames, shock_totals, stress_frame
from margin.correlation import CorrelatedStress

LIQUIDATED = "background-color: #7f0000; color: white; font-weight: bold"


def render(ctx: DashboardContext) -> None:
    st.title("Risk")
    data = load_risk(ctx)
    _stress(ctx, data)
    _rebalance(data)


def _health_style(value: float | None, critical: float, warning: float) -> str:
    if value is None or pd.isna(value):
        return ""
    if value <= 1.0:
        return LIQUIDATED
    level = CRITICAL if value < critical else WARNING if value < warning else OK
    return f"background-color: {BACKGROUNDS[level]}"


def _health_text(value: float | None) -> str:
    if value is None or pd.isna(value):
        return fmt.DASH
    if value <= 0:  # equity gone: a negative health says nothing more
        return "LIQ"
    return f"LIQ {fmt.ratio(value)}" if value <= 1.0 else fmt.ratio(value)


def _shock_text(value: float | None) -> str:
    return "not within −99 %" if value is None or pd.isna(value) else f"BTC {value * 100:+.1f} %"


def _styled_stress(frame: pd.DataFrame, ctx: DashboardContext, shocks: list[str]) -> pd.io.formats.style.Styler:
    def row_style(row: pd.Series) -> list[str]:
        rules = ctx.rules(row["name"])  # each account's own alert levels
        return [
            _health_style(row[c], rules.critical_below, rules.warning_below) if c in shocks else "" for c in row.index
        ]

    return (
        frame.style.apply(row_style, axis=1)
        .format(_health_text, subset=shocks)
        .format(_shock_text, subset=["liquidates_at"])
        .format(lambda v: fmt.DASH if pd.isna(v) else f"{v:.0f}", subset=["order"])
    )


def _stress(ctx: DashboardContext, data: RiskData) -> None:
    st.subheader("Correlated stress: BTC moves both ways, every symbol with it by its beta")
    st.caption(
        "Each symbol's price becomes mark × (1 + s)^β for a BTC shock s, β its beta to BTC over 30 days "
        "of hourly log returns; cells show each account's weakest pool's health (LIQ: at or below "
        "its maintenance margin). Coloured by the account's critical and warning levels."
    )
    if data.stress is None:
        st.info("No account has a snapshot yet: start the poller (`marginwatch poll`).")
        return
    stress: CorrelatedStress = data.stress
    frame = stress_frame(stress, data.labels)
    shocks = [c for c in frame.columns if c == "now" or c.startswith("BTC ")]
    # every column within 1440 px: shocks labelled by their move alone (the caption says BTC),
    # the BTC move that liquidates each account is in the "Liquidate first" line below
    config = {
        c: st.column_config.TextColumn(c.removeprefix("BTC "), width=60, help=f"Health after a {c} move")
        for c in shocks
    }
    config.update(
        {
            "order": st.column_config.TextColumn(
                "#", width=40, help="Order in which the accounts liquidate as BTC moves away from today, either way."
            ),
            "account": st.column_config.TextColumn("Account", pinned=True, width=150),
        }
    )
    tables.show(
        frame,
        "correlated-stress",
        styler=_styled_stress(frame, ctx, shocks),
        column_config=config,
        hide=["name", "liquidates_at"],
        key="risk_stress",
    )
    order = stress.liquidation_order()
    if order:
        st.markdown(
            "**Liquidate first:** "
            + ", ".join(
                f"{i}\\. {md(data.labels.get(name, name))} at BTC {shock * 100:+.1f} % "
                f"({'down' if shock < 0 else 'up'})"
                for i, (name, shock) in enumerate(order, start=1)
            )
        )
    else:
        st.success("No account liquidates for a BTC move from −99 % to +900 %.")
    # one under the other, full width: side by side they cut off columns at 1440 px
    left, right = st.container(), st.container()
    with left:
        st.markdown("**Collateral needed per shock**")
        totals = shock_totals(stress, data.collateral, data.target_health)
        money = {c: st.column_config.NumberColumn(c, format="%,.2f") for c in totals.columns if c.startswith("to ")}
        tables.show(
            totals,
            "stress-collateral",
            key="risk_totals",
            hide=["btc_shock"],
            column_config={"liquidated": st.column_config.NumberColumn("accounts liquidated"), **money},
        )
        st.caption("To survive: what keeps every pool above its maintenance margin, summed over the accounts.")
    with right:
        st.markdown("**Betas used**")
        betas = tables.localise(betas_frame(data.stats, data.held), ["updated_at"], tz.current())
        tables.show(
            betas,
            "betas",
            key="risk_betas",
            column_config={
                "beta": st.column_config.NumberColumn("β to BTC", format="%.2f"),
                "venues": st.column_config.TextColumn("per venue"),
                "updated_at": tables.time_column("updated"),
            },
        )


def _rebalance(data: RiskData) -> None:
    st.subheader("Collateral rebalancing per owner")
    st.caption(
        "The fewest transfers between one owner's accounts (same collateral) that bring each to its target "
        "health without taking a donor below its own; “exact” is the proven minimum (up to 12 accounts), "
        "“greedy” a good plan beyond that."
    )
    if not data.plans:
        st.info(
            "No owner has two or more accounts with a snapshot: give the accounts that may lend each other "
            'collateral the same `owner = "..."` in the config.'
        )
        return
    summary, transfers = rebalance_frames(data.plans)
    money = "%,.2f"
    tables.show(
        summary,
        "rebalancing-owners",
        key="risk_owners",
        column_config={
            c: st.column_config.NumberColumn(c, format=money) for c in ("moved", "deficit", "surplus", "shortfall")
        },
    )
    for owner, plan in data.plans.items():
        if plan.shortfall > 0 and not math.isclose(plan.shortfall, 0.0, abs_tol=0.005):
            st.error(
                f"{md(owner)}: short by {fmt.money(plan.shortfall)}: the surplus is shared to raise the lowest "
                "health first, and the rest must be topped up."
            )
        elif not plan.transfers:
            st.caption(f"{md(owner)}: every account is at or above its target health.")
    if not transfers.empty:
        st.markdown("**Transfers**")
        styler = transfers.style.map(lambda _: f"color: {COLORS[OK]}; font-weight: bold", subset=["to"])
        tables.show(
            transfers,
            "rebalancing-transfers",
            styler=styler,
            key="risk_transfers",
            column_config={"amount": st.column_config.NumberColumn("amount", format=money)},
        )


if __name__ == "__main__":  # run by st.navigation as this page's script
    render(context_or_stop())
