"""The collateral panel of a multi-collateral account (issue 13): each asset with its
amount, price, ratio and value after haircut; the venue's own ratio beside ours; and how
much of a 20 % fall's loss comes from the collateral itself (wrong-way risk)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from app.components import fmt, tables
from app.components.safe import md
from margin.collateral_report import collateral_summary
from margin.snapshot import Snapshot


def render_collateral(snapshot: Snapshot, account_name: str) -> None:
    """Nothing for a single-asset account."""
    if not snapshot.multi_collateral:
        return
    summary = collateral_summary(snapshot)
    currency = md(summary["valuation_currency"])
    st.subheader(f"Collateral ({md(snapshot.account_mode.replace('_', ' '))}, in {currency})")
    cols = st.columns(3)
    name = md(summary["ratio_name"] or "venue ratio")
    cols[0].metric(f"{name} (ours)", fmt.ratio(summary["ratio_ours"]))
    cols[1].metric(f"{name} (exchange)", fmt.ratio(summary["ratio_exchange"]))
    share = summary["wrong_way_share"]
    cols[2].metric(
        "Loss from collateral in a 20 % fall",
        fmt.DASH if share is None else f"{share:.0%}",
        help="The part of the equity lost when every price falls 20 % that comes from the collateral "
        "falling with the market (wrong-way risk), not from the positions.",
    )
    if summary["ratio_disagrees"]:
        st.warning(f"Our {name} differs from the exchange's by more than 0.5 %: check the collateral ratios.")
    if summary["liquidation_level"] != 1.0:
        st.caption(f"The venue liquidates at {name} {summary['liquidation_level']:g}; health 1 is that level.")
    frame = pd.DataFrame(summary["rows"])
    money = "%,.2f"
    tables.show(
        frame,
        f"collateral-{account_name}",
        column_config={
            "amount": st.column_config.NumberColumn("amount", format="%,.8g"),
            "equity": st.column_config.NumberColumn("with PnL", format="%,.8g"),
            "price": st.column_config.NumberColumn("price", format="%,.6g"),
            "ratio": st.column_config.NumberColumn("ratio", format="percent"),
            "value": st.column_config.NumberColumn("value", format=money),
            "adjusted_value": st.column_config.NumberColumn("after haircut", format=money),
            "moves_with": st.column_config.TextColumn("moves with"),
        },
        key="collateral",
    )
