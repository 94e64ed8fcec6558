"""The overview page: totals, every account's health against the alert levels, and the
table, worst first. Refreshes itself each poll interval as a fragment, so the rest of the
page (sidebar, navigation) is not rerun."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from alerts.levels import limits_for
from app.components import fmt, tables, tz
from app.components.charts import danger_bars
from app.components.context import DashboardContext, context_or_stop
from app.components.grid import show_grid
from app.components.levels import BACKGROUNDS, COLORS, CRITICAL, NOT_WATCHED, OK, STALE, WARNING
from app.components.safe import md
from app.views.overview.data import Overview, load_overview

ACCOUNT_PAGE = "views/account/page.py"
SHOWN = [
    "account",
    "level",
    "touch_probability",
    "nearest_distance",
    "nearest_sigma",
    "health",
    "equity",
    "maintenance_margin",
    "margin_ratio",
    "topup_to_target",
    "funding",
    "data",
    "alert",
    "key",
    "positions",
    "problem",
]


def render(ctx: DashboardContext) -> None:
    st.title("Overview")
    interval = max(1.0, ctx.config.poll_interval_seconds)  # nothing new can come faster

    @st.fragment(run_every=interval)
    def live() -> None:
        now = datetime.now(UTC)
        overview = load_overview(ctx, now)
        _totals(overview)
        if overview.frame.empty:
            st.info("No account is stored yet: start the poller (`marginwatch poll`).")
            return
        st.plotly_chart(
            danger_bars(overview.frame, limits_for(ctx.config.alerts)),
            key="overview_bars",
            config={"displayModeBar": False},
        )
        _table(overview.frame)
        st.subheader("Positions, all venues")
        show_grid(overview.positions, now, tz.current(), "all")
        st.caption(
            f"Updated {fmt.when(now, tz.current())}; refreshes every {interval:g} s. Select a row to open the account."
        )

    live()


def _total(column: DeltaGenerator, label: str, totals: dict[str, float], explain: str) -> None:
    """One currency: the figure, its currency in the label; several: one line each."""
    if len(totals) <= 1:
        currency, value = next(iter(totals.items()), ("", None))
        column.metric(f"{label} ({md(currency)})" if currency else label, fmt.money(value), help=explain)
    else:
        column.metric(label, " · ".join(fmt.money(v, md(c)) for c, v in sorted(totals.items())), help=explain)


def _totals(overview: Overview) -> None:
    counts = overview.counts
    cols = st.columns([1, 1, 1, 1.4, 2, 2])
    cols[0].metric("Critical", counts[CRITICAL])
    cols[1].metric("Warning", counts[WARNING])
    cols[2].metric("OK", counts[OK])
    cols[3].metric("Stale / not watched", counts[STALE] + counts[NOT_WATCHED])
    _total(cols[4], "Total equity", overview.equity, "Latest equity of every stored account, stale included.")
    _total(
        cols[5],
        "Top-up to target",
        overview.topup,
        "Collateral that brings every watched account to its target health.",
    )


def _style(frame: pd.DataFrame) -> pd.io.formats.style.Styler:
    def row_style(row: pd.Series) -> list[str]:
        styles = [""] * len(row)
        where = {name: i for i, name in enumerate(row.index)}
        level = row["level"]
        styles[where["level"]] = f"color: {COLORS[level]}; background-color: {BACKGROUNDS[level]}; font-weight: bold"
        if level in (STALE, NOT_WATCHED):  # old figures are history: greyed, never green
            for column in ("health", "touch_probability", "nearest_distance", "nearest_sigma"):
                styles[where[column]] = f"color: {COLORS[STALE]}"
            styles[where["data"]] = f"color: {COLORS[CRITICAL]}; font-weight: bold"
        if row["alert"].startswith("CRITICAL"):
            styles[where["alert"]] = f"color: {COLORS[CRITICAL]}; font-weight: bold"
        elif row["alert"].startswith("WARNING"):
            styles[where["alert"]] = f"color: {COLORS[WARNING]}; font-weight: bold"
        if row["funding"].startswith("⚠"):
            styles[where["funding"]] = f"color: {COLORS[WARNING]}; font-weight: bold"
        if row["key"] in ("trade", "refused"):
            styles[where["key"]] = f"color: {COLORS[CRITICAL]}"
        return styles

    return frame.style.apply(row_style, axis=1).format(na_rep=fmt.DASH)


def _table(frame: pd.DataFrame) -> None:
    money = "%,.2f"
    config = {
        "account": st.column_config.TextColumn("account", pinned=True),
        "level": st.column_config.TextColumn(
            "level",
            help="The risk level: the worst of the health bands and the chance of touching a liquidation "
            "price within 24 h (the distance to it while a symbol has no volatility yet).",
        ),
        "nearest_sigma": st.column_config.NumberColumn(
            "σ away", format="%.1f", help="Nearest liquidation, in daily σ."
        ),
        "health": st.column_config.NumberColumn(
            "health", format="%.2f", help="Weakest pool: equity / maintenance margin; liquidation at 1."
        ),
        "equity": st.column_config.NumberColumn("equity", format=money),
        "maintenance_margin": st.column_config.NumberColumn("maintenance", format=money),
        "margin_ratio": st.column_config.NumberColumn("margin ratio", format="%.4f"),
        "topup_to_target": st.column_config.NumberColumn("top-up to target", format=money),
        "nearest_distance": st.column_config.NumberColumn("nearest liq.", format="percent"),
        "touch_probability": st.column_config.NumberColumn(
            "liq. chance 24 h",
            format="percent",
            help="Highest chance among the positions that the liquidation price is touched within 24 h.",
        ),
        "funding": st.column_config.TextColumn(
            "funding", help="⚠ when funding alone, prices unchanged, takes health below the warning level."
        ),
        "data": st.column_config.TextColumn("data age"),
        "key": st.column_config.TextColumn("key"),
    }
    hide = [c for c in frame.columns if c not in SHOWN]
    event = tables.show(
        frame,
        "overview",
        styler=_style(frame),
        column_config=config,
        hide=hide,
        key="overview_table",
        on_select="rerun",
        selection_mode="single-row",
        column_order=SHOWN,
    )
    rows = event.selection.rows if event is not None else []
    if rows:
        st.session_state["mw_account"] = str(frame.iloc[rows[0]]["name"])
        st.switch_page(ACCOUNT_PAGE)


if __name__ == "__main__":  # run by st.navigation as this page's script
    render(context_or_stop())
