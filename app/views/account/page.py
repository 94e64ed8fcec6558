"""The account page: the latest figures and positions, the liquidation chance and funding
drag (app.views.account.outlook), the history with its liquidations, then the remedy (priced against
the stored books) and the what-ifs (app.views.account.remedy, app.views.account.whatif_panel) recomputed from the
latest snapshot."""

from __future__ import annotations

import time
from datetime import UTC, datetime, tzinfo

import pandas as pd
import streamlit as st

from app.components import fmt, tables, tz
from app.components.actions import show_cards
from app.components.charts import history_figure
from app.components.context import DashboardContext, context_or_stop
from app.components.grid import show_grid
from app.components.safe import md
from app.views.account.collateral import render_collateral
from app.views.account.data import (
    WINDOWS,
    funding_frame,
    history_frame,
    latest,
    liquidations_frame,
    positions_frame,
    stored_accounts,
)
from app.views.account.outlook import render_liquidations, render_outlook
from app.views.account.remedy import render_remedy
from app.views.account.streaming import render_alert_prices, render_stream_status
from app.views.account.whatif import load
from app.views.account.whatif_panel import render_what_if
from margin.snapshot import Snapshot, SnapshotError
from readmodels.accounts import account_views
from readmodels.actions import books_at_mark, load_action_cards
from readmodels.alert_prices import alert_price_rows
from readmodels.positions import GridRow, position_grid
from readmodels.risk import stored_books
from store import repo
from store.freshness import freshness, staleness
from store.schema import Account, AccountSnapshot

CHOICE, BOX = "mw_account", "mw_account_box"


def _remember() -> None:
    st.session_state[CHOICE] = st.session_state[BOX]


def choose(accounts: list[Account]) -> Account:
    """The account box: the last choice (also set by the overview), else ?account=, else
    the first; the choice goes into the URL so a link opens the same account."""
    names = [a.name for a in accounts]
    wanted = st.session_state.get(CHOICE) or st.query_params.get("account")
    st.session_state[BOX] = wanted if wanted in names else names[0]
    labels = {a.name: f"{a.exchange}/{a.name}" for a in accounts}
    name = st.selectbox("Account", names, key=BOX, format_func=labels.__getitem__, on_change=_remember)
    st.session_state[CHOICE] = name
    st.query_params["account"] = name
    return next(a for a in accounts if a.name == name)


def render(ctx: DashboardContext) -> None:
    st.title("Account")
    with ctx.sessions() as session:
        accounts = stored_accounts(session, datetime.now(UTC), staleness(ctx.config))
        if not accounts:
            st.info("No account is stored yet: start the poller (`marginwatch poll`).")
            return
        account = choose(accounts)
        snap = latest(session, account)
        positions = positions_frame(session, account)
        views = [v for v in account_views(session, datetime.now(UTC), staleness(ctx.config)) if v.name == account.name]
        grid = position_grid(session, datetime.now(UTC), staleness(ctx.config), views)
        actions = load_action_cards(session, views, ctx.config)
        events = liquidations_frame(session, account.id)
        stats = repo.market_stats(session, account.exchange)
        books = stored_books(session, account.exchange)
        watched_prices = alert_price_rows(session, account.latest_snapshot_id)
    now = datetime.now(UTC)
    zone = tz.current()
    rules = ctx.rules(account.name)
    snapshot, problem = _snapshot(account)
    _status(ctx, account, now)
    render_stream_status(views[0] if views else None, zone)
    if views and views[0].key_status == "trade":
        st.warning(
            "This account's API key can trade: a monitor needs only reading. Replace it with a read-only key.",
            icon=":material/key:",
        )
    show_cards(actions, "account")
    if snap is not None:
        _figures(snap, account.collateral)
        _positions(positions, grid, now, zone)
        render_alert_prices(watched_prices)
        if snapshot is not None:
            render_collateral(snapshot, account.name)  # issue 13: multi-collateral accounts
        funding = funding_frame(snapshot, stats) if snapshot is not None else pd.DataFrame()
        render_outlook(snap, funding, rules.warning_below, zone)
    _history(ctx, account, now, zone, rules.critical_below, rules.warning_below, events)
    render_liquidations(events, zone, account.name)
    if problem:
        st.error(problem)
        return
    if snapshot is None:
        if account.state != "active":
            st.info("This account is not polled, so it has no snapshot: no remedy or what-if to compute.")
        else:
            st.info("No snapshot document stored yet: the remedy and what-ifs need one poll.")
        return
    # one target: the configured one, or the one chosen in the remedy panel, for both panels
    # a book stored before the mark is moved to it: the cost is then its depth, not the drift
    books, ages = books_at_mark(books, snapshot, snap.taken_at if snap is not None else None)
    target = render_remedy(snapshot, ctx.target_health(account.name), account.name, books, zone, ages)
    render_what_if(snapshot, target, rules, account.name)


