"""The action cards: one per account in danger, saying what to do now (a top-up with its
currency, or which position to reduce by how much) and what the reductions cost.
The remedy text quotes symbols from an exchange: escaped (safe.md) like every such text."""

from __future__ import annotations

from collections.abc import Sequence

import streamlit as st

from app.components import fmt
from app.components.safe import md
from readmodels.actions import ActionCard

ICONS = {"critical": "🔴", "warning": "🟠"}


def cost_text(card: ActionCard) -> str | None:
    """ "Est. cost of the reductions: 6.40 USDT (taker fee + slippage ...)", widened to a
    range when the book is older than the mark."""
    if card.cost is None:
        return None
    amount = fmt.money(card.cost, card.collateral)
    if card.cost_high is not None and card.cost_high > card.cost:
        amount = f"{fmt.money(card.cost)} to {fmt.money(card.cost_high, card.collateral)}"
    text = f"Est. cost of the reductions: {amount} ({card.cost_basis})."
    if card.book_age_seconds is not None:
        text += (
            f" The order book is {fmt.age(card.book_age_seconds)} older than the mark: its levels are moved "
            "to the mark (its depth kept) and the estimate is widened (slippage counted twice)."
        )
    return text


def show_cards(cards: Sequence[ActionCard], key: str) -> None:
    if not cards:
        return
    for i, card in enumerate(cards):
        with st.container(border=True, key=f"mw_action_{key}_{i}"):
            st.markdown(
                f"{ICONS.get(card.level, '')} **{md(card.label)}** · "
                f":{'red' if card.level == 'critical' else 'orange'}[{md(card.level.upper())}] — what to do now"
            )
            for n, line in enumerate(card.lines):
                st.markdown(("**" + md(line[:1].upper() + line[1:]) + "**") if n == 0 else md(line))
            cost = cost_text(card)
            if cost:
                st.caption(md(cost))
