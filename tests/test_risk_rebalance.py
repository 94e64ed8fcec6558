"""Collateral rebalancing (margin.rebalance): feasible, minimal, and the shortfall."""

from __future__ import annotations

from itertools import combinations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from margin.rebalance import AccountState, RebalancePlan, rebalance

TOL = 1e-7

surplus_accounts = st.lists(st.integers(-40, 40), min_size=1, max_size=6).map(
    lambda xs: [AccountState.from_surplus(f"a{i}", float(x)) for i, x in enumerate(xs)]
)
pool_accounts = st.lists(
    st.tuples(st.floats(0.0, 1000.0), st.floats(1.0, 500.0), st.floats(1.05, 3.0)), min_size=1, max_size=6
).map(lambda rows: [AccountState(f"p{i}", e, r, t) for i, (e, r, t) in enumerate(rows)])


def _min_transfers_by_hall(give: dict[str, float], need: dict[str, float]) -> int:
    """Brute force, independent of the group argument: the fewest donor → receiver edges
    that can carry the money, by Gale's/Hall's supply-demand condition (every set of
    receivers needs no more than its neighbouring donors can give)."""
    receivers = [r for r, x in need.items() if x > TOL]
    donors = [d for d, x in give.items() if x > TOL]
    edges = [(d, r) for d in donors for r in receivers]
    subsets = [s for k in range(1, len(receivers) + 1) for s in combinations(receivers, k)]
    for m in range(len(receivers), len(edges) + 1):
        for chosen in combinations(edges, m):
            if all(
                sum(need[r] for r in s) <= sum(give[d] for d in {d for d, r in chosen if r in s}) + TOL for s in subsets
            ):
                return m
    raise AssertionError("no feasible transfer set")


def _check_feasible(accounts: list[AccountState], plan: RebalancePlan) -> None:
    by_name = {a.name: a for a in accounts}
    for t in plan.transfers:
        assert t.amount > 0
        assert by_name[t.source].surplus > 0 > by_name[t.destination].surplus
    for a in accounts:
        after = plan.equity_after[a.name]
        if a.surplus >= 0:  # a donor never goes below its own target
            assert after >= a.equity - a.surplus - TOL
        else:  # a receiver never goes past it
            assert after <= a.target_health * a.requirement + TOL


@settings(max_examples=150, deadline=None)
@given(st.one_of(surplus_accounts, pool_accounts))
def test_transfers_are_feasible_and_cover_what_they_can(accounts: list[AccountState]) -> None:
    plan = rebalance(accounts)
    _check_feasible(accounts, plan)
    surplus = sum(max(0.0, a.surplus) for a in accounts)
    deficit = sum(max(0.0, -a.surplus) for a in accounts)
    assert plan.total_moved == pytest.approx(min(surplus, deficit), abs=TOL)
    assert plan.shortfall == pytest.approx(max(0.0, deficit - surplus), abs=TOL)
    if surplus >= deficit:  # everyone at or above target
        for a in accounts:
            assert plan.equity_after[a.name] >= a.target_health * a.requirement - TOL


@settings(max_examples=150, deadline=None)
@given(st.one_of(surplus_accounts, pool_accounts))
def test_the_transfer_count_is_minimal(accounts: list[AccountState]) -> None:
    plan = rebalance(accounts)
    assert plan.method == "exact"
    give = {a.name: max(0.0, a.surplus) for a in accounts}
    # what each receiver gets is fixed when the surplus is short (all of it is shared out)
    need = {a.name: plan.equity_after[a.name] - a.equity for a in accounts if a.surplus < 0}
    assert len(plan.transfers) == _min_transfers_by_hall(give, need)
    assert len(plan.transfers) <= len(rebalance(accounts, exact_limit=0).transfers)


