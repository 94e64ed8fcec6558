"""Collateral rebalancing across one owner's accounts with the fewest transfers.

Money in one collateral currency (the lead converts first). An account's surplus is
equity − target × requirement of its cross pool: a donor (surplus > 0) can give that much
and stay at its own target, optionally capped by what the venue lets it transfer out; a
receiver (surplus < 0) needs −surplus to reach its target. The requirement does not depend
on the balance, so moving collateral changes health linearly and exactly.

Fewest transfers: the transfers form a forest whose trees each hold enough surplus for
their receivers, and a tree of c accounts needs c − 1 transfers; so n accounts need
n − k transfers, where k is the largest number of disjoint self-sufficient groups (sum of
surpluses ≥ 0) they split into. A donor nobody needs is a group of its own and costs
nothing; with more surplus than deficit the spare stays with the donors. Up to
EXACT_LIMIT accounts k is found exactly by dynamic programming over subsets
(O(3^n) submask pairs); beyond it, largest-first greedy matching (after exact-amount
pairs), which needs at most n − 1 transfers.

When the total surplus is short, all of it is moved and shared so as to raise the lowest
health first (water-filling: every receiver is brought to a common health h, or its
target if lower, with h as high as the surplus allows); the shortfall is what is missing.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

EXACT_LIMIT = 12


@dataclass(frozen=True)
class AccountState:
    """An account's cross pool: equity and maintenance requirement (collateral currency),
    its own target health, and optionally the most the venue lets it transfer out."""

    name: str
    equity: float
    requirement: float
    target_health: float
    transferable: float | None = None

    @classmethod
    def from_surplus(cls, name: str, surplus: float) -> AccountState:
        """An account known only by its surplus (> 0) or deficit (< 0). A deficit is
        modelled as equity 0 against a requirement of the deficit at target 1, so its
        'health' is the share of the deficit covered."""
        if surplus >= 0:
            return cls(name, surplus, 0.0, 1.0)
        return cls(name, 0.0, -surplus, 1.0)

    @property
    def surplus(self) -> float:
        """What it can give (> 0) or needs (< 0) to sit exactly at its target."""
        value = self.equity - self.target_health * self.requirement
        if value > 0 and self.transferable is not None:
            value = min(value, max(self.transferable, 0.0))
        return value


@dataclass(frozen=True)
class Transfer:
    source: str
    destination: str
    amount: float


@dataclass(frozen=True)
class RebalancePlan:
    """Transfers, how they were found, money moved and missing, and each account's equity
    after the transfers."""

    transfers: tuple[Transfer, ...]
    method: Literal["exact", "greedy"]
    total_deficit: float
    total_surplus: float
    shortfall: float
    equity_after: dict[str, float]

    @property
    def total_moved(self) -> float:
        return sum(t.amount for t in self.transfers)


def rebalance(accounts: Sequence[AccountState], exact_limit: int = EXACT_LIMIT) -> RebalancePlan:
    """The fewest transfers that bring every account to its target health, or, when the
    surplus is short, that move all of it to raise the lowest health first."""
    names = [a.name for a in accounts]
    if len(set(names)) != len(names):
        raise ValueError("account names must be unique")
    surplus = np.array([a.surplus for a in accounts], dtype=float)
    tol = 1e-9 * max(1.0, float(np.abs(surplus).max(initial=0.0)))
    give = np.where(surplus > tol, surplus, 0.0)
    need = np.where(surplus < -tol, -surplus, 0.0)
    total_surplus, total_deficit = float(give.sum()), float(need.sum())
    if total_surplus < total_deficit:
        need = _water_fill(accounts, need, total_surplus)
    balance = give - need  # what each account may lose (> 0) or must gain (< 0)
    players = [i for i in range(len(accounts)) if abs(balance[i]) > tol] if need.any() else []
    amounts = [float(balance[i]) for i in players]
    if len(players) <= exact_limit:
        groups = [[players[j] for j in g] for g in _best_groups(amounts, tol)]
        method: Literal["exact", "greedy"] = "exact"
    else:
        groups = [players]
        method = "greedy"
    transfers: list[Transfer] = []
    for group in groups:
        chain = _settle_exact_pairs if method == "greedy" else _settle
        transfers += [Transfer(names[i], names[j], x) for i, j, x in chain(group, balance, tol)]
    after = {a.name: a.equity for a in accounts}
    for t in transfers:
        after[t.source] -= t.amount
        after[t.destination] += t.amount
    return RebalancePlan(
        tuple(transfers),
        method,
        total_deficit,
        total_surplus,
        max(0.0, total_deficit - total_surplus),
        after,
    )


def _water_fill(accounts: Sequence[AccountState], need: np.ndarray, budget: float) -> np.ndarray:
    """Share `budget` among the receivers: each gets clamp((h − start) × weight, 0, need)
    for the common level h that spends it all (start: current health, weight: requirement)."""
    start = np.zeros_like(need)
    weight = need.copy()  # a bare deficit: level 0 -> 1 covers it
    for i, a in enumerate(accounts):
        if need[i] > 0 and a.requirement > 0:
            start[i], weight[i] = a.equity / a.requirement, a.requirement
    receivers = need > 0
    end = start + np.divide(need, weight, out=np.zeros_like(need), where=receivers)

    def spent(level: float) -> float:
        return float(np.clip((level - start) * weight, 0.0, need)[receivers].sum())

    points = np.unique(np.r_[start[receivers], end[receivers]])
    totals = np.array([spent(p) for p in points])
    k = int(np.searchsorted(totals, budget, side="right"))
    if k == 0:
        level = float(points[0]) if points.size else 0.0
    elif k == points.size:
        level = float(points[-1])
    else:  # spent() is linear between two consecutive breakpoints
        lo, hi = points[k - 1], points[k]
        level = lo + (budget - totals[k - 1]) * (hi - lo) / (totals[k] - totals[k - 1])
    share = np.where(receivers, np.clip((level - start) * weight, 0.0, need), 0.0)
    if share.any():  # put the rounding remainder on the largest share, so the budget balances
        share[np.argmax(share)] += budget - share.sum()
    return share


def _best_groups(amounts: list[float], tol: float) -> list[list[int]]:
    """A partition of the indices into the most groups whose amounts sum to >= 0.

    best[mask] is the most such groups that `mask` splits into (−1: none); the group that
    holds the lowest member of `mask` is tried over every submask of the rest."""
    n = len(amounts)
    full = (1 << n) - 1
    sums = [0.0] * (full + 1)
    for mask in range(1, full + 1):
        low = mask & -mask
        sums[mask] = sums[mask ^ low] + amounts[low.bit_length() - 1]
    best = [-1] * (full + 1)
    choice = [0] * (full + 1)
    best[0] = 0
    for mask in range(1, full + 1):
        if sums[mask] < -tol:
            continue  # a set short of money cannot split into self-sufficient groups
        low = mask & -mask
        rest = mask ^ low
        sub = rest
        while True:
            group = sub | low
            if sums[group] >= -tol and best[mask ^ group] >= 0 and best[mask ^ group] + 1 > best[mask]:
                best[mask], choice[mask] = best[mask ^ group] + 1, group
            if sub == 0:
                break
            sub = (sub - 1) & rest
    groups, mask = [], full
    while mask:
        group = choice[mask]
        groups.append([i for i in range(n) if group >> i & 1])
        mask ^= group
    return groups


def _settle(group: Sequence[int], balance: np.ndarray, tol: float) -> list[tuple[int, int, float]]:
    """Transfers within one self-sufficient group: donors (largest first) fill receivers
    (largest first) in a chain; each transfer empties a donor or fills a receiver, so a
    group of c accounts needs at most c − 1."""
    donors = sorted((i for i in group if balance[i] > 0), key=lambda i: -balance[i])
    receivers = sorted((i for i in group if balance[i] < 0), key=lambda i: balance[i])
    left = {i: abs(float(balance[i])) for i in group}
    result = []
    d = 0
    for r in receivers:
        while left[r] > tol and d < len(donors):
            amount = min(left[donors[d]], left[r])
            if amount > tol:
                result.append((donors[d], r, amount))
            left[donors[d]] -= amount
            left[r] -= amount
            if left[donors[d]] <= tol:
                d += 1
    return result


def _settle_exact_pairs(group: Sequence[int], balance: np.ndarray, tol: float) -> list[tuple[int, int, float]]:
    """Greedy for large sets: donors and receivers of equal amounts settle pairwise first,
    then the largest donor repeatedly pays the largest receiver."""
    result = []
    donors = {i: float(balance[i]) for i in group if balance[i] > 0}
    receivers = {i: -float(balance[i]) for i in group if balance[i] < 0}
    for r, x in sorted(receivers.items(), key=lambda kv: -kv[1]):
        match = next((d for d, y in donors.items() if abs(y - x) <= tol), None)
        if match is not None:
            result.append((match, r, x))
            del donors[match], receivers[r]
    give = [(-x, i) for i, x in donors.items()]
    take = [(-x, i) for i, x in receivers.items()]
    heapq.heapify(give)
    heapq.heapify(take)
    while give and take:
        gx, gi = heapq.heappop(give)
        tx, ti = heapq.heappop(take)
        amount = min(-gx, -tx)
        result.append((gi, ti, amount))
        if -gx - amount > tol:
            heapq.heappush(give, (gx + amount, gi))
        if -tx - amount > tol:
            heapq.heappush(take, (tx + amount, ti))
    return result
