"""The stress chart and the what-if: move every price, add collateral, cut a position, and
see the health the engine computes at once (no store, no exchange: app.views.account.whatif)."""

from __future__ import annotations

from dataclasses import replace

import pandas as pd
import streamlit as st

from app.components import fmt, tables
from app.components.charts import stress_figure
from app.components.safe import md
from app.views.account.whatif import (
    WhatIf,
    apply,
    cross_figures,
    curve_shocks,
    liquidation_markers,
    liquidations_after,
    shock_range,
    stress_curves,
)
from config.settings import AlertRules
from margin.snapshot import Snapshot

SHOCK_KEY = "whatif_shock"


def _controls(snapshot: Snapshot, name: str, limit: float) -> WhatIf:
    cols = st.columns([3, 2, 3, 2])
    span = round(limit * 100)
    shock_pct = cols[0].slider(
        "Price shock (%)",
        min_value=float(-span),
        max_value=float(span),
        value=0.0,
        step=0.1,
        format="%.1f %%",
        key=SHOCK_KEY,
        help=f"Every mark moved by this much at once, in steps of 0.1 % (the range, ±{span} %, is 2.5 times "
        "the nearest liquidating move; arrow keys move one step).",
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
    limit = shock_range(snapshot)
    what_if = _controls(snapshot, name, limit)
    now = cross_figures(snapshot)
    changed_snapshot = apply(snapshot, what_if)
    after = cross_figures(changed_snapshot)
    cols = st.columns(5)
    cols[0].metric(
        "What-if health",
        _health(after["worst_health"]),
        delta=_delta(now, after, "worst_health"),
        help="Weakest pool after the what-if; liquidation at 1.",
    )
    cols[1].metric("Cross health", _health(after["health"]), delta=_delta(now, after, "health"))
    currency = md(snapshot.collateral)
    cols[2].metric(f"Equity ({currency})", fmt.money(after["equity"]))
    cols[3].metric(f"Maintenance margin ({currency})", fmt.money(after["maintenance_margin"]))
    topup = max(0.0, target * (after["maintenance_margin"] or 0.0) - (after["equity"] or 0.0))
    cols[4].metric(
        f"Top-up to health {target:g} ({currency})", fmt.money(topup) if after["health"] is not None else fmt.DASH
    )
    if after["worst_health"] is not None and after["worst_health"] <= 1.0:
        st.error("Liquidated in this what-if: a pool's equity is at or below its maintenance margin.")
    _liquidations_after(changed_snapshot, name)

    shocks = curve_shocks(limit)
    curves = stress_curves(snapshot, "now", shocks)
    markers = liquidation_markers(snapshot, limit)
    if what_if.changes_book:  # draw the changed book's own curve beside today's
        changed = apply(snapshot, replace(what_if, shock=0.0))
        curves = pd.concat([curves, stress_curves(changed, "what-if", shocks)], ignore_index=True)
    st.plotly_chart(
        stress_figure(curves, markers, rules.critical_below, rules.warning_below, what_if.shock, after["worst_health"]),
        key="stress_chart",
        config={"displayModeBar": False},
    )
    st.caption(
        "Health of each margin pool against a uniform move of every price; × marks where a pool "
        "is liquidated (with its positions). The diamond is the what-if above."
    )


def _health(value: float | None) -> str:
    """A what-if health; past zero (equity gone) the number means nothing more."""
    if value is not None and value <= 0:
        return "≤ 0 (liquidated)"
    return fmt.ratio(value)


def _liquidations_after(snapshot: Snapshot, name: str) -> None:
    """Each position's liquidation price and distance after the what-if."""
    frame = liquidations_after(snapshot)
    if frame.empty:
        return
    shown = pd.DataFrame(
        {
            "Symbol": frame["symbol"],
            "Side": frame["side"],
            "Pool": frame["pool"],
            "Mark after": [fmt.price(v) for v in frame["mark"]],
            "Liquidation price after": [
                fmt.price(v) + (" (past it)" if past else "")
                for v, past in zip(frame["liquidation_price"], frame["past"], strict=True)
            ],
            "Distance after": [
                fmt.DASH if pd.isna(d) else f"{'↓' if s == 'down' else '↑'} {fmt.percent(d, 2)}"
                for d, s in zip(frame["distance"], frame["liquidation_side"], strict=True)
            ],
        }
    )
    tables.show(shown, f"what-if-liquidations-{name}", key="whatif_liquidations")


def _delta(now: dict, after: dict, key: str) -> str | None:
    if now[key] is None or after[key] is None:
        return None
    change = after[key] - now[key]
    return None if abs(change) < 0.005 else f"{change:+.2f}"
