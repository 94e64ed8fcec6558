"""What-ifs on an account's latest snapshot, with the engine itself: a uniform price shock,
added collateral, a position cut. Pure functions (no Streamlit), so the numbers the page
shows are the numbers the tests check."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from margin.inverse import contracts_notional
from margin.liquidation import all_liquidations
from margin.pools import pool_figures, pools, taker_fee
from margin.remedies import Reduction, apply_deleverage
from margin.snapshot import Snapshot, parse_snapshot
from margin.stress import liquidating_shocks, stress_test
from readmodels.symbols import pool_name

CURVE_SHOCKS: tuple[float, ...] = tuple(float(s) for s in np.round(np.linspace(-0.5, 0.5, 101), 4))


@dataclass(frozen=True)
class WhatIf:
    shock: float = 0.0  # every mark x (1 + shock)
    added_collateral: float = 0.0  # to the cross wallet
    reduce_index: int | None = None  # a position to cut, at mark
    reduce_contracts: float = 0.0
    slippage: float = 0.0  # paid on the cut, beside the taker fee

    @property
    def changes_book(self) -> bool:
        """Collateral added or a position cut (the shock only moves prices)."""
        return bool(self.added_collateral) or (self.reduce_index is not None and self.reduce_contracts > 0)


def load(document: str) -> Snapshot:
    """The account's latest snapshot document (accounts.latest_document)."""
    return parse_snapshot(json.loads(document))


def apply(snapshot: Snapshot, what_if: WhatIf) -> Snapshot:
    """The snapshot after the cut and the top-up (both at today's marks), then the shock:
    "if I do this now, where am I when prices move by that much"."""
    result = snapshot
    if what_if.reduce_index is not None and what_if.reduce_contracts > 0:
        pos = result.positions[what_if.reduce_index]
        cut = min(what_if.reduce_contracts, pos.contracts)
        notional = contracts_notional(pos, cut)  # quote, or the coin (inverse)
        fee = taker_fee(result)
        reduction = Reduction(
            what_if.reduce_index, pos.symbol, pos.side, cut, notional, notional * fee, notional * what_if.slippage
        )
        result = apply_deleverage(result, [reduction], fee, what_if.slippage)
    if what_if.added_collateral:
        result = replace(result, wallet_balance=result.wallet_balance + what_if.added_collateral)
    if what_if.shock:
        factor = 1.0 + what_if.shock
        result = replace(
            result,
            positions=tuple(
                replace(
                    p, mark_price=p.mark_price * factor, exchange_liquidation_price=None
                )  # the exchange's figure was for the old marks
                for p in result.positions
            ),
        )
    return result


def cross_figures(snapshot: Snapshot) -> dict[str, float | None]:
    """The cross pool's equity, maintenance, health and margin ratio, and the worst pool."""
    figures = [pool_figures(snapshot, pool) for pool in pools(snapshot)]
    cross = figures[0]
    healths = [f.health for f in figures if f.health is not None]
    return {
        "equity": cross.equity,
        "maintenance_margin": cross.maintenance_margin,
        "health": cross.health,
        "margin_ratio": cross.margin_ratio,
        "worst_health": min(healths) if healths else None,
    }


def _pool_label(snapshot: Snapshot, key: str, indices: tuple[int, ...]) -> str:
    """ "cross", or "isolated · BTC short"."""
    if key == "cross":
        return "cross"
    pos = snapshot.positions[indices[0]]
    return pool_name("isolated", pos.symbol, pos.side)


def shock_range(snapshot: Snapshot) -> float:
    """The what-if's shock range (a fraction, each way): 2.5 times the nearest liquidating
    uniform shock, in steps of 5 % (it stays put while marks move a little), between 5 %
    and 50 %; the useful few % near a liquidation get the width of the chart."""
    nearest = [abs(s) for found in liquidating_shocks(snapshot) for s in (found.down, found.up) if s is not None]
    if not nearest:
        return 0.5
    steps = math.ceil(min(nearest) * 2.5 / 0.05 - 1e-9)
    return min(0.5, max(0.05, steps * 0.05))


def curve_shocks(limit: float) -> tuple[float, ...]:
    """201 shocks over ±limit (steps of 0.05 % at ±5 %)."""
    return tuple(float(s) for s in np.round(np.linspace(-limit, limit, 201), 6))


def liquidations_after(snapshot: Snapshot) -> pd.DataFrame:
    """Each position's nearest liquidation price after a what-if and its distance from
    the (shocked) mark: symbol, side, mark, liquidation price, side (down | up), distance
    (fraction of mark)."""
    rows = []
    for pos, found in zip(snapshot.positions, all_liquidations(snapshot), strict=True):
        nearest = found.nearest
        rows.append(
            {
                "symbol": pos.symbol,
                "side": pos.side,
                "pool": pool_name(pos.margin_mode, pos.symbol, pos.side),
                "mark": pos.mark_price,
                "liquidation_price": nearest,
                "liquidation_side": found.side,
                "distance": None if nearest is None else abs(nearest - pos.mark_price) / pos.mark_price,
                "past": found.past,
            }
        )
    return pd.DataFrame(
        rows, columns=["symbol", "side", "pool", "mark", "liquidation_price", "liquidation_side", "distance", "past"]
    )


def stress_curves(snapshot: Snapshot, scenario: str, shocks: tuple[float, ...] = CURVE_SHOCKS) -> pd.DataFrame:
    """Health of every pool holding a position at each shock: pool, scenario, shock, health."""
    rows = []
    for case in stress_test(snapshot, shocks):
        for p in case.pools:
            if p.pool.indices and p.health is not None:
                rows.append(
                    {
                        "pool": _pool_label(snapshot, p.pool.key, p.pool.indices),
                        "scenario": scenario,
                        "shock": case.shock,
                        "health": p.health,
                    }
                )
    return pd.DataFrame(rows, columns=["pool", "scenario", "shock", "health"])


def liquidation_markers(snapshot: Snapshot, limit: float = 0.5) -> pd.DataFrame:
    """Where each pool is liquidated under a uniform shock (within ±limit), with the
    positions it takes with it."""
    rows = []
    for found in liquidating_shocks(snapshot):
        names = ", ".join(
            f"{snapshot.positions[i].symbol.split('/')[0]} {snapshot.positions[i].side}" for i in found.pool.indices
        )
        for shock in (found.down, found.up):
            if shock is not None and abs(shock) <= limit:
                rows.append(
                    {"pool": _pool_label(snapshot, found.pool.key, found.pool.indices), "shock": shock, "label": names}
                )
    return pd.DataFrame(rows, columns=["pool", "shock", "label"])