@st.cache_data(show_spinner=False, max_entries=200)
def _parsed(document: str) -> Snapshot:
    return load(document)


def _snapshot(account: Account) -> tuple[Snapshot | None, str | None]:
    """The latest snapshot document parsed, or why there is none to use."""
    if not account.latest_document:
        return None, None
    try:
        return _parsed(account.latest_document), None
    except (SnapshotError, ValueError) as exc:
        return None, f"The stored snapshot document cannot be read: {md(exc)}"


def _status(ctx: DashboardContext, account: Account, now: datetime) -> None:
    fresh = freshness(account.last_success_at, now, staleness(ctx.config), account.consecutive_failures)
    age = fresh.age_seconds
    if account.state != "active":
        st.error(f"{md(account.state.upper())}: not polled. {md(account.state_reason or '')}")
    elif fresh.stale:
        st.error(
            f"STALE ({md(fresh.reason or '')}): last successful poll {fmt.age(age)} ago. The figures below are from "
            f"then, not now. {md(account.last_error or '')}"
        )
    else:
        st.caption(f"Last poll {fmt.age(age)} ago ({fmt.when(account.last_success_at, tz.current())}).")


def _figures(snap: AccountSnapshot, collateral: str) -> None:
    cols = st.columns(6)
    cols[0].metric("Health (worst pool)", fmt.ratio(snap.worst_health))
    cols[1].metric("Cross health", fmt.ratio(snap.health))
    cols[2].metric(f"Equity ({md(collateral)})", fmt.amount_in(snap.equity, collateral))
    cols[3].metric(f"Maintenance margin ({md(collateral)})", fmt.amount_in(snap.maintenance_margin, collateral))
    cols[4].metric(
        "Margin ratio", fmt.percent(snap.margin_ratio, 2), help="Maintenance margin / equity; liquidation at 100 %."
    )
    cols[5].metric(
        f"Top-up to health {snap.target_health:g} ({md(collateral)})", fmt.amount_in(snap.topup_to_target, collateral)
    )


def _positions(frame: pd.DataFrame, grid: list[GridRow], now: datetime, zone: tzinfo) -> None:
    st.subheader("Positions")
    if frame.empty:
        st.caption("No open position.")
        return
    if frame["disagrees"].any():
        st.warning(
            "Our liquidation price differs from the exchange's by more than 0.5 % for the "
            "flagged positions (⚠): check the venue's rules or the snapshot."
        )
    show_grid(grid, now, zone, "account")


def _history(
    ctx: DashboardContext,
    account: Account,
    now: datetime,
    zone: tzinfo,
    critical: float,
    warning: float,
    events: pd.DataFrame,
) -> None:
    st.subheader("History")
    label = st.segmented_control("Window", list(WINDOWS), default="24 h", key="mw_history_window") or "24 h"
    started = time.perf_counter()
    with ctx.sessions() as session:
        frame = history_frame(session, account.id, WINDOWS[label], now)
    elapsed_ms = (time.perf_counter() - started) * 1000
    if frame.empty:
        st.caption("No history in this window.")
        return
    start = now - WINDOWS[label]
    shown = events[pd.to_datetime(events["occurred_at"], utc=True) >= start] if len(events) else events
    st.plotly_chart(history_figure(frame, zone, critical, warning, account.collateral, shown), key="history_chart")
    st.caption(
        f"{len(frame)} buckets of the worst health and average equity "
        f"({int(frame['samples'].sum()):,} snapshots, read in {elapsed_ms:.0f} ms)."
    )
    with st.expander("History table (newest first)"):
        money = "%,.2f"
        tables.show(
            tables.localise(frame.iloc[::-1].reset_index(drop=True), ["at"], zone),
            f"history-{account.name}",
            column_config={
                "at": tables.time_column("Bucket start"),
                "min_health": st.column_config.NumberColumn("Lowest health", format="%.2f"),
                "max_margin_ratio": st.column_config.NumberColumn("Highest margin ratio", format="percent"),
                "equity": st.column_config.NumberColumn(f"Equity ({account.collateral})", format=money),
                "maintenance_margin": st.column_config.NumberColumn(
                    f"Maintenance ({account.collateral})", format=money
                ),
                "samples": st.column_config.NumberColumn("Snapshots", format="%d"),
                "source": st.column_config.TextColumn("Source"),
            },
            key="history_table",
        )


if __name__ == "__main__":  # run by st.navigation as this page's script
    render(context_or_stop())
