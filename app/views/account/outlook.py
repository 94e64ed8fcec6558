"""The account page's risk outlook: the chance of liquidation within 24 h, the funding drag
(health after 1, 3 and 7 days at unchanged prices, the rates, the warning-level flag) and
the liquidations the venue reported. Everything is read from the store: the poller computed
it from the venue's market data."""

from __future__ import annotations

from datetime import tzinfo

import pandas as pd
import streamlit as st

from app.components import fmt, tables
from app.components.levels import COLORS, CRITICAL
from store.schema import AccountSnapshot

TOUCH_HELP = (
    "Probability that the mark touches the liquidation price within 24 h: the first passage "
    "of a driftless geometric Brownian motion, with σ the EWMA realized volatility of hourly "
    "log returns (λ = 0.99, about 3 days of memory). Closed form, no jumps: crypto's fat tails "
    "make small probabilities understated. A cross position's liquidation price holds the other "
    "symbols at their marks (the Risk page moves them together). See docs/risk-model.md."
)
FUNDING_HELP = (
    "Cross-pool health if prices stay where they are and funding is paid at the current "
    "rate, then the predicted one (positive rates: longs pay shorts)."
)


def render_outlook(snap: AccountSnapshot, funding: pd.DataFrame, warning: float, zone: tzinfo) -> None:
    st.subheader("Liquidation chance and funding drag")
    cols = st.columns(4)
    cols[0].metric("Liquidation chance 24 h (highest)", fmt.chance(snap.touch_probability), help=TOUCH_HELP)
    for col, days, value in zip(
        cols[1:], (1, 3, 7), (snap.funding_health_1d, snap.funding_health_3d, snap.funding_health_7d), strict=True
    ):
        col.metric(f"Health after {days} d of funding", fmt.ratio(value), help=FUNDING_HELP)
    if snap.touch_probability is None:
        st.caption(
            "No liquidation chance: no volatility is known for these symbols yet "
            "(the poller estimates it from 30 days of hourly candles)."
        )
    flag = fmt.funding_breach_text(snap.funding_breach_hours, warning)
    if flag:
        st.error(flag, icon=":material/trending_down:")
    if snap.funding_health_1d is None and snap.funding_health_7d is None:
        st.caption("No funding outlook: no funding rate is stored for this account's symbols.")
    if not funding.empty and funding["funding_rate"].notna().any():
        _rates(tables.localise(funding, ["next_funding_at", "rates_at"], zone))


def _quote(symbol: str) -> str:
    """The currency a symbol's funding is paid in: its quote (BTC/USDT:USDT -> USDT), or a
    coin-margined contract's coin (BTC/USD:BTC -> BTC)."""
    pair, _, settle = symbol.partition(":")
    coin = settle.partition("-")[0]
    if coin and coin == pair.partition("/")[0]:
        return coin
    return pair.partition("/")[2] or symbol


def _rates(frame: pd.DataFrame) -> None:
    def rate(v: float | None) -> str:
        return fmt.DASH if v is None or pd.isna(v) else f"{v * 100:+.4f} %"

    currency = {i: _quote(symbol) for i, symbol in frame["symbol"].items()}
    per_day = [
        fmt.DASH if pd.isna(v) else f"{'+' if v >= 0 else '-'}{fmt.money(abs(v), currency[i])}"
        for i, v in frame["per_day"].items()
    ]
    money = {"per_day": str}
    styler = (
        frame.assign(per_day=per_day)
        .style.format(
            {"funding_rate": rate, "predicted_funding_rate": rate, **money},
            subset=["funding_rate", "predicted_funding_rate", "per_day"],
        )
        .map(lambda v: f"color: {COLORS[CRITICAL]}" if str(v).startswith("-") else "", subset=["per_day"])
    )
    tables.show(
        frame,
        "funding",
        styler=styler,
        key="funding_rates",
        column_config={
            "margin_mode": st.column_config.TextColumn("Mode"),
            "funding_rate": st.column_config.TextColumn("rate now", help="Per funding interval; positive: longs pay."),
            "predicted_funding_rate": st.column_config.TextColumn("predicted", help="The next settlement's rate."),
            "funding_interval_hours": st.column_config.NumberColumn("every (h)", format="%g"),
            "next_funding_at": tables.time_column("next settlement"),
            "per_day": st.column_config.TextColumn("received per day", help="At the current rate; negative: paid."),
            "rates_at": tables.time_column("rates as of"),
        },
    )


def render_liquidations(events: pd.DataFrame, zone: tzinfo, name: str) -> None:
    st.subheader("Liquidations")
    if events.empty:
        st.caption(
            "No liquidation recorded for this account (the poller looks a vanished position up "
            "in the venue's liquidation history)."
        )
        return
    st.warning(
        f"{len(events)} liquidation(s) recorded; the newest on "
        f"{fmt.when(events['occurred_at'].iloc[-1], zone)}. They are marked on the history chart."
    )
    frame = tables.localise(events.iloc[::-1], ["occurred_at", "detected_at"], zone)
    tables.show(
        frame,
        f"liquidations-{name}",
        key="liquidations",
        column_config={
            "occurred_at": tables.time_column("liquidated at"),
            "detected_at": tables.time_column("detected at"),
            "contracts": st.column_config.NumberColumn("contracts"),
            "price": st.column_config.NumberColumn("price"),
        },
    )
