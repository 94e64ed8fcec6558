"""The deleverage plan priced against order books (margin.slippage), on hand-checked books."""

from __future__ import annotations

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from margin.remedies import DeleveragePlan, Reduction, deleverage_plan
from margin.slippage import price_plan
from margin.snapshot import parse_snapshot
from tests.strategies import snapshots

SYM = "A/USDT:USDT"


def _snapshot(wallet: float, side: str = "long", contracts: float = 10, contract_size: float = 0.5):
    # 10 contracts of 0.5 = 5 base units at 100; 5 % maintenance: requirement 25
    return parse_snapshot(
        {
            "exchange": "binanceusdm",
            "account": "t",
            "collateral": "USDT",
            "wallet_balance": wallet,
            "taker_fee": 0.001,
            "positions": [
                {
                    "symbol": SYM,
                    "side": side,
                    "contracts": contracts,
                    "contract_size": contract_size,
                    "entry_price": 100,
                    "mark_price": 100,
                    "margin_mode": "cross",
                    "maintenance_margin_rate": 0.05,
                }
            ],
        }
    )


def _plan(*cuts: float, side: str = "long", target: float = 1.5) -> DeleveragePlan:
    reductions = tuple(Reduction(0, SYM, side, c, c * 0.5 * 100, 0.0, 0.0) for c in cuts)
    return DeleveragePlan(target, reductions, 1.2, 1.5, True, "")


BOOK = {SYM: {"bids": [[99.5, 1], [99.0, 2], [98.0, 100]], "asks": [[100.5, 1], [101.0, 5]]}}


def test_selling_a_long_walks_the_bids() -> None:
    # 2 contracts = 1 base unit: 0.5 at 99.5 (1 contract) and 0.5 at 99.0
    priced = price_plan(_snapshot(30.0), _plan(2), BOOK)
    (fill,) = priced.fills
    assert fill.vwap == pytest.approx(99.25)
    assert fill.filled_contracts == 2 and fill.unfilled_contracts == 0
    assert (fill.levels, fill.worst_price) == (2, 99.0)
    assert fill.slippage == pytest.approx(0.75)  # (100 − 99.25) × 1
    assert fill.slippage_fraction == pytest.approx(0.0075)
    assert fill.fee == pytest.approx(0.09925)  # 0.1 % of 99.25
    # wallet 30 − 0.75 − 0.09925; 8 contracts left = 4 base: requirement 20
    assert priced.health_after == pytest.approx((30 - 0.75 - 0.09925) / 20)
    assert not priced.reaches_target  # 1.4575 < 1.5
    assert "top up" in priced.note
    assert priced.total_fee == pytest.approx(0.09925) and priced.total_slippage == pytest.approx(0.75)


def test_book_amounts_in_base_units() -> None:
    priced = price_plan(_snapshot(30.0), _plan(2), BOOK, amounts_in="base")
    assert priced.fills[0].vwap == pytest.approx(99.5)  # the first level holds 1 base unit


def test_buying_back_a_short_walks_the_asks() -> None:
    priced = price_plan(_snapshot(30.0, side="short"), _plan(2, side="short"), BOOK)
    (fill,) = priced.fills
    assert fill.vwap == pytest.approx(100.75)  # 0.5 at 100.5, 0.5 at 101
    assert fill.slippage == pytest.approx(0.75)
    assert priced.health_after == pytest.approx((30 - 0.75 - 0.001 * 100.75) / 20)


def test_two_cuts_of_one_side_take_the_book_in_turn() -> None:
    priced = price_plan(_snapshot(30.0), _plan(1, 1), BOOK)
    assert [f.vwap for f in priced.fills] == pytest.approx([99.5, 99.0])


def test_a_book_too_shallow_says_which_cut_and_how_much() -> None:
    book = {SYM: {"bids": [[99.0, 1], [98.5, 0.5]], "asks": []}}
    priced = price_plan(_snapshot(30.0), _plan(4), book)
    (fill,) = priced.fills
    assert fill.filled_contracts == pytest.approx(1.5)
    assert fill.unfilled_contracts == pytest.approx(2.5)
    assert priced.unfilled == ((0, SYM, pytest.approx(2.5)),)
    assert "too shallow" in priced.note and SYM in priced.note
    # no book at all: nothing fills, nothing is paid
    empty = price_plan(_snapshot(30.0), _plan(4), {})
    assert empty.fills[0].vwap is None and empty.fills[0].unfilled_contracts == 4
    assert empty.health_after == pytest.approx(30 / 25)


def test_unsorted_levels_are_taken_best_first() -> None:
    book = {SYM: {"bids": [[98.0, 100], [99.5, 1], [99.0, 2, 7]], "asks": []}}  # extra column: order count
    assert price_plan(_snapshot(30.0), _plan(2), book).fills[0].vwap == pytest.approx(99.25)


def _books_at(doc: dict, slippage: float) -> dict:
    marks = {p["symbol"]: p["mark_price"] for p in doc["positions"]}
    deep = 1e12
    return {s: {"bids": [[m * (1 - slippage), deep]], "asks": [[m * (1 + slippage), deep]]} for s, m in marks.items()}


@settings(max_examples=100, deadline=None)
@given(snapshots(), st.sampled_from([0.0, 0.001, 0.01]))
def test_a_deep_book_reproduces_the_plan_at_flat_slippage(doc: dict, slippage: float) -> None:
    """With no fee, filling every cut at mark × (1 ∓ δ) is what margin.remedies charges for a
    flat slippage δ: the same health after."""
    doc["taker_fee"] = 0.0
    snap = parse_snapshot(doc)
    plan = deleverage_plan(snap, 1.5, slippage)
    assume(plan.reductions)
    priced = price_plan(snap, plan, _books_at(doc, slippage))
    assert not priced.unfilled
    if plan.health_after is None:
        assert priced.health_after is None
    else:
        assert priced.health_after == pytest.approx(plan.health_after, rel=1e-9, abs=1e-9)
    for fill in priced.fills:
        assert fill.slippage_fraction == pytest.approx(slippage, abs=1e-12)
