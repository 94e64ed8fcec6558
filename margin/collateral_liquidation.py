"""Liquidation prices of multi-collateral accounts, with the collateral moving.

The rule is the general one (margin.liquidation): the price P of a symbol at which the
account's equity equals its requirement (health x level x maintenance), every other symbol
at mark. What differs is the equity: every asset whose `price_symbol` is the symbol moves
with it (P / mark), through its haircut bands. A BTC long backed by BTC therefore
liquidates sooner than the same long backed by USDT (wrong-way risk), and a short backed
by BTC later.

The gap (equity − requirement) is piecewise linear in P between tier borders and band
edges, except where an asset both moves with P and holds PnL of the symbol (a quadratic
piece). So each side is scanned over the known borders and a geometric grid (25 % steps,
down to 1e-6 x mark, up to 1,000 x mark, then the last piece extended), and the first sign
change is bisected to float precision (a quadratic piece's double root between two grid
points can be missed); a requirement jump (OKX tiers) is found as the
border itself. Isolated positions keep their own pools (margin.liquidation).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace

from margin.collateral import account_rule, haircut_value
from margin.liquidation import Liquidation, all_liquidations
from margin.pools import Pool, maintenance_requirement, pools, taker_fee, unrealized_pnl
from margin.rules import venue_rule
from margin.snapshot import Snapshot

GRID_STEP = 1.25  # the grid only guards quadratic pieces: every known border is a point too
GRID_LOWEST = 1e-6
GRID_HIGHEST = 1e3


def collateral_liquidations(snapshot: Snapshot, health: float = 1.0) -> tuple[Liquidation, ...]:
    """Both-side liquidation prices of every position of a multi-collateral snapshot, in
    its order (margin.liquidation.all_liquidations' hook for these accounts)."""
    single = replace(snapshot, account_mode="single_asset", assets=())
    result = list(all_liquidations(single, health))  # isolated pools are right as they are
    pool = pools(snapshot)[0]
    groups: dict[str, list[int]] = {}
    for i in pool.indices:
        groups.setdefault(snapshot.positions[i].symbol, []).append(i)
    for symbol, legs in groups.items():
        found = _solve(snapshot, pool, symbol, legs, health)
        for i in legs:
            result[i] = found
    return tuple(result)


def _gap_function(
    snapshot: Snapshot, pool: Pool, symbol: str, legs: list[int], mark: float, health: float
) -> Callable[[float], float]:
    """equity(P) − health x requirement(P) with the symbol at P: the other positions' PnL
    and maintenance (in their settle units) are summed once, so an evaluation costs the
    legs and the assets only. Same figures as margin.collateral.account_figures."""
    rule = account_rule(snapshot)
    mode = venue_rule(snapshot.exchange).mode("cross")
    fee = taker_fee(snapshot)
    fixed_pnl: dict[str, float] = {snapshot.collateral: pool.balance}
    fixed_mm: dict[str, float] = {}
    for i in pool.indices:
        if i in legs:
            continue
        pos = snapshot.positions[i]
        settle = pos.settle or snapshot.collateral
        fixed_pnl[settle] = fixed_pnl.get(settle, 0.0) + unrealized_pnl(pos, pos.mark_price)
        fixed_mm[settle] = fixed_mm.get(settle, 0.0) + maintenance_requirement(pos, mode, fee, pos.mark_price)
    moving = [snapshot.positions[i] for i in legs]
    settles = [p.settle or snapshot.collateral for p in moving]
    assets = snapshot.assets
    moves = [a.price_symbol == symbol for a in assets]
    loans = [(a.borrowed + max(0.0, -a.amount)) * a.borrow_maintenance_rate for a in assets]
    level = health * rule.level

    def gap(price: float) -> float:
        ratio = price / mark
        pnl = dict(fixed_pnl)
        mm = dict(fixed_mm)
        for pos, settle in zip(moving, settles, strict=True):
            pnl[settle] = pnl.get(settle, 0.0) + unrealized_pnl(pos, price)
            mm[settle] = mm.get(settle, 0.0) + maintenance_requirement(pos, mode, fee, price)
        equity = -snapshot.open_order_loss
        requirement = 0.0
        for a, moved, loan in zip(assets, moves, loans, strict=True):
            a_price = a.price * ratio if moved else a.price
            units = a.amount + pnl.pop(a.asset, 0.0)
            equity += haircut_value(a, units, a_price) - a.borrowed * a_price
            requirement += (mm.pop(a.asset, 0.0) + loan) * a_price
        # what settles in the valuation currency itself (not an asset) counts in full
        equity += sum(pnl.values())
        requirement += sum(mm.values())
        return equity - level * requirement

    return gap


def _borders(snapshot: Snapshot, pool: Pool, symbol: str, legs: list[int], mark: float) -> tuple[list[float], bool]:
    """Prices where the gap changes slope or jumps: the legs' tier floors; where an asset
    that moves with the symbol (its units fixed) crosses a value band edge; where an asset
    the legs settle in (its price fixed) crosses a band edge or 0."""
    points = []
    for i in legs:
        pos = snapshot.positions[i]
        points += [t.min_notional / pos.size for t in pos.tiers[1:]]
    units = {a.asset: a.amount for a in snapshot.assets}
    units[snapshot.collateral] = units.get(snapshot.collateral, 0.0) + pool.balance
    slope: dict[str, float] = {}
    for i in pool.indices:
        pos = snapshot.positions[i]
        settle = pos.settle or snapshot.collateral
        units[settle] = units.get(settle, 0.0) + unrealized_pnl(pos, pos.mark_price)
        if i in legs:
            slope[settle] = slope.get(settle, 0.0) + pos.sign * pos.size
    quadratic = False
    for a in snapshot.assets:
        held = units.get(a.asset, 0.0)
        moving_price = a.price_symbol == symbol
        moving_units = slope.get(a.asset, 0.0)
        if moving_price and not moving_units and held > 0:
            points += [mark * b.low / (held * a.price) for b in a.bands if b.unit == "value"]
        elif moving_units and not moving_price:
            edges = [0.0] + [b.low / (a.price if b.unit == "value" else 1.0) for b in a.bands]
            points += [mark + (edge - held) / moving_units for edge in edges]
        elif moving_units and moving_price:
            quadratic = True
    return [p for p in points if p > 0 and math.isfinite(p)], quadratic


def _solve(snapshot: Snapshot, pool: Pool, symbol: str, legs: list[int], health: float) -> Liquidation:
    mark = snapshot.positions[legs[0]].mark_price
    gap = _gap_function(snapshot, pool, symbol, legs, mark, health)
    at_mark = gap(mark)
    if at_mark == 0.0:
        return Liquidation(mark, mark, mark, False)
    borders, quadratic = _borders(snapshot, pool, symbol, legs, mark)
    # between borders the gap is linear (one evaluation per border finds a root) unless an
    # asset both moves with the symbol and holds its PnL: then the grid guards the curve
    below = {p for p in borders if p < mark} | ({*_grid(mark, -1)} if quadratic else {mark * GRID_LOWEST})
    above = {p for p in borders if p > mark} | ({*_grid(mark, 1)} if quadratic else set())
    down = _first_root(gap, mark, at_mark, sorted(below), -1)
    up = _first_root(gap, mark, at_mark, sorted(above), 1)
    return Liquidation(mark, down, up, at_mark < 0)


def _grid(mark: float, direction: int) -> list[float]:
    steps = int(math.log(1 / GRID_LOWEST if direction < 0 else GRID_HIGHEST) / math.log(GRID_STEP)) + 1
    return [mark * GRID_STEP ** (direction * k) for k in range(1, steps + 1)]


def _first_root(
    gap: Callable[[float], float], mark: float, at_mark: float, points: list[float], direction: int
) -> float | None:
    ordered = points[::-1] if direction < 0 else points
    previous, before = mark, at_mark
    for point in ordered:
        value = gap(point)
        if value == 0.0:
            return point
        if (value > 0) != (at_mark > 0):
            return _bisect(gap, previous, point, at_mark > 0)
        previous, before = point, value
    if direction > 0:
        # beyond the grid every piece is linear: extend the last one
        further = gap(previous * 2)
        slope = (further - before) / previous
        if slope != 0 and (before > 0) == (at_mark > 0) and (-before / slope) > 0:
            return previous - before / slope
    return None


def _bisect(gap: Callable[[float], float], inside: float, outside: float, positive: bool) -> float:
    """The border between the side of `inside` (gap of the mark's sign) and `outside`: false
    position with the Illinois step (exact in one step on a linear piece), which narrows a
    jump (a requirement step at a tier border) to the border like bisection."""
    g_in, g_out = gap(inside), gap(outside)
    side = 0
    for _ in range(200):
        if g_out == g_in:
            middle = 0.5 * (inside + outside)
        else:
            middle = outside - g_out * (outside - inside) / (g_out - g_in)
            if not min(inside, outside) < middle < max(inside, outside):
                middle = 0.5 * (inside + outside)
        if middle in (inside, outside) or abs(outside - inside) <= 1e-13 * abs(outside):
            break
        value = gap(middle)
        if value == 0:
            return middle
        if (value > 0) == positive:
            inside, g_in = middle, value
            if side == -1:
                g_out *= 0.5
            side = -1
        else:
            outside, g_out = middle, value
            if side == 1:
                g_in *= 0.5
            side = 1
    return outside
