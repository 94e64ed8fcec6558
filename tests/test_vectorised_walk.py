"""The vectorised walks (margin.walk, issue 11's speed goal): hedge groups laid out by their
number of legs, up to 8 as they are and more padded to a power of two, find the prices the
scalar engine finds, on both sides and at a health other than 1."""

from __future__ import annotations

import os

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from margin.liquidation import all_liquidations
from margin.snapshot import parse_snapshot
from margin.vectorised import batch_from_snapshots, evaluate, health_prices
from margin.walk import layout
from tests.helpers import assert_same_price
from tests.inverse_strategies import inverse_snapshots
from tests.strategies import snapshots

SETTINGS = settings(max_examples=int(os.environ.get("MARGINWATCH_EXAMPLES", "300")), deadline=None)


@st.composite
def big_hedge_books(draw: st.DrawFn) -> dict:
    """A cross book (linear or coin-margined, any venue of the strategies) whose first
    position's symbol gets 6 to 14 more legs: one hedge group of 7 to 19 positions beside
    the book's others."""
    book = draw(st.one_of(snapshots(modes=("cross",)), inverse_snapshots(modes=("cross",))))
    first = book["positions"][0]
    legs = [
        {
            **first,
            "side": draw(st.sampled_from(["long", "short"])),
            "contracts": first["contracts"] * draw(st.floats(0.05, 3.0)),
            "entry_price": first["mark_price"] * (1 + draw(st.floats(-0.3, 0.3))),
        }
        for _ in range(draw(st.integers(6, 14)))
    ]
    return {**book, "positions": [*book["positions"], *legs]}


@SETTINGS
@given(st.lists(big_hedge_books(), min_size=1, max_size=3))
def test_many_legged_groups_equal_the_scalar_engine(docs: list[dict]) -> None:
    snaps = [parse_snapshot(d) for d in docs]
    batch = batch_from_snapshots(snaps)
    result = evaluate(batch)
    at_health = health_prices(batch, 1.5)
    for k in range(batch.size.shape[0]):
        snap, i = snaps[batch.account[k]], int(batch.index[k])
        mark = snap.positions[i].mark_price
        found = all_liquidations(snap)[i]
        assert_same_price(result.liquidation_price_down[k], found.down, mark)
        assert_same_price(result.liquidation_price_up[k], found.up, mark)
        scalar = all_liquidations(snap, 1.5)[i]
        assert_same_price(at_health[0][k], scalar.down, mark)
        assert_same_price(at_health[1][k], scalar.up, mark)


def test_the_layout_keeps_each_group_s_rows_in_order_and_pads_big_groups() -> None:
    """Groups of 1, 3 and 11 legs, their rows interleaved: three classes, the 11 legs
    padded to 16 with n (no position), every group's rows in the batch's order."""
    group = np.array([2, 0, 1, 2, 2, 1, 2, 2, 2, 1, 2, 2, 2, 2, 2])
    n = group.size
    classes = {rows.shape[0]: (ids.tolist(), rows) for ids, rows in layout(group, 3)}
    assert sorted(classes) == [1, 3, 16]
    assert classes[1][0] == [0] and classes[1][1].tolist() == [[1]]
    assert classes[3][0] == [1] and classes[3][1][:, 0].tolist() == [2, 5, 9]
    ids, rows = classes[16]
    assert ids == [2]
    assert rows[:, 0].tolist() == [r for r in range(n) if group[r] == 2] + [n] * 5
