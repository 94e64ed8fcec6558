"""The trigger book and the mark gate (connectors/triggers.py): pure, no streams."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.triggers import MarkGate, TriggerBook, Watch


def test_a_mark_inside_every_band_fires_nothing_and_a_crossing_fires_once() -> None:
    book = TriggerBook()
    book.set_account("a", [Watch("a", "BTC", 90.0, 110.0, "critical")])
    book.set_account("b", [Watch("b", "BTC", 80.0, None, "warning")])
    assert book.check("v", "BTC", 100.0, 1) == []
    fired = book.check("v", "BTC", 85.0, 2)
    assert [(c.account, c.bound, c.mark, c.timestamp, c.watch.label) for c in fired] == [
        ("a", "low", 85.0, 2, "critical")
    ]
    assert book.check("v", "BTC", 84.0, 3) == []  # spent until replaced
    assert [(c.account, c.bound) for c in book.check("v", "BTC", 79.0, 4)] == [("b", "low")]
    assert book.check("v", "BTC", 200.0, 5) == []  # everything fired
    assert book.armed("BTC") == []


def test_bounds_are_inclusive_and_replacing_rearms() -> None:
    book = TriggerBook()
    watch = Watch("a", "ETH", 3000.0, 3400.0)
    book.set_account("a", [watch])
    assert [(c.bound, c.mark) for c in book.check("v", "ETH", 3400.0, 1)] == [("high", 3400.0)]
    book.set_account("a", [watch])  # the same band again after a re-poll: armed again
    assert [c.bound for c in book.check("v", "ETH", 3000.0, 2)] == ["low"]
    book.set_account("a", [])
    assert book.check("v", "ETH", 1.0, 3) == [] and book.symbols() == set()


def test_a_watch_set_outside_its_band_fires_at_the_next_mark() -> None:
    book = TriggerBook()
    book.set_account("a", [Watch("a", "SOL", 150.0, None)])
    assert [c.bound for c in book.check("v", "SOL", 140.0, 1)] == ["low"]


def test_bad_watches_are_refused() -> None:
    with pytest.raises(ValueError, match="low < high"):
        Watch("a", "BTC", 100.0, 100.0)
    with pytest.raises(ValueError, match="given for"):
        TriggerBook().set_account("a", [Watch("b", "BTC", 1.0, 2.0)])


def test_the_gate_refuses_duplicates_and_older_marks() -> None:
    gate = MarkGate()
    assert gate.accept("BTC", 100.0, 10)
    assert not gate.accept("BTC", 100.0, 10)  # the same frame twice
    assert not gate.accept("BTC", 90.0, 9)  # an older frame arriving late
    assert gate.accept("BTC", 101.0, 10)  # same time, other price: the later arrival wins
    assert gate.accept("ETH", 5.0, 1)  # per symbol
    assert gate.latest("BTC") == (10, 101.0)
    assert gate.accept("BTC", 50.0, None)  # no time to order by


bands = st.tuples(
    st.sampled_from(["a", "b", "c", "d"]),
    st.one_of(st.none(), st.floats(1, 1000)),
    st.one_of(st.none(), st.floats(1, 1000)),
).filter(lambda t: t[1] is None or t[2] is None or t[1] < t[2])


@settings(max_examples=200, deadline=None)
@given(st.lists(bands, max_size=12), st.lists(st.floats(0.5, 1001), min_size=1, max_size=20))
def test_each_watch_fires_once_at_the_first_mark_outside_its_band(band_list, marks) -> None:
    """Against a plain scan: a watch fires exactly at the first mark <= low or >= high."""
    book = TriggerBook()
    watches: dict[str, list[Watch]] = {}
    for i, (account, low, high) in enumerate(band_list):
        watches.setdefault(account, []).append(Watch(account, "X", low, high, str(i)))
    book.replace(watches)
    expected: dict[str, int] = {}
    for step, mark in enumerate(marks):
        for group in watches.values():
            for w in group:
                out = (w.low is not None and mark <= w.low) or (w.high is not None and mark >= w.high)
                if out and w.label not in expected:
                    expected[w.label] = step
    seen: dict[str, int] = {}
    for step, mark in enumerate(marks):
        for crossing in book.check("v", "X", mark, step):
            assert crossing.watch.label not in seen
            seen[crossing.watch.label] = step
            bound = crossing.watch.low if crossing.bound == "low" else crossing.watch.high
            assert bound is not None
            assert mark <= bound if crossing.bound == "low" else mark >= bound
    assert seen == expected
