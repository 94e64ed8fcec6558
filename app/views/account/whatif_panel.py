"""The stress chart and the what-if: move every price, add collateral, cut a position, and
see the health the engine computes at once (no store, no exchange: app.views.account.whatif)."""

from __future__ import annotations

from dataclasses import replace

import pandas as pd
import streamlit as st

from app.components import fmt
from app.components.charts import stress_figure
from app.components.safe import md
from app.views.account.whatif import WhatIf, apply, cross_figures, liquidation_markers, stress_curves
from config.settings import AlertRules
from margin.snapshot import Snapshot

SHOCK_KEY = "whatif_shock"


def _controls(snapshot: Snapshot, name: str) -> WhatIf:
    cols = st.columns([3, 2, 3, 2])
    shock_pct = cols[0].slider(
        "Price shock (%)",
        min_value=-50,
        max_value=50,
        value=0,
        step=1,
        key=SHOCK_KEY,
        help="Every mark moved by this fraction at once.",
    )
    added = cols[1].number_input(
        f"Add collateral ({md(snapshot.collateral)})",
        min_value=0.0,
        value=0.0,
        step=1000.0,
        format="%.2f",
        key=f"whatif_added_{name}",
    )
    cross = [i for i, p in enumerate(snapshot.positions) if p.margin_mode == "cross"]
    index = cols[2].selectbox(
        "Reduce position",
        [None, *cross],
        key=f"whatif_position_{name}",
        format_func=lambda i: (
            "none"
            if i is None
            else f"{snapshot.positions[i].symbol} {snapshot.positions[i].side} "
            f"({fmt.contracts(snapshot.positions[i].contracts, snapshot.positions[i].amount_step)})"
        ),
        help="Cross positions; for an isolated one, add to its margin instead.",
    )
    contracts = 0.0
    if index is not None:
        pos = snapshot.positions[index]
        step = pos.amount_step or pos.contracts / 100
        contracts = cols[3].number_input(
            "Contracts to cut",
            min_value=0.0,
            max_value=float(pos.contracts),
            value=0.0,
            step=float(step),
            format=f"%.{fmt.step_decimals(pos.amount_step)}f",
            key=f"whatif_contracts_{name}_{index}",
        )
    slippage = float(st.session_state.get(f"mw_slippage_{name}", 0.0)) / 100
    return WhatIf(shock_pct / 100, added, index, contracts, slippage)


def render_what_if(snapshot: Snapshot, target: float, rules: AlertRules, name: str) -> None:
    st.subheader("Stress test and what-if")
    what_if = _controls(snapshot, name)
    now = cross_figures(snapshot)
    after = cross_figures(apply(snapshot, what_if))
    cols = st.columns(5)
    cols[0].metric(
        "What-if health",
        fmt.ratio(after["worst_health"]),
        delta=_delta(now, after, "worst_health"),
        help="Weakest pool after the what-if; liquidation at 1.",
    )
    cols[1].metric("Cross health", fmt.ratio(after["health"]), delta=_delta(now, after, "health"))
    cols[2].metric(f"Equity ({md(snapshot.collateral)})", fmt.money(after["equity"]))
    cols[3].metric("Maintenance margin", fmt.money(after["maintenance_margin"]))
    topup = max(0.0, target * (after["maintenance_margin"] or 0.0) - (after["equity"] or 0.0))
    cols[4].metric(f"Top-up to {target:g}", fmt.money(topup) if after["health"] is not None else fmt.DASH)
    if after["worst_health"] is not None and after["worst_health"] <= 1.0:
        st.error("Liquidated in this what-if: a pool's equity is at or below its maintenance margin.")

    curves = stress_curves(snapshot, "now")
    markers = liquidation_markers(snapshot)
    if what_if.changes_book:  # draw the changed book's own curve beside today's
        changed = apply(snapshot, replace(what_if, shock=0.0))
        curves = pd.concat([curves, stress_curves(changed, "what-if")], ignore_index=True)
    st.plotly_chart(
        stress_figure(curves, markers, rules.critical_below, rules.warning_below, what_if.shock, after["worst_health"]),
        key="stress_chart",
        config={"displayModeBar": False},
    )
    st.caption(
        "Health of each margin pool against a uniform move of every price; × marks where a pool "
        "is liquidated (with its positions). The diamond is the what-if above."
    )


def _delta(now: dict, after: dict, key: str) -> str | None:
    if now[key] is None or after[key] is None:
        return None
    change = after[key] - now[key]
    return None if abs(change) < 0.005 else f"{change:+.2f}"