@settings(max_examples=100, deadline=None)
@given(pool_accounts)
def test_a_short_surplus_raises_the_lowest_health_first(accounts: list[AccountState]) -> None:
    plan = rebalance(accounts)
    receivers = [a for a in accounts if a.surplus < 0]
    if plan.shortfall <= TOL or not receivers:
        return
    health = {a.name: plan.equity_after[a.name] / a.requirement for a in receivers}
    got = {a.name: plan.equity_after[a.name] - a.equity for a in receivers}
    # water-filling: the receivers still under target that got money share one level h;
    # one that got nothing already stood at or above h; one that reached its target, below h
    filling = [a.name for a in receivers if got[a.name] > TOL and health[a.name] < a.target_health - 1e-9]
    if not filling:
        return
    level = health[filling[0]]
    assert all(health[n] == pytest.approx(level, abs=1e-6) for n in filling)
    for a in receivers:
        if got[a.name] <= TOL:
            assert health[a.name] >= level - 1e-6
        elif a.name not in filling:
            assert a.target_health <= level + 1e-6


def test_by_hand_two_groups_beat_greedy() -> None:
    # {+9, +3, −12} and {+6, +4, −8, −2} settle apart: 7 accounts − 2 groups = 5 transfers;
    # largest-first greedy needs 6.
    accounts = [
        AccountState.from_surplus(n, x)
        for n, x in [("a", 9), ("b", -8), ("c", 6), ("d", -2), ("e", 3), ("f", 4), ("g", -12)]
    ]
    exact, greedy = rebalance(accounts), rebalance(accounts, exact_limit=0)
    assert (exact.method, len(exact.transfers)) == ("exact", 5)
    assert (greedy.method, len(greedy.transfers)) == ("greedy", 6)
    into_g = {(t.source, t.destination) for t in exact.transfers if t.destination == "g"}
    assert into_g == {("a", "g"), ("e", "g")}


def test_by_hand_health_targets_and_shortfall() -> None:
    # a: 120 / 100 at target 1.5 needs 30; b: 100 / 100 needs 50; c: 110 / 50 gives 35; d gives 10.
    # 45 < 80: shortfall 35; common health h with (h − 1.2) 100 + (h − 1) 100 = 45: h = 1.325.
    accounts = [
        AccountState("a", 120, 100, 1.5),
        AccountState("b", 100, 100, 1.5),
        AccountState("c", 110, 50, 1.5),
        AccountState("d", 160, 100, 1.5),
    ]
    plan = rebalance(accounts)
    assert plan.shortfall == pytest.approx(35.0)
    assert plan.equity_after == pytest.approx({"a": 132.5, "b": 132.5, "c": 75.0, "d": 150.0})
    assert len(plan.transfers) == 3  # 4 accounts, one group: no subset settles on its own
    # a transfer cap: c may only move 20 out
    capped = rebalance([*accounts[:2], AccountState("c", 110, 50, 1.5, transferable=20), accounts[3]])
    assert capped.total_surplus == pytest.approx(30.0) and capped.shortfall == pytest.approx(50.0)


def test_spare_surplus_stays_with_donors_and_unneeded_donors_do_nothing() -> None:
    accounts = [
        AccountState.from_surplus("big", 100),
        AccountState.from_surplus("small", 5),
        AccountState.from_surplus("r1", -30),
        AccountState.from_surplus("r2", -20),
    ]
    plan = rebalance(accounts)
    assert len(plan.transfers) == 2 and {t.source for t in plan.transfers} == {"big"}
    assert plan.equity_after["small"] == 5 and plan.equity_after["big"] == 50
    assert rebalance([AccountState.from_surplus("x", 10)]).transfers == ()


def test_large_sets_fall_back_to_greedy() -> None:
    amounts = [17, -3, 25, -40, 8, -11, 5, -9, 30, -22, 14, -6, 2, -10, -1, 12, -7, 4, -5, 2]
    accounts = [AccountState.from_surplus(f"a{i}", float(x)) for i, x in enumerate(amounts)]
    plan = rebalance(accounts)
    assert plan.method == "greedy"
    _check_feasible(accounts, plan)
    assert len(plan.transfers) <= len(accounts) - 1
    assert plan.total_moved == pytest.approx(sum(x for x in amounts if x < 0) * -1)
    with pytest.raises(ValueError):
        rebalance([AccountState.from_surplus("x", 1), AccountState.from_surplus("x", -1)])
