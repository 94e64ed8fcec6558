"""The Account page's streaming parts: how fresh the figures are from the stream and from
the poll (an estimate between polls said as such, a stale stream said as such), and the
alert prices the stream watches ("critical at 3,081.2 / 3,402.0")."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import tzinfo

import streamlit as st

from app.components import fmt
from app.components.grid import esc
from readmodels.accounts import AccountView
from readmodels.alert_prices import AlertPriceRow, band_text
from readmodels.text import age


def render_stream_status(view: AccountView | None, zone: tzinfo) -> None:
    if view is None or view.state != "active":
        return
    if view.stream in ("stale", "down"):
        st.warning(
            f"Mark stream {view.stream}: between polls nothing is watched for this account; "
            "alerts wait for the next poll.",
            icon=":material/sensors_off:",
        )
    elif view.stream == "live" and view.mark_age_seconds is not None:
        st.caption(f"Mark prices streamed: the newest {age(view.mark_age_seconds)} ago.")
    if view.estimate:
        st.info(
            "These figures are an estimate from streamed mark prices on the positions polled "
            f"{age(view.positions_age_seconds)} ago; a poll confirms them.",
            icon=":material/bolt:",
        )


def render_alert_prices(rows: Sequence[AlertPriceRow]) -> None:
    """Per position: where its pool's level changes if only its symbol moves (below / above)."""
    if not rows:
        return
    st.subheader("Alert prices")
    head = "".join(
        f"<th style='text-align:{a};padding:2px 8px'>{h}</th>"
        for h, a in (
            ("Symbol", "left"),
            ("Side", "left"),
            ("Mark", "right"),
            ("Warning at", "right"),
            ("Critical at", "right"),
            ("Liquidation at", "right"),
        )
    )
    body = "".join(
        "<tr>"
        + f"<td style='padding:2px 8px'>{esc(r.symbol)}</td>"
        + f"<td style='padding:2px 8px'>{esc(r.side)} · {esc(r.margin_mode)}</td>"
        + "".join(
            f"<td style='text-align:right;padding:2px 8px'>{esc(text)}</td>"
            for text in (
                fmt.price(r.mark),
                band_text(r.warning, fmt.price),
                band_text(r.critical, fmt.price),
                band_text(r.liquidation, fmt.price),
            )
        )
        + "</tr>"
        for r in rows
    )
    st.html(f"<table style='border-collapse:collapse;font-size:0.9rem'><tr>{head}</tr>{body}</table>")
    st.caption(
        "Below / above the mark, the rest of the pool at mark; — where no price on that side gets there. "
        "The mark stream alerts at once when a mark crosses one."
    )
