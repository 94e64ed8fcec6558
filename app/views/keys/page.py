"""The accounts & keys page: every configured account beside what the store knows of it —
polling state and why, last success, last error, and what its API key may do."""

from __future__ import annotations

from datetime import tzinfo

import pandas as pd
import streamlit as st

from app.components import fmt, tables, tz
from app.components.context import DashboardContext, context_or_stop
from app.components.levels import COLORS, CRITICAL, OK, WARNING
from store import repo
from store.schema import Account, KeyCheck

TIMES = ["state_since", "last_success", "last_attempt", "key_checked_at"]
KEY_COLORS = {
    "read-only": COLORS[OK],
    "trade": COLORS[WARNING],
    "refused": COLORS[CRITICAL],
    "unverified": COLORS[WARNING],
}


def accounts_frame(ctx: DashboardContext) -> pd.DataFrame:
    """Configured accounts first (in config order), then stored ones no longer configured."""
    with ctx.sessions() as session:
        stored = {a.name: a for a in repo.accounts(session)}
        keys = repo.latest_key_checks(session)
    rows = []
    for cfg in ctx.config.accounts:
        rows.append(
            _row(
                cfg.name,
                cfg.exchange,
                cfg.sub_account,
                cfg.collateral,
                True,
                ctx.target_health(cfg.name),
                stored.get(cfg.name),
                keys,
            )
        )
    for name, account in stored.items():
        if ctx.account_config(name) is None:
            rows.append(
                _row(name, account.exchange, account.sub_account, account.collateral, False, None, account, keys)
            )
    return pd.DataFrame(rows)


def _row(
    name: str,
    exchange: str,
    sub: str | None,
    collateral: str,
    configured: bool,
    target: float | None,
    account: Account | None,
    keys: dict[int, KeyCheck],
) -> dict:
    check = keys.get(account.id) if account else None
    # what needs a person first: state, key, last success and error; labels after
    return {
        "account": f"{exchange}/{name}",
        "state": account.state if account else "not polled yet",
        "key": check.status if check else "not checked",
        "last_success": account.last_success_at if account else None,
        "last_error": account.last_error if account else None,
        "reason": account.state_reason if account else None,
        "key_detail": check.detail if check else None,
        "state_since": account.state_since if account else None,
        "last_attempt": account.last_attempt_at if account else None,
        "failures_in_a_row": account.consecutive_failures if account else None,
        "key_checked_at": check.checked_at if check else None,
        "sub_account": sub,
        "collateral": collateral,
        "target_health": target,
        "configured": "yes" if configured else "no (stored only)",
        "_id": account.id if account else None,
    }


def render(ctx: DashboardContext) -> None:
    st.title("Accounts & keys")
    zone = tz.current()
    frame = accounts_frame(ctx)
    if frame.empty:
        st.info("No account is configured or stored.")
        return
    shown = tables.localise(frame, TIMES, zone)

    def style(row: pd.Series) -> list[str]:
        styles = [""] * len(row)
        index = list(row.index)
        if row["state"] in ("paused", "refused"):
            styles[index.index("state")] = f"color: {COLORS[CRITICAL]}; font-weight: bold"
        color = KEY_COLORS.get(row["key"])
        if color:
            styles[index.index("key")] = f"color: {color}; font-weight: bold"
        return styles

    config = {c: tables.time_column(c.replace("_", " ")) for c in TIMES}
    config["target_health"] = st.column_config.NumberColumn("target health", format="%.2f")
    config["failures_in_a_row"] = st.column_config.NumberColumn("failures in a row", format="%d")
    config["last_error"] = st.column_config.TextColumn("Last error", width="large", help="Hover a cell for all of it.")
    table = shown.drop(columns=["_id"])
    tables.show(
        table,
        "accounts-and-keys",
        styler=table.style.apply(style, axis=1).format(na_rep=fmt.DASH),
        column_config=config,
        key="accounts_keys",
    )
    st.caption(
        "Use read-only keys: a key that can withdraw is refused (never polled); one that can "
        "trade is polled with a standing warning."
    )
    _errors(ctx, frame, zone)


def _errors(ctx: DashboardContext, frame: pd.DataFrame, zone: tzinfo) -> None:
    st.subheader("Recent poll errors")
    stored = frame.dropna(subset=["_id"])
    if stored.empty:
        return
    label = st.selectbox("Account", list(stored["account"]), key="mw_errors_account")
    account_id = int(stored.loc[stored["account"] == label, "_id"].iloc[0])
    with ctx.sessions() as session:
        errors = repo.recent_errors(session, account_id, limit=50)
    if not errors:
        st.caption("No error recorded.")
        return
    errors_frame = pd.DataFrame(
        [
            {"occurred_at": e.occurred_at, "kind": e.kind, "error_class": e.error_class, "message": e.message}
            for e in errors
        ]
    )
    # the same error recorded twice at one time (two calls of one poll) is one row, counted
    keys = ["occurred_at", "kind", "error_class", "message"]
    errors_frame = (
        errors_frame.fillna({"error_class": "", "kind": ""})
        .groupby(keys, sort=False, dropna=False)
        .size()
        .reset_index(name="times")
    )
    tables.show(
        tables.localise(errors_frame, ["occurred_at"], zone),
        f"errors-{label.replace('/', '-')}",
        column_config={
            "occurred_at": tables.time_column("At"),
            "error_class": st.column_config.TextColumn("Error"),
            "times": st.column_config.NumberColumn("Times", format="%d"),
        },
        key="errors_table",
    )


if __name__ == "__main__":  # run by st.navigation as this page's script
    render(context_or_stop())
