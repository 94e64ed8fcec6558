"""What an alert tells a trader to do, with what it would change: add X (to the cross wallet,
or to an isolated position's margin) -> health, and where the liquidation price moves; or
reduce a position by N coins (contracts, notional) -> health and distance after.

Pure, over the account's snapshot (margin.snapshot) and the engine (margin.remedies for the
deleverage plan, margin.liquidation for the prices after). A top-up aims at the target
health and, where the risk level is above OK at that health (a 20x position can sit 0.4 %
from liquidation at health 2), at the size that takes every position of the pool out of it:
its chance of touching a liquidation price under `max_chance` (the warning's clear level)
or, without a volatility, its distance over `min_distance`. Money in the collateral
currency, prices in quote currency, sizes in contracts and in coins (contracts x size).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace

from margin.danger import liquidation_chance
from margin.inverse import contracts_notional
from margin.liquidation import Liquidation, all_liquidations
from margin.pools import pool_figures, pools, taker_fee
from margin.remedies import Reduction, apply_deleverage, deleverage_plan, max_chance, nearest_distance
from margin.snapshot import Position, Snapshot

# Search for a safe size only where it stays cheap: a pool of this many positions or fewer
# (each step re-solves the pool's liquidation prices); larger pools get the target health's.
SEARCH_MAX_POSITIONS = 400
SEARCH_STEPS = 40
SEARCH_TOLERANCE = 0.002  # relative: a top-up found to 0.2 %, then rounded up


@dataclass(frozen=True)
class Aim:
    """Where a remedy takes a pool: `target_health`, and every position out of the risk
    level (chance <= max_chance within horizon_hours; distance >= min_distance without σ)."""

    target_health: float
    max_chance: float | None = None
    min_distance: float | None = None
    horizon_hours: float = 24.0


@dataclass(frozen=True)
class TopUp:
    """Add `amount` to the cross wallet (isolated False) or to the isolated margin of
    `symbol` `side`; `symbol`'s nearest liquidation price moves to `liquidation_after`."""

    amount: float
    isolated: bool
    symbol: str | None
    side: str | None
    health_after: float | None
    liquidation_after: float | None
    liquidation_side_after: str | None


@dataclass(frozen=True)
class Cut:
    """Reduce `symbol` `side` by `contracts` (`coins` = contracts x contract size)."""

    symbol: str
    side: str
    contracts: float
    coins: float
    notional: float  # at mark, quote currency
    contract_size: float
    amount_step: float | None  # in contracts


@dataclass(frozen=True)
class Remedy:
    collateral: str
    target_health: float
    topups: tuple[TopUp, ...] = ()
    cuts: tuple[Cut, ...] = ()
    health_after_cuts: float | None = None
    distance_after_cuts: float | None = None  # signed fraction of mark, nearest of all
    chance_after_cuts: float | None = None
    reaches_target: bool = True
    note: str = ""

    @property
    def empty(self) -> bool:
        return not self.topups and not self.cuts and not self.note


def plan(snapshot: Snapshot, aim: Aim, focus: int | None = None) -> Remedy:
    """The remedy for `snapshot`; `focus` (a position index) is the position the alert is
    about: its pool comes first, and its liquidation price is the one quoted."""
    all_pools = pools(snapshot)
    order = sorted(range(len(all_pools)), key=lambda k: 0 if focus is not None and focus in all_pools[k].indices else 1)
    topups: list[TopUp] = []
    for k in order:
        pool = all_pools[k]
        if not pool.indices:
            continue
        sub = _pool_snapshot(snapshot, pool.indices, isolated=k > 0)
        local = pool.indices.index(focus) if focus in pool.indices else _nearest_index(sub)
        topup = _topup(sub, aim, local, isolated=k > 0)
        if topup is not None:
            topups.append(topup)
    cuts, after = _cuts(snapshot, aim, _cross_focus(snapshot, focus))
    if not cuts or after is None:
        return Remedy(snapshot.collateral, aim.target_health, tuple(topups))
    # what the cuts do to the cross pool (isolated pools are not cut)
    cross_after = replace(after, positions=tuple(p for p in after.positions if p.margin_mode == "cross"))
    found = all_liquidations(cross_after)
    health_after = pool_figures(cross_after, pools(cross_after)[0]).health
    reaches = health_after is None or health_after >= aim.target_health * (1 - 1e-9)
    note = "" if reaches else f"reducing alone reaches health {_two(health_after)}: add collateral as well"
    return Remedy(
        collateral=snapshot.collateral,
        target_health=aim.target_health,
        topups=tuple(topups),
        cuts=cuts,
        health_after_cuts=health_after,
        distance_after_cuts=nearest_distance(found),
        chance_after_cuts=max_chance(cross_after, found, aim.horizon_hours),
        reaches_target=reaches,
        note=note,
    )


