"""Liquidation prices of multi-collateral accounts, with the collateral moving.

The rule is the general one (margin.liquidation): the price P of a symbol at which the
account's equity equals its requirement (health x level x maintenance), every other symbol
at mark. What differs is the equity: every asset whose `price_symbol` is the symbol moves
with it (P / mark), through its haircut bands. A BTC long backed by BTC therefore
liquidates sooner than the same long backed by USDT (wrong-way risk), and a short backed
by BTC later.

The gap (equity − requirement) is piecewise linear in P between tier borders and band
edges, except where an asset both moves with P and holds PnL of the symbol (a quadratic
piece). So each side is scanned over the known borders and a geometric grid (5 % steps,
down to 1e-6 x mark, up to 1,000 x mark, then the last piece extended), and the first sign
change is bisected to float precision; a requirement jump (OKX tiers) is found as the
border itself. Isolated positions keep their own pools (margin.liquidation).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace

from margin.collateral import account_figures
from margin.liquidation import Liquidation, all_liquidations
from margin.pools import Pool, pools
from margin.snapshot import Snapshot

_STEP = 1.05
_LOWEST = 1e-6
_HIGHEST = 1e3


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


def _gap_function(snapshot: Snapshot, pool: Pool, symbol: str, mark: float, health: float) -> Callable[[float], float]:
    def gap(price: float) -> float:
        ratio = price / mark
        figures = account_figures(snapshot, pool, factor=lambda s: ratio if s == symbol else 1.0)
        return figures.equity - health * figures.maintenance_margin

    return gap


def _borders(snapshot: Snapshot, symbol: str, legs: list[int], mark: float) -> list[float]:
    """Prices where the gap changes slope or jumps: the legs' tier floors, and where an
    asset that moves with the symbol crosses a band edge (its units fixed)."""
    points = []
    for i in legs:
        pos = snapshot.positions[i]
        points += [t.min_notional / pos.size for t in pos.tiers[1:]]
    for a in snapshot.assets:
        if a.price_symbol == symbol and a.amount > 0:
            for band in a.bands:
                if band.unit == "value":
                    points.append(mark * band.low / (a.amount * a.price))
    return [p for p in points if p > 0]


def _solve(snapshot: Snapshot, pool: Pool, symbol: str, legs: list[int], health: float) -> Liquidation:
    mark = snapshot.positions[legs[0]].mark_price
    gap = _gap_function(snapshot, pool, symbol, mark, health)
    at_mark = gap(mark)
    if at_mark == 0.0:
        return Liquidation(mark, mark, mark, False)
    borders = _borders(snapshot, symbol, legs, mark)
    down = _first_root(gap, mark, at_mark, sorted({p for p in borders if p < mark} | set(_grid(mark, -1))), -1)
    up = _first_root(gap, mark, at_mark, sorted({p for p in borders if p > mark} | set(_grid(mark, 1))), 1)
    return Liquidation(mark, down, up, at_mark < 0)


def _grid(mark: float, direction: int) -> list[float]:
    steps = int(math.log(1 / _LOWEST if direction < 0 else _HIGHEST) / math.log(_STEP)) + 1
    return [mark * _STEP ** (direction * k) for k in range(1, steps + 1)]


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
    """The border between the side of `inside` (gap of the mark's sign) and `outside`."""
    for _ in range(200):
        middle = 0.5 * (inside + outside)
        if middle in (inside, outside):
            break
        if (gap(middle) > 0) == positive and gap(middle) != 0:
            inside = middle
        else:
            outside = middle
    return outside
