"""Engine results -> store rows: one vectorised evaluation for every account polled in a
cycle (margin.vectorised), split back into each account's snapshot and position rows."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np

from margin.liquidation import disagrees
from margin.snapshot import Snapshot
from margin.vectorised import batch_from_snapshots, evaluate


@dataclass(frozen=True)
class Polled:
    """One account's successful fetch in this cycle."""

    snapshot: Snapshot
    taken_at: datetime
    target_health: float
    latency_ms: int | None = None
    document: str | None = None  # the snapshot JSON kept as the account's latest


def _value(x: float) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def account_rows(polled: Sequence[Polled]) -> list[tuple[dict[str, Any], list[dict[str, Any]]]]:
    """For each polled account, its account-snapshot row and its position rows."""
    if not polled:
        return []
    batch = batch_from_snapshots([p.snapshot for p in polled])
    result = evaluate(batch)
    cross_pool = {int(batch.pool_account[i]): i for i in np.flatnonzero(batch.pool_is_cross)}
    rows_of: dict[int, list[int]] = {}
    for row, account in enumerate(batch.account.tolist()):
        rows_of.setdefault(account, []).append(row)

    output = []
    for a, item in enumerate(polled):
        snap = item.snapshot
        pool = cross_pool[a]
        equity = float(result.pool_equity[pool])
        maintenance = float(result.pool_maintenance[pool])
        has_positions = any(batch.pool[r] == pool for r in rows_of.get(a, []))
        positions: list[dict[str, Any] | None] = [None] * len(snap.positions)
        for r in rows_of.get(a, []):
            i = int(batch.index[r])
            pos = snap.positions[i]
            liq = _value(result.liquidation_price[r])
            distance = _value(result.distance[r])
            sigma = None
            if liq is not None and distance is not None and pos.volatility:
                sigma = math.copysign(abs(math.log(pos.mark_price / liq)), distance) / pos.volatility
            exchange_liq = pos.exchange_liquidation_price or None
            positions[i] = {
                "symbol": pos.symbol,
                "side": pos.side,
                "margin_mode": pos.margin_mode,
                "contracts": pos.contracts,
                "contract_size": pos.contract_size,
                "entry_price": pos.entry_price,
                "mark_price": pos.mark_price,
                "notional": float(result.notional[r]),
                "unrealized_pnl": float(result.unrealized_pnl[r]),
                "maintenance_margin": float(result.maintenance_margin[r]),
                "leverage": pos.leverage,
                "isolated_margin": pos.isolated_margin,
                "liquidation_price": liq,
                "exchange_liquidation_price": exchange_liq,
                "disagrees": disagrees(liq, exchange_liq),
                "distance": distance,
                "distance_sigma": sigma,
                "health": (_value(result.pool_health[batch.pool[r]])
                           if pos.margin_mode == "isolated" else None),
            }
        distances = [p["distance"] for p in positions if p and p["distance"] is not None]
        account = {
            "taken_at": item.taken_at,
            "exchange_time": None,
            "wallet_balance": snap.wallet_balance,
            "equity": equity,
            "maintenance_margin": maintenance,
            "health": _value(result.pool_health[pool]),
            "margin_ratio": (maintenance / equity
                             if has_positions and equity > 0 and maintenance > 0 else None),
            "worst_health": _value(result.account_worst_health[a]),
            "deficit": max(0.0, maintenance - equity),
            "topup_to_target": max(0.0, item.target_health * maintenance - equity),
            "target_health": item.target_health,
            "nearest_distance": min(distances) if distances else None,
            "positions": len(snap.positions),
            "latency_ms": item.latency_ms,
        }
        output.append((account, [p for p in positions if p is not None]))
    return output
