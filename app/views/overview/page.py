"""The overview page: totals, every account's health against the alert levels, and the
table, worst first. Refreshes itself as a fragment (every 2 s when marks are streamed,
else each poll interval), so the rest of the page (sidebar, navigation) is not rerun."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
import streamlit as st

from alerts.levels import limits_for
from app.components import fmt, tz
from app.components.actions import show_cards
from app.components.charts import danger_bars
from app.components.context import DashboardContext, context_or_stop
from app.components.grid import show_grid
from app.components.levels import CRITICAL, NOT_WATCHED, OK, STALE, WARNING
from app.components.safe import md
from app.views.overview.data import Overview, load_overview
from app.views.overview.table import accounts_html, compact_html

STREAM_REFRESH_SECONDS = 2.0  # poller.streaming.FLUSH_EVERY_SECONDS: the stream states' pace


def render(ctx: DashboardContext) -> None:
    st.title("Overview")
    # nothing new can come faster than a poll, or than the streams' states are stored (2 s)
    polled = max(1.0, ctx.config.poll_interval_seconds)
    interval = min(polled, STREAM_REFRESH_SECONDS) if ctx.config.streaming.enabled else polled

    @st.fragment(run_every=interval)
    def live() -> None:
        now = datetime.now(UTC)
        overview = load_overview(ctx, now)
        # the phone's first screen: the accounts (with their action), then the tiles
        first = {c.account: c.lines[0][:1].upper() + c.lines[0][1:] for c in overview.actions}
        st.html(compact_html(overview.frame, first))
        show_cards(overview.actions, "overview")
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
            f"Updated {fmt.when(now, tz.current())}; refreshes every {interval:g} s. An account's name opens its page."
        )

    live()


def _totals(overview: Overview) -> None:
    """The counts, then each currency's total equity and top-up on its own tile (one tile
    holding several currencies cuts them off)."""
    counts = overview.counts
    counted = st.columns(4)
    counted[0].metric("Critical", counts[CRITICAL])
    counted[1].metric("Warning", counts[WARNING])
    counted[2].metric("OK", counts[OK])
    counted[3].metric("Stale / not watched", counts[STALE] + counts[NOT_WATCHED])
    currencies = sorted(set(overview.equity) | set(overview.topup))
    if not currencies:
        return
    tiles = [
        (f"Total equity ({md(c)})", overview.equity.get(c), "Latest equity of every stored account, stale included.")
        for c in currencies
    ] + [
        (
            f"Top-up to target ({md(c)})",
            overview.topup.get(c, 0.0),
            "Collateral that brings every watched account to its target health.",
        )
        for c in currencies
    ]
    cols = st.columns(max(4, len(tiles)))
    for col, (label, value, explain) in zip(cols, tiles, strict=False):
        col.metric(label, fmt.money(value), help=explain)


def _table(frame: pd.DataFrame) -> None:
    st.html(accounts_html(frame))
    st.download_button(
        "CSV: overview",
        frame.to_csv(index=False).encode(),
        file_name="overview.csv",
        mime="text/csv",
        key="csv_overview_table",
        on_click="ignore",
        icon=":material/download:",
    )


if __name__ == "__main__":  # run by st.navigation as this page's script
    render(context_or_stop())