def _cross_focus(snapshot: Snapshot, focus: int | None) -> int | None:
    """The cross position a cut is about: the focus when it is cross, else the cross
    position nearest liquidation."""
    cross = pools(snapshot)[0].indices
    if focus is not None and focus in cross:
        return focus
    if not cross:
        return None
    sub = _pool_snapshot(snapshot, cross, isolated=False)
    return cross[_nearest_index(sub)]


def _two(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def _pool_snapshot(snapshot: Snapshot, indices: tuple[int, ...], isolated: bool) -> Snapshot:
    """The pool alone (an isolated pool does not see the wallet; the cross pool does not see
    isolated positions), so each search step solves only the pool's prices."""
    positions = tuple(snapshot.positions[i] for i in indices)
    wallet = 0.0 if isolated else snapshot.wallet_balance
    return replace(snapshot, positions=positions, wallet_balance=wallet)


def _nearest_index(snapshot: Snapshot) -> int:
    found = all_liquidations(snapshot)
    distances = [(abs(d) if (d := f.distance) is not None else math.inf, i) for i, f in enumerate(found)]
    return min(distances)[1] if distances else 0


def _with_added(snapshot: Snapshot, amount: float, isolated: bool) -> Snapshot:
    if isolated:
        pos = snapshot.positions[0]
        return replace(snapshot, positions=(replace(pos, isolated_margin=(pos.isolated_margin or 0.0) + amount),))
    return replace(snapshot, wallet_balance=snapshot.wallet_balance + amount)


def _safe(
    snapshot: Snapshot, aim: Aim, found: tuple[Liquidation, ...] | None = None, only: list[int] | None = None
) -> bool:
    """Every position of `snapshot` (or those at `only`) out of the risk level aimed at."""
    found = all_liquidations(snapshot) if found is None else found
    for i in range(len(snapshot.positions)) if only is None else only:
        pos, liq = snapshot.positions[i], found[i]
        if liq.past:
            return False
        if pos.volatility and aim.max_chance is not None:
            chance = liquidation_chance(pos.mark_price, liq.down, liq.up, pos.volatility, aim.horizon_hours)
            if chance is not None and chance > aim.max_chance:
                return False
        elif aim.min_distance is not None and (d := liq.distance) is not None and d < aim.min_distance:
            return False
    return True


def _topup(snapshot: Snapshot, aim: Aim, local: int, isolated: bool) -> TopUp | None:
    figures = pool_figures(snapshot, pools(snapshot)[1 if isolated else 0])
    amount = figures.topup_to(aim.target_health)
    if len(snapshot.positions) <= SEARCH_MAX_POSITIONS:
        amount = max(amount, _smallest(lambda x: _safe(_with_added(snapshot, x, isolated), aim), amount) or amount)
    if amount <= 0:
        return None
    after = _with_added(snapshot, amount, isolated)
    found = all_liquidations(after)[local]
    pos = snapshot.positions[local]
    after_figures = pool_figures(after, pools(after)[1 if isolated else 0])
    return TopUp(amount, isolated, pos.symbol, pos.side, after_figures.health, found.nearest, found.side)


def _smallest(ok: Callable[[float], bool], start: float) -> float | None:
    """The smallest x >= start with ok(x) (ok grows with x), found to SEARCH_TOLERANCE and
    returned on the safe side; None when even a very large x is not enough."""
    if ok(start):
        return start
    lo, hi = start, max(start * 2, 1.0)
    steps = 0
    while not ok(hi):
        lo, hi = hi, hi * 4
        steps += 1
        if steps > 30:
            return None
    for _ in range(SEARCH_STEPS):
        if hi - lo <= SEARCH_TOLERANCE * hi:
            break
        mid = (lo + hi) / 2
        if ok(mid):
            hi = mid
        else:
            lo = mid
    return hi


def _cuts(snapshot: Snapshot, aim: Aim, focus: int | None) -> tuple[tuple[Cut, ...], Snapshot | None]:
    """The deleverage plan to the target health (margin.remedies), with the focus position's
    symbol cut further where that is what takes it out of danger (at 20x a pool at its
    target health can still be a fraction of a per cent from liquidation)."""
    cross = pools(snapshot)[0]
    if not cross.indices:
        return (), None
    reductions = list(deleverage_plan(snapshot, aim.target_health).reductions)
    if focus is not None and focus in cross.indices:
        symbol = snapshot.positions[focus].symbol
        legs = [i for i in cross.indices if snapshot.positions[i].symbol == symbol]
        planned = {r.index: r.contracts for r in reductions}
        wanted = _danger_cut(snapshot, aim, legs, cross.indices)
        if wanted and sum(r.contracts for r in wanted) > sum(planned.get(i, 0.0) for i in legs):
            reductions = [r for r in reductions if r.index not in legs] + wanted
    if not reductions:
        return (), snapshot
    reductions.sort(key=lambda r: r.index)
    after = apply_deleverage(snapshot, reductions, taker_fee(snapshot), 0.0)
    return tuple(_cut(snapshot.positions[r.index], r) for r in reductions), after


def _danger_cut(snapshot: Snapshot, aim: Aim, legs: list[int], cross: tuple[int, ...]) -> list[Reduction]:
    """The smallest cut of `legs` (one symbol's cross positions, by one fraction) after which
    they are out of the risk level aimed at."""
    if len(cross) > SEARCH_MAX_POSITIONS:
        return []
    fee = taker_fee(snapshot)
    sub = _pool_snapshot(snapshot, cross, isolated=False)
    local_legs = [cross.index(i) for i in legs]

    def reductions(fraction: float, indices: list[int], source: Snapshot) -> list[Reduction]:
        cut = []
        for i in indices:
            pos = source.positions[i]
            contracts = _round_up(pos.contracts * fraction, pos.amount_step, pos.contracts)
            notional = contracts_notional(pos, contracts)  # quote, or the coin (inverse)
            cut.append(Reduction(i, pos.symbol, pos.side, contracts, notional, notional * fee, 0.0))
        return cut

    def ok(fraction: float) -> bool:
        if fraction >= 1.0:
            return True  # closed: nothing of it left to liquidate
        cut = reductions(fraction, local_legs, sub)
        if any(r.contracts >= sub.positions[r.index].contracts for r in cut):
            return True  # rounded up to all of it
        # nothing closed, so every position keeps its place in the snapshot after
        return _safe(apply_deleverage(sub, cut, fee, 0.0), aim, only=local_legs)

    if ok(0.0):
        return []
    fraction = _smallest(lambda f: ok(min(1.0, f)), 0.0)
    if fraction is None or fraction <= 0:
        return []
    return reductions(min(1.0, fraction), legs, snapshot)


def _round_up(contracts: float, step: float | None, limit: float) -> float:
    if step:
        contracts = math.ceil(contracts / step - 1e-9) * step
    return min(limit, contracts)


def _cut(pos: Position, reduction: Reduction) -> Cut:
    return Cut(
        pos.symbol,
        pos.side,
        reduction.contracts,
        reduction.contracts * pos.contract_size,
        reduction.notional,
        pos.contract_size,
        pos.amount_step,
    )
