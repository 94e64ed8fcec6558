"""One action card per account in danger: what to do now, in the words the alerts use
(alerts.remedy: a top-up with its currency, or which position to reduce by how much), and
what the reductions cost, priced on the order book the poller stored when there is one.
A book stored before the mark it is compared with is stale for this purpose: the card says
how much older it is and widens the estimate (the slippage counted twice over)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.orm import Session

from alerts import remedy as remedies
from alerts.facts import aim_of
from alerts.render.lines import remedy_lines
from config.settings import Config
from margin.pools import taker_fee
from margin.remedies import DeleveragePlan, Reduction
from margin.slippage import price_plan
from margin.snapshot import Snapshot, SnapshotError, parse_snapshot
from readmodels.accounts import CRITICAL, WARNING, AccountView
from readmodels.risk import StoredBook, stored_books
from store import repo

DANGER = (CRITICAL, WARNING)
BOOK_SLACK_SECONDS = 5.0  # a book this much older than the mark still counts as taken with it


@dataclass(frozen=True)
class ActionCard:
    """`lines`: the remedy, one alternative a line ("add 291.00 USDT ...", "or reduce ...").
    `cost` and `cost_high`: the reductions' taker fee plus slippage (collateral currency);
    `cost_basis` says what priced them; `book_age_seconds` how much older than the mark
    the book is (None when fresh or when no book was used)."""

    account: str
    label: str
    level: str
    collateral: str
    lines: tuple[str, ...]
    cost: float | None
    cost_high: float | None
    cost_basis: str
    book_age_seconds: float | None


def _utc(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes: the store writes UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _reductions(snapshot: Snapshot, cuts: tuple[remedies.Cut, ...]) -> list[Reduction]:
    fee = taker_fee(snapshot)
    out = []
    for cut in cuts:
        index = next(
            (
                i
                for i, p in enumerate(snapshot.positions)
                if p.symbol == cut.symbol and p.side == cut.side and p.margin_mode == "cross"
            ),
            None,
        )
        if index is not None:
            out.append(Reduction(index, cut.symbol, cut.side, cut.contracts, cut.notional, cut.notional * fee, 0.0))
    return out


def _cost(
    snapshot: Snapshot, cuts: tuple[remedies.Cut, ...], books: Mapping[str, StoredBook], mark_at: datetime | None
) -> tuple[float | None, float | None, str, float | None]:
    reductions = _reductions(snapshot, cuts)
    if not reductions:
        return None, None, "", None
    at_mark = sum(r.fee for r in reductions)
    symbols = {r.symbol for r in reductions}
    if not all(s in books for s in symbols):
        return at_mark, None, "taker fee at mark (no order book stored: slippage not included)", None
    if any(p.inverse for p in snapshot.positions):  # margin.slippage walks linear books only
        return at_mark, None, "taker fee at mark (coin-margined: order-book slippage not included)", None
    moved, ages = books_at_mark({s: books[s] for s in symbols}, snapshot, mark_at)
    age = max(ages.values()) if ages else None
    used = {s: moved[s].book for s in symbols}
    plan = DeleveragePlan(1.0, tuple(reductions), None, None, True, "")  # only its reductions are read
    priced = price_plan(snapshot, plan, used)
    fee = sum(f.fee for f in priced.fills)
    slippage = sum(max(0.0, f.slippage) for f in priced.fills)
    unfilled = any(f.unfilled_contracts > 0 for f in priced.fills)
    basis = "taker fee + slippage on the stored order book" + (" (too thin: part unfilled)" if unfilled else "")
    high = fee + 2 * slippage if age is not None else None
    return fee + slippage, high, basis, age


def books_at_mark(
    books: Mapping[str, StoredBook], snapshot: Snapshot, mark_at: datetime | None
) -> tuple[dict[str, StoredBook], dict[str, float]]:
    """The stored books of the snapshot's symbols, each one stored more than
    BOOK_SLACK_SECONDS before the mark moved to the mark (its depth kept); and how much
    older than the mark each moved one was (seconds)."""
    marks = {p.symbol: p.mark_price for p in snapshot.positions}
    result, ages = dict(books), {}
    for symbol, stored in books.items():
        if symbol not in marks or stored.at is None or mark_at is None:
            continue
        lag = (_utc(mark_at) - _utc(stored.at)).total_seconds()
        if lag > BOOK_SLACK_SECONDS:
            result[symbol] = StoredBook(_recentred(stored.book, marks[symbol]), stored.at)
            ages[symbol] = lag
    return result, ages


def _recentred(book: dict, mark: float) -> dict:
    """The book with every price scaled so that its mid is `mark` (the depth kept)."""
    bids, asks = book.get("bids") or [], book.get("asks") or []
    if not bids or not asks or mark <= 0:
        return book
    mid = (float(bids[0][0]) + float(asks[0][0])) / 2
    if mid <= 0:
        return book
    factor = mark / mid
    return {
        **book,
        "bids": [[float(p) * factor, *rest] for p, *rest in bids],
        "asks": [[float(p) * factor, *rest] for p, *rest in asks],
    }


def action_cards(
    views: list[AccountView],
    documents: Mapping[int, str | None],
    marks_at: Mapping[int, datetime | None],
    books: Mapping[str, Mapping[str, StoredBook]],
    config: Config,
) -> list[ActionCard]:
    """A card for every watched account at warning or critical, worst first. `documents`
    and `marks_at`: each account's latest snapshot document and when it was taken (by
    account id); `books`: the stored books by exchange, then symbol."""
    cards = []
    for view in views:
        if view.level not in DANGER or not view.positions:
            continue
        try:
            snapshot = parse_snapshot(json.loads(documents.get(view.account_id) or ""))
        except (SnapshotError, ValueError):
            continue
        rules = config.rules_named(view.name)
        remedy = remedies.plan(snapshot, aim_of(rules, config.target_for(view.name)))
        lines = remedy_lines(remedy, {}, snapshot.collateral)
        if not lines:
            continue
        cost, high, basis, age = _cost(
            snapshot, remedy.cuts, books.get(view.exchange, {}), marks_at.get(view.account_id)
        )
        cards.append(
            ActionCard(view.name, view.label, view.level, snapshot.collateral, tuple(lines), cost, high, basis, age)
        )
    return cards


def load_action_cards(session: Session, views: list[AccountView], config: Config) -> list[ActionCard]:
    """action_cards over the store: the latest documents, their times, the stored books
    of the venues of accounts in danger (a few queries by key)."""
    if not any(v.level in DANGER for v in views):
        return []
    documents, marks_at = {}, {}
    for account, snap in repo.latest_snapshots(session):
        documents[account.id] = account.latest_document
        marks_at[account.id] = snap.taken_at if snap is not None else None
    venues = {v.exchange for v in views if v.level in DANGER}
    books = {venue: stored_books(session, venue) for venue in venues}
    return action_cards(views, documents, marks_at, books, config)
