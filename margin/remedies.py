"""Remedies: how much collateral restores a pool, or how much of which position to reduce.

Top-up: the requirement does not depend on the balance, so adding
target x requirement - equity to the balance gives exactly the target health.

Deleverage (cross pool), judged by danger, not by health alone. The unit cut is a symbol
group: one position in one-way mode, or both legs of a hedge-mode position cut by the same
fraction, so that a plan never flips the book's net side (cutting one leg of a hedge can
bring a liquidation on the other side nearer while health rises). Cutting a fraction f of
a group at mark realises its PnL into the wallet (equity unchanged) and pays (taker fee +
slippage) x the notional cut, while the requirement falls by the group's marginal
maintenance rate x that notional. Every other position's liquidation price is computed
with this group at mark, so its pool gap moves by notional cut x (marginal rate - cost
rate): a group is cut only when that is positive, so no other position's liquidation
price comes nearer on either side, and the cut group's own prices move away from the mark.
Groups are cut in order of marginal rate, highest first (the most requirement freed per
unit of fee, so the target is reached for the least cost and the largest book is left
standing); ties go to the larger notional (fewer orders). Isolated pools are not
deleveraged: on most venues reducing an isolated position releases its margin in
proportion, so its liquidation price does not move; the plan says so and names the top-up.

The plan reports the nearest distance to liquidation before and after it, and (with
volatility) the chance of touching a liquidation price within 24 h after it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from itertools import pairwise

from margin.danger import PositionRisk, liquidation_chances
from margin.inverse import linear_twin
from margin.inverse import notional as position_notional
from margin.liquidation import Liquidation, all_liquidations
from margin.pools import (
    maintenance_requirement,
    pool_figures,
    pools,
    requirement_line,
    rule_for,
    taker_fee,
    tier_column,
    unrealized_pnl,
)
from margin.rules import ModeRule
from margin.snapshot import Position, Snapshot

# Health "reaches" a target when it is within this relative tolerance of it: the plan's own
# check and the final one are the same function (see `reaches`).
TARGET_TOLERANCE = 1e-9


def reaches(health: float | None, target: float) -> bool:
    """True when `health` is at `target` or above it, up to float noise."""
    return health is not None and health >= target * (1.0 - TARGET_TOLERANCE)


@dataclass(frozen=True)
class Reduction:
    """Reduce position `index` by `contracts` at mark, paying `fee` and `slippage_cost`."""

    index: int
    symbol: str
    side: str
    contracts: float
    notional: float
    fee: float
    slippage_cost: float


@dataclass(frozen=True)
class DeleveragePlan:
    """The reductions, the health they reach and whether that meets the target; the
    nearest distance to liquidation (signed fraction of mark) before and after, and the
    chance of touching a liquidation price within 24 h after (None without volatility)."""

    target_health: float
    reductions: tuple[Reduction, ...]
    health_before: float | None
    health_after: float | None
    reaches_target: bool
    note: str
    distance_before: float | None = None
    distance_after: float | None = None
    chance_after: float | None = None

    @property
    def total_cost(self) -> float:
        return sum(r.fee + r.slippage_cost for r in self.reductions)


def deleverage_plan(
    snapshot: Snapshot,
    target_health: float = 1.5,
    slippage: float = 0.0,
    liquidations: Sequence[Liquidation] | None = None,
) -> DeleveragePlan:
    """Cuts of cross positions that bring the cross pool to `target_health` without bringing
    any liquidation price nearer (`liquidations`: the snapshot's, when the caller has them)."""
    cross = pools(snapshot)[0]
    before = pool_figures(snapshot, cross)
    notes = _isolated_notes(snapshot, target_health)
    liquidations = all_liquidations(snapshot) if liquidations is None else liquidations
    distance_before = nearest_distance(liquidations)
    if before.health is None or reaches(before.health, target_health):
        return DeleveragePlan(
            target_health,
            (),
            before.health,
            before.health,
            True,
            notes,
            distance_before,
            distance_before,
            max_chance(snapshot, liquidations),
        )

    rule = rule_for(snapshot).cross
    fee = taker_fee(snapshot)
    cost_rate = fee + slippage
    groups: dict[str, list[int]] = {}
    for i in cross.indices:
        groups.setdefault(snapshot.positions[i].symbol, []).append(i)

    def marginal_rate(legs: list[int]) -> float:
        if rule.maintenance_basis != "mark":
            return 0.0
        freed = sum(_slope(snapshot.positions[i], rule, fee) for i in legs)
        return freed / sum(snapshot.positions[i].size for i in legs)

    def notional(legs: list[int]) -> float:
        return sum(position_notional(snapshot.positions[i]) for i in legs)

    order = sorted(groups.values(), key=lambda legs: (-marginal_rate(legs), -notional(legs)))
    equity = before.equity
    requirement = before.maintenance_margin
    reductions: list[Reduction] = []
    for legs in order:
        if marginal_rate(legs) <= cost_rate:
            continue  # cutting it would bring other liquidation prices nearer
        group = [snapshot.positions[i] for i in legs]
        own = sum(maintenance_requirement(p, rule, fee, p.mark_price) for p in group)
        gap = _gap_after_cut(group, rule, fee, cost_rate, equity, requirement - own, target_health)
        fraction = _smallest_fraction(group, gap)
        if fraction is None:
            if gap(1.0) <= gap(0.0):
                continue  # closing it would not raise health
            fraction = 1.0
        cut = [_reduction(i, p, _cut_contracts(p, fraction), fee, slippage) for i, p in zip(legs, group, strict=True)]
        reductions += [r for r in cut if r.contracts > 0]
        equity -= sum(r.notional for r in cut) * cost_rate
        requirement += sum(_requirement_left(p, r.contracts, rule, fee) for p, r in zip(group, cut, strict=True)) - own
        if reaches(equity / requirement if requirement > 0 else math.inf, target_health):
            break

    after_snapshot = apply_deleverage(snapshot, reductions, fee, slippage)
    after = pool_figures(after_snapshot, pools(after_snapshot)[0])
    after_liquidations = all_liquidations(after_snapshot)
    if after.health is None:
        reached = after.equity > 0  # everything closed with money left: nothing at risk
    else:
        reached = reaches(after.health, target_health)
    if not reached:
        topup = after.topup_to(target_health)
        notes = (
            f"reducing positions alone cannot reach health {target_health:g}: best reachable "
            f"is {_fmt(after.health)}; top up {topup:.2f} {snapshot.collateral} more. " + notes
        ).strip()
    return DeleveragePlan(
        target_health,
        tuple(reductions),
        before.health,
        after.health,
        reached,
        notes,
        distance_before,
        nearest_distance(after_liquidations),
        max_chance(after_snapshot, after_liquidations),
    )


def nearest_distance(liquidations: Sequence[Liquidation]) -> float | None:
    """The signed distance of the liquidation price nearest its mark, over all positions."""
    known = [d for found in liquidations if (d := found.distance) is not None]
    return min(known, key=abs) if known else None


def max_chance(snapshot: Snapshot, liquidations: Sequence[Liquidation], horizon_hours: float = 24.0) -> float | None:
    """The highest chance, over the positions with a volatility, of touching one of their
    liquidation prices within `horizon_hours` (None when no position has a volatility)."""
    risks = [
        PositionRisk("", pos.mark_price, found.down, found.up, found.past, pos.volatility)
        for pos, found in zip(snapshot.positions, liquidations, strict=True)
    ]
    chances = [c for c in liquidation_chances(risks, horizon_hours) if c is not None]
    return max(chances) if chances else None


def _slope(pos: Position, rule: ModeRule, fee: float) -> float:
    """Requirement freed per unit of price x size at mark (an inverse position's, per unit
    of its twin's price 1/P: the marginal rate on its coin notional)."""
    pos = linear_twin(pos)
    slope, _ = requirement_line(pos, rule, fee, tier_column(pos, rule, pos.mark_price))
    return slope


def _cut_contracts(pos: Position, fraction: float) -> float:
    """Contracts cut for `fraction` of the position, rounded up to the market's amount
    step (if known) so that the cut is tradable and not below the fraction."""
    x = pos.contracts if fraction >= 1.0 else pos.contracts * fraction
    if pos.amount_step and x < pos.contracts:
        steps = math.ceil(x / pos.amount_step - 1e-9)
        x = min(pos.contracts, round(steps * pos.amount_step, 12))
    return x


def _requirement_left(pos: Position, x: float, rule: ModeRule, fee: float) -> float:
    """Requirement of what is left of `pos` after reducing x contracts."""
    if x >= pos.contracts:
        return 0.0
    return maintenance_requirement(replace(pos, contracts=pos.contracts - x), rule, fee, pos.mark_price)


def _gap_after_cut(
    group: list[Position],
    rule: ModeRule,
    fee: float,
    cost_rate: float,
    equity: float,
    requirement_of_others: float,
    target_health: float,
) -> Callable[[float], float]:
    """equity - target x requirement of the pool after cutting the fraction f of every
    position of `group`."""

    def gap(f: float) -> float:
        cost = sum(f * position_notional(p) for p in group) * cost_rate
        left = sum(_requirement_left(p, p.contracts * f, rule, fee) for p in group)
        return (equity - cost) - target_health * (requirement_of_others + left)

    return gap


def _smallest_fraction(group: list[Position], gap: Callable[[float], float]) -> float | None:
    """Smallest f in [0, 1] with gap(f) >= 0, or None.

    gap is piecewise linear in f, with kinks where a leg's notional crosses a tier floor,
    and it jumps at f = 1 (a closed position has no requirement, whatever its tier's
    maintenance amount says). Each piece is solved on the line through two of its interior
    points, never across a kink or the jump; the full close is tried last, on its own."""
    if gap(0.0) >= 0:
        return 0.0
    kinks = sorted(
        {
            1.0 - t.min_notional / position_notional(p)
            for p in group
            for t in p.tiers
            if 0 < t.min_notional < position_notional(p)
        }
    )
    points = [0.0, *kinks, 1.0]
    for lo, hi in pairwise(points):
        if hi <= lo:
            continue
        a, b = lo + (hi - lo) / 3, lo + 2 * (hi - lo) / 3
        g_a, g_b = gap(a), gap(b)
        slope = (g_b - g_a) / (b - a)
        at_lo = g_a + slope * (lo - a)  # the piece's own value at its start (a jump may precede it)
        if at_lo >= 0:
            return _round_up(lo, gap, hi)
        if slope > 0:
            root = a - g_a / slope
            if root < hi:
                return _round_up(max(root, lo), gap, hi)
    return 1.0 if gap(1.0) >= 0 else None


def _round_up(f: float, gap: Callable[[float], float], limit: float) -> float:
    """Nudge f up past float noise, so that the cut really reaches the target."""
    for _ in range(60):
        if gap(f) >= 0 or f >= limit:
            break
        f = min(limit, f + max(abs(f) * 1e-12, 1e-15) * 4)
    return f


def _reduction(i: int, pos: Position, x: float, fee: float, slippage: float) -> Reduction:
    # in the collateral: quote currency, or the coin of an inverse contract
    notional = x * pos.contract_size / pos.mark_price if pos.inverse else x * pos.contract_size * pos.mark_price
    return Reduction(i, pos.symbol, pos.side, x, notional, notional * fee, notional * slippage)


def apply_deleverage(
    snapshot: Snapshot, reductions: list[Reduction] | tuple[Reduction, ...], fee: float, slippage: float
) -> Snapshot:
    """The snapshot after the reductions: contracts cut at mark, PnL realised into the
    wallet, fee and slippage paid from it; fully closed positions removed."""
    wallet = snapshot.wallet_balance
    positions = list(snapshot.positions)
    for r in reductions:
        pos = positions[r.index]
        realised = unrealized_pnl(pos, pos.mark_price) * (r.contracts / pos.contracts)
        wallet += realised - r.notional * (fee + slippage)
        positions[r.index] = replace(pos, contracts=pos.contracts - r.contracts)
    kept = tuple(p for p in positions if p.contracts > 0)
    return replace(snapshot, wallet_balance=wallet, positions=kept)


def _isolated_notes(snapshot: Snapshot, target_health: float) -> str:
    notes = []
    rule = rule_for(snapshot)
    for pool in pools(snapshot)[1:]:
        figures = pool_figures(snapshot, pool)
        if figures.health is not None and figures.health < target_health:
            pos = snapshot.positions[pool.indices[0]]
            moves = (
                ""
                if rule.isolated_reduction_moves_liquidation
                else (f" (reducing an isolated position does not move its liquidation price on {snapshot.exchange})")
            )
            notes.append(
                f"{pos.symbol} {pos.side} is isolated{moves}: add "
                f"{figures.topup_to(target_health):.2f} {snapshot.collateral} to its margin."
            )
    return " ".join(notes)


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"
