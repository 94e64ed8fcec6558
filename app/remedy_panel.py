"""The remedy panel: how much collateral restores the target health, or which positions to
cut and what that costs (margin.report.risk_report on the latest snapshot)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from app import fmt, tables
from margin.report import risk_report
from margin.snapshot import Snapshot


def render_remedy(snapshot: Snapshot, default_target: float, name: str) -> None:
    st.subheader("What restores it")
    left, right = st.columns(2)
    target = left.number_input("Target health", min_value=1.01, max_value=1000.0, value=float(default_target),
                               step=0.1, format="%.2f", key=f"mw_target_{name}",
                               help="Equity / maintenance margin the remedies aim for.")
    slippage_pct = right.number_input("Slippage on reductions (%)", min_value=0.0, max_value=10.0, value=0.0,
                                      step=0.01, format="%.2f", key=f"mw_slippage_{name}",
                                      help="Paid on each reduction beside the taker fee.")
    report = risk_report(snapshot, target, shocks=(), slippage=slippage_pct / 100)
    collateral = snapshot.collateral
    account = report["account"]
    top, plan = st.columns(2)
    with top:
        st.markdown("**Top up**")
        st.metric(f"Collateral to reach health {target:g}", fmt.money(account["topup_to_target"], collateral))
        isolated = [p for p in report["positions"] if p["topup_to_target"]]
        for p in isolated:
            st.write(f"{p['symbol']} {p['side']} (isolated): add "
                     f"{fmt.money(p['topup_to_target'], collateral)} to its margin")
    with plan:
        _deleverage(report, snapshot, collateral)


def _deleverage(report: dict, snapshot: Snapshot, collateral: str) -> None:
    summary = report["deleverage_summary"]
    st.markdown("**Or reduce positions**")
    reductions = report["deleverage"]
    if not reductions:
        st.caption("No reduction needed for the cross pool." if summary["reaches_target"]
                   else "No reduction raises the health.")
    else:
        frame = pd.DataFrame(reductions)
        steps = {i: p.amount_step for i, p in enumerate(snapshot.positions)}
        frame["contracts_text"] = [fmt.contracts(r["reduce_contracts"], steps.get(r["position"]))
                                   for r in reductions]
        tables.show(
            frame, "deleverage-plan", key="deleverage_plan",
            column_order=["symbol", "side", "contracts_text", "reduce_notional", "fee", "slippage_cost"],
            column_config={
                "contracts_text": st.column_config.TextColumn("reduce (contracts)"),
                "reduce_notional": st.column_config.NumberColumn("notional", format="%,.2f"),
                "fee": st.column_config.NumberColumn("fee", format="%,.2f"),
                "slippage_cost": st.column_config.NumberColumn("slippage", format="%,.2f"),
            })
        cols = st.columns(3)
        cols[0].metric("Health before", fmt.ratio(summary["health_before"]))
        cols[1].metric("Health after", fmt.ratio(summary["health_after"]))
        cols[2].metric(f"Cost ({collateral})", fmt.money(summary["total_cost"]), help="Taker fee + slippage.")
    if summary["note"]:
        (st.info if summary["reaches_target"] else st.warning)(summary["note"])
