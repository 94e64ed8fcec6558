"""The alerts page: what fires now, the history, silences (create, list, end), and how
each message was delivered."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime, timedelta, tzinfo

import pandas as pd
import streamlit as st

from alerts.deliveries import delivery_counts, recent_deliveries
from alerts.silences import active_silences, create_silence, end_silence, firing
from app.components import fmt, tables, tz
from app.components.charts import alert_timeline
from app.components.context import DashboardContext, context_or_stop
from app.components.levels import ALERT_NAMES, COLORS, CRITICAL, WARNING
from app.components.safe import md
from app.views.alerts.data import timeline_intervals, transitions_frame
from store import repo

HISTORY_WINDOWS = {"24 h": timedelta(days=1), "7 d": timedelta(days=7), "30 d": timedelta(days=30)}
ALL = "(all accounts)"


def render(ctx: DashboardContext) -> None:
    st.title("Alerts")
    zone = tz.current()
    now = datetime.now(UTC)
    _firing(ctx, zone)
    _history(ctx, zone, now)
    _silences(ctx, zone)
    _deliveries(ctx, zone)


def _level_style(value: str) -> str:
    color = {"CRITICAL": COLORS[CRITICAL], "WARNING": COLORS[WARNING]}.get(value)
    return f"color: {color}; font-weight: bold" if color else ""


def _firing(ctx: DashboardContext, zone: tzinfo) -> None:
    st.subheader("Firing now")
    rows = firing(ctx.sessions)
    if not rows:
        st.success("Nothing is firing.")
        return
    frame = tables.localise(pd.DataFrame([asdict(r) for r in rows]), ["since"], zone)
    tables.show(
        frame,
        "alerts-firing",
        styler=frame.style.map(_level_style, subset=["level"]),
        column_config={
            "since": tables.time_column("since"),
            "value": st.column_config.NumberColumn("value", format="%.4f"),
        },
        key="firing",
    )


def _history(ctx: DashboardContext, zone: tzinfo, now: datetime) -> None:
    st.subheader("History")
    label = st.segmented_control("Window", list(HISTORY_WINDOWS), default="7 d", key="mw_alert_window") or "7 d"
    since = now - HISTORY_WINDOWS[label]
    with ctx.sessions() as session:
        frame = transitions_frame(session, since)
    if frame.empty:
        st.caption("No alert transition in this window.")
        return
    intervals = timeline_intervals(frame, since, now)
    if not intervals.empty:
        st.plotly_chart(alert_timeline(intervals, zone), key="alert_timeline")
    shown = tables.localise(frame, ["at"], zone)
    for column in ("from_level", "to_level"):  # the names the alert messages use
        shown[column] = shown[column].map(lambda v: ALERT_NAMES.get(int(v), str(v)))
    newest_first = shown.iloc[::-1]
    tables.show(
        newest_first,
        "alert-history",
        key="alert_history",
        styler=newest_first.style.map(_level_style, subset=["to_level"]),
        column_config={"at": tables.time_column("at"), "value": st.column_config.NumberColumn("value", format="%.4f")},
    )


def _silences(ctx: DashboardContext, zone: tzinfo) -> None:
    st.subheader("Silences")
    st.caption("A silence mutes notifications; the rules keep their state, so what is firing is still shown here.")
    with ctx.sessions() as session:
        names = [a.name for a in repo.accounts(session)]
    with st.form("new_silence", clear_on_submit=True):
        cols = st.columns([2, 1, 3])
        # one account by default: muting every account is a choice, made on purpose
        account = cols[0].selectbox("Account", [*names, ALL])
        minutes = cols[1].number_input("Minutes", min_value=1, max_value=60 * 24 * 30, value=60, step=15)
        reason = cols[2].text_input("Reason", placeholder="e.g. topping up, deploy")
        if st.form_submit_button("Silence"):
            made = create_silence(
                ctx.sessions,
                None if account == ALL else account,
                datetime.now(UTC),
                float(minutes),
                reason.strip() or None,
            )
            st.success(f"Silenced {md(made.account or 'all accounts')} until {fmt.when(made.ends_at, zone)}.")
    active = active_silences(ctx.sessions, datetime.now(UTC))  # after the form: lists a new one
    if not active:
        st.caption("No active silence.")
        return
    frame = tables.localise(pd.DataFrame([asdict(s) for s in active]), ["starts_at", "ends_at"], zone)
    frame["account"] = frame["account"].fillna(ALL)
    tables.show(
        frame,
        "silences",
        key="silences_table",
        column_config={"starts_at": tables.time_column("from"), "ends_at": tables.time_column("until")},
    )
    for s in active:
        label = f"End silence \\#{s.id} ({md(s.account or 'all accounts')}, until {fmt.when(s.ends_at, zone)})"
        if st.button(label, key=f"end_silence_{s.id}"):
            end_silence(ctx.sessions, s.id, datetime.now(UTC))
            st.rerun()


def _status_style(value: str) -> str:
    color = {"failed": COLORS[CRITICAL], "pending": COLORS[WARNING], "sending": COLORS[WARNING]}.get(value)
    return f"color: {color}; font-weight: bold" if color else ""


def _deliveries(ctx: DashboardContext, zone: tzinfo) -> None:
    st.subheader("Deliveries")
    st.caption(
        "Each message on each channel: pending (with its next try), sending, sent, or failed with the reason. "
        "Temporary failures are retried with a growing wait; permanent ones are not."
    )
    counts = delivery_counts(ctx.sessions)
    cols = st.columns(len(counts))
    for col, (status, count) in zip(cols, counts.items(), strict=True):
        col.metric(status.capitalize(), count)
    rows = recent_deliveries(ctx.sessions, limit=200)
    if not rows:
        st.caption("No alert message yet.")
        return
    frame = tables.localise(pd.DataFrame([asdict(r) for r in rows]), ["created_at", "next_attempt_at", "sent_at"], zone)
    tables.show(
        frame,
        "alert-deliveries",
        key="deliveries_table",
        hide=["id"],
        styler=frame.style.map(_status_style, subset=["status"]),
        column_config={
            "alert": st.column_config.NumberColumn("alert", format="#%d"),
            "created_at": tables.time_column("created"),
            "next_attempt_at": tables.time_column("next try"),
            "sent_at": tables.time_column("sent"),
        },
    )


if __name__ == "__main__":  # run by st.navigation as this page's script
    render(context_or_stop())
