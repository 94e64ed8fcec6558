"""Remedies: how much collateral restores a pool, or how much of which position to reduce.

Top-up: the requirement does not depend on the balance, so adding
target x requirement - equity to the balance gives exactly the target health.

Deleverage (cross pool): reducing x contracts of a position at mark realises its PnL into
the wallet (equity unchanged) and pays (taker fee + slippage) x reduced notional, while the
requirement falls by the position's marginal maintenance rate x reduced notional. The plan
reduces positions in order of their marginal maintenance rate, highest first: that frees
the most requirement per unit of fee paid, so it reaches the target for the least cost and
leaves the largest book standing. Ties go to the larger notional (fewer orders). A
position whose rate x target is not above the cost rate is not reduced: cutting it would
lower health. Isolated pools are not deleveraged: on most venues reducing an isolated
position releases its margin in proportion, so its liquidation price does not move; the
plan says so and names the top-up instead.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from itertools import pairwise

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
    """The reductions, the health they reach and whether that meets the target."""

    target_health: float
    reductions: tuple[Reduction, ...]
    health_before: float | None
    health_after: float | None
    reaches_target: bool
    note: str

    @property
    def total_cost(self) -> float:
        return sum(r.fee + r.slippage_cost for r in self.reductions)


def deleverage_plan(snapshot: Snapshot, target_health: float = 1.5, slippage: float = 0.0) -> DeleveragePlan:
    """Reductions of cross positions that bring the cross pool to `target_health`."""
    cross = pools(snapshot)[0]
    before = pool_figures(snapshot, cross)
    notes = _isolated_notes(snapshot, target_health)
    if before.health is None or before.health >= target_health:
        return DeleveragePlan(target_health, (), before.health, before.health, True, notes)

    rule = rule_for(snapshot).cross
    fee = taker_fee(snapshot)
    cost_rate = fee + slippage

    def marginal_rate(i: int) -> float:
        pos = snapshot.positions[i]
        slope, _ = requirement_line(pos, rule, fee, tier_column(pos, rule, pos.mark_price))
        return slope / pos.size if rule.maintenance_basis == "mark" else 0.0

    order = sorted(
        cross.indices,
        key=lambda i: (-marginal_rate(i), -snapshot.positions[i].size * snapshot.positions[i].mark_price),
    )
    equity = before.equity
    requirement = before.maintenance_margin
    reductions: list[Reduction] = []
    for i in order:
        pos = snapshot.positions[i]
        own = maintenance_requirement(pos, rule, fee, pos.mark_price)
        gap = _gap_after_reduction(pos, rule, fee, cost_rate, equity, requirement - own, target_health)
        x = _smallest_reduction(pos, gap)
        if x == 0.0:
            break  # the reductions so far already reach the target
        if x is None:
            if gap(pos.contracts) <= gap(0.0):
                continue  # closing it would not raise health
            x = pos.contracts
        reductions.append(_reduction(i, pos, x, fee, slippage))
        equity -= x * pos.contract_size * pos.mark_price * cost_rate
        requirement += _requirement_left(pos, x, rule, fee) - own
        if equity - target_health * requirement >= 0:
            break

    after_snapshot = apply_deleverage(snapshot, reductions, fee, slippage)
    after = pool_figures(after_snapshot, pools(after_snapshot)[0])
    if after.health is None:
        reached = after.equity > 0  # everything closed with money left: nothing at risk
    else:
        reached = after.health >= target_health
    if not reached:
        topup = after.topup_to(target_health)
        notes = (
            f"reducing positions alone cannot reach health {target_health:g}: best reachable "
            f"is {_fmt(after.health)}; top up {topup:.2f} {snapshot.collateral} more. " + notes
        ).strip()
    return DeleveragePlan(target_health, tuple(reductions), before.health, after.health, reached, notes)


def _requirement_left(pos: Position, x: float, rule: ModeRule, fee: float) -> float:
    """Requirement of what is left of `pos` after reducing x contracts."""
    if x >= pos.contracts:
        return 0.0
    return maintenance_requirement(replace(pos, contracts=pos.contracts - x), rule, fee, pos.mark_price)


def _gap_after_reduction(
    pos: Position,
    rule: ModeRule,
    fee: float,
    cost_rate: float,
    equity: float,
    requirement_of_others: float,
    target_health: float,
) -> Callable[[float], float]:
    """equity - target x requirement of the pool after reducing `pos` by x contracts."""

    def gap(x: float) -> float:
        cost = x * pos.contract_size * pos.mark_price * cost_rate
        left = _requirement_left(pos, x, rule, fee)
        return (equity - cost) - target_health * (requirement_of_others + left)

    return gap


def _smallest_reduction(pos: Position, gap: Callable[[float], float]) -> float | None:
    """Smallest x in [0, contracts] with gap(x) >= 0, or None.

    gap is concave and piecewise linear in x, with kinks where the notional crosses a tier
    floor; walk the pieces from x = 0 and solve the first one that reaches 0.
    """
    if gap(0.0) >= 0:
        return 0.0
    kinks = sorted(
        {
            pos.contracts - t.min_notional / (pos.contract_size * pos.mark_price)
            for t in pos.tiers
            if 0 < t.min_notional < pos.size * pos.mark_price
        }
    )
    points = [0.0, *kinks, pos.contracts]
    for lo, hi in pairwise(points):
        g_lo, g_hi = gap(lo), gap(hi)
        if g_hi < 0:
            continue
        x = lo if g_hi == g_lo else lo + (0 - g_lo) * (hi - lo) / (g_hi - g_lo)
        x = min(hi, x)
        return _round_up(pos, x, gap)
    return None


def _round_up(pos: Position, x: float, gap: Callable[[float], float]) -> float:
    """Round x up to the market's amount step (if known), and past float noise, so that
    the plan really reaches the target."""
    if pos.amount_step:
        steps = math.ceil(x / pos.amount_step - 1e-9)
        x = min(pos.contracts, round(steps * pos.amount_step, 12))
    for _ in range(60):
        if gap(x) >= 0 or x >= pos.contracts:
            break
        x = min(pos.contracts, x + max(abs(x) * 1e-12, 1e-15) * 4)
    return x


def _reduction(i: int, pos: Position, x: float, fee: float, slippage: float) -> Reduction:
    notional = x * pos.contract_size * pos.mark_price
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
