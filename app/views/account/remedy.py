"""The remedy panel: how much collateral restores the target health, or which positions to
cut and what that costs (margin.report.risk_report on the latest snapshot), and that plan
filled against the order books the poller stored (readmodels.risk.priced_remedy)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import tzinfo

import pandas as pd
import streamlit as st

from app.components import fmt, tables
from app.components.safe import md
from margin.report import risk_report
from margin.slippage import PricedPlan
from margin.snapshot import Snapshot
from readmodels.risk import PricedRemedy, StoredBook, priced_remedy

TOO_LARGE = "too large for the book"


def render_remedy(
    snapshot: Snapshot,
    default_target: float,
    name: str,
    books: Mapping[str, StoredBook] | None = None,
    zone: tzinfo | None = None,
    book_ages: Mapping[str, float] | None = None,
) -> float:
    """The panel; returns the target health it shows (the configured one unless changed here)."""
    st.subheader("What restores it")
    left, right = st.columns(2)
    target = left.number_input(
        "Target health",
        min_value=1.01,
        max_value=1000.0,
        value=float(default_target),
        step=0.1,
        format="%.2f",
        key=f"mw_target_{name}",
        help="Equity / maintenance margin the remedies aim for.",
    )
    slippage_pct = right.number_input(
        "Slippage on reductions (%)",
        min_value=0.0,
        max_value=10.0,
        value=0.0,
        step=0.01,
        format="%.2f",
        key=f"mw_slippage_{name}",
        help="Paid on each reduction beside the taker fee.",
    )
    report = risk_report(snapshot, target, shocks=(), slippage=slippage_pct / 100)
    collateral = snapshot.collateral
    account = report["account"]
    top, plan = st.columns(2)
    with top:
        st.markdown("**Top up**")
        st.metric(f"Collateral to reach health {target:g}", fmt.money(account["topup_to_target"], md(collateral)))
        isolated = [p for p in report["positions"] if p["topup_to_target"]]
        for p in isolated:
            amount = fmt.money(p["topup_to_target"], collateral)
            st.markdown(md(f"{p['symbol']} {p['side']} (isolated): add {amount} to its margin"))
    with plan:
        _deleverage(report, snapshot, collateral)
    if books is not None and zone is not None:
        _priced(priced_remedy(snapshot, books, target, slippage_pct / 100), snapshot, zone, book_ages or {})
    return float(target)


def _deleverage(report: dict, snapshot: Snapshot, collateral: str) -> None:
    summary = report["deleverage_summary"]
    st.markdown("**Or reduce positions**")
    reductions = report["deleverage"]
    if not reductions:
        st.caption(
            "No reduction needed for the cross pool."
            if summary["reaches_target"]
            else "No reduction raises the health."
        )
    else:
        frame = pd.DataFrame(reductions)
        steps = {i: p.amount_step for i, p in enumerate(snapshot.positions)}
        frame["contracts_text"] = [fmt.contracts(r["reduce_contracts"], steps.get(r["position"])) for r in reductions]
        tables.show(
            frame,
            "deleverage-plan",
            key="deleverage_plan",
            column_order=["symbol", "side", "contracts_text", "reduce_notional", "fee", "slippage_cost"],
            column_config={
                "contracts_text": st.column_config.TextColumn("reduce (contracts)"),
                "reduce_notional": st.column_config.NumberColumn(
                    f"Notional ({collateral})", format=fmt.money_format(collateral)
                ),
                "fee": st.column_config.NumberColumn(f"Fee ({collateral})", format=fmt.money_format(collateral)),
                "slippage_cost": st.column_config.NumberColumn(
                    f"Slippage ({collateral})", format=fmt.money_format(collateral)
                ),
            },
        )
        cols = st.columns(4)
        cols[0].metric("Health before", fmt.ratio(summary["health_before"]))
        cols[1].metric("Health after", fmt.ratio(summary["health_after"]))
        after = summary["nearest_distance_after"]
        cols[2].metric(
            "Nearest liquidation after",
            fmt.DASH if after is None else fmt.percent(after),
            help="The plan never brings a liquidation price nearer, on either side.",
        )
        cols[3].metric(f"Cost ({md(collateral)})", fmt.money(summary["total_cost"]), help="Taker fee + slippage.")
    if summary["note"]:
        (st.info if summary["reaches_target"] else st.warning)(md(summary["note"]))


def fills_frame(priced: PricedPlan, snapshot: Snapshot) -> pd.DataFrame:
    """One row per cut of the plan as the book fills it; `book` says when it cannot."""
    rows = []
    for f in priced.fills:
        step = snapshot.positions[f.reduction.index].amount_step
        rows.append(
            {
                "symbol": f.reduction.symbol,
                "side": f.reduction.side,
                "reduce": fmt.contracts(f.reduction.contracts, step),
                "filled": fmt.contracts(f.filled_contracts, step),
                "mark": f.mark,
                "vwap": f.vwap,
                "worst_price": f.worst_price,
                "slippage": f.slippage,
                "slippage_fraction": f.slippage_fraction,
                "fee": f.fee,
                "levels": f.levels,
                "book": f"{TOO_LARGE}: {fmt.contracts(f.unfilled_contracts, step)} unfilled"
                if f.unfilled_contracts > 0
                else "fills",
            }
        )
    return pd.DataFrame(rows)


def _priced(remedy: PricedRemedy, snapshot: Snapshot, zone: tzinfo, ages: Mapping[str, float]) -> None:
    if not remedy.plan.reductions:
        return
    st.markdown("**The reductions at the order book's prices**")
    if remedy.missing_books:
        st.info(
            f"No order book stored for {md(', '.join(remedy.missing_books))}: the plan above is priced at "
            "mark only. The poller stores the books of an account's plan while it is under its target "
            "health."
        )
        return
    priced = remedy.priced
    if priced is None:  # not reached: every symbol has a book
        return
    frame = fills_frame(priced, snapshot)
    money = "%,.2f"
    prices = ["mark", "vwap", "worst_price"]  # to the market's tick, like the positions
    styler = frame.style.format(fmt.price, subset=prices)
    tables.show(
        frame,
        "deleverage-at-book",
        styler=styler,
        key="deleverage_book",
        column_config={
            "reduce": st.column_config.TextColumn("reduce (contracts)"),
            "vwap": st.column_config.NumberColumn("expected fill (VWAP)"),
            "worst_price": st.column_config.NumberColumn("worst level"),
            "mark": st.column_config.NumberColumn("mark"),
            "slippage": st.column_config.NumberColumn(
                f"slippage vs mark ({snapshot.collateral})",
                format=money,
                help="(mark − VWAP) × size for a sale; positive: a cost.",
            ),
            "slippage_fraction": st.column_config.NumberColumn("slippage %", format="percent"),
            "fee": st.column_config.NumberColumn(f"taker fee ({snapshot.collateral})", format=money),
            "levels": st.column_config.NumberColumn("levels taken"),
        },
    )
    cols = st.columns(4)
    cols[0].metric("Health at mark", fmt.ratio(priced.health_at_mark), help="What the plan promises at mark.")
    cols[1].metric(
        "Health reached at book prices",
        fmt.ratio(priced.health_after),
        help="After the fills at VWAP and the taker fee.",
    )
    cols[2].metric(f"Slippage ({md(snapshot.collateral)})", fmt.money(priced.total_slippage))
    cols[3].metric(f"Fee ({md(snapshot.collateral)})", fmt.money(priced.total_fee))
    if priced.unfilled:
        st.error(f"The plan is {TOO_LARGE}: " + md(priced.note))
    elif priced.note:
        st.warning(md(priced.note))
    older = {s: ages[s] for s in remedy.books_at if s in ages}
    if older:
        st.warning(
            f"The order book of {md(', '.join(sorted(older)))} is {fmt.age(max(older.values()))} older than the "
            "mark: its levels are moved to the mark (its depth kept), so the slippage is the book's depth, not "
            "the price's move since; it may have thinned since, so take this as an estimate."
        )
    times = [t for t in remedy.books_at.values() if t is not None]
    if times:
        st.caption(
            f"Books stored {fmt.when(min(times), zone)} (the poller refreshes them while the account is "
            "under its target; a book moves, so this is an estimate)."
        )
