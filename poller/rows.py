"""Engine results -> store rows: one vectorised evaluation for every account polled in a
cycle (margin.vectorised), split back into each account's snapshot and position rows."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np

from margin.alert_prices import PRICE_COLUMNS, batch_alert_prices
from margin.collateral_batch import with_multi_collateral
from margin.collateral_vectorised import collateral_batch
from margin.danger import DangerLimits, PositionRisk, assess
from margin.funding import FundingRate, funding_projection
from margin.liquidation import disagrees, distance_in_sigma
from margin.snapshot import Snapshot
from margin.vectorised import batch_from_snapshots, evaluate
from margin.volatility import touch_probability

SIDES = {-1: "down", 1: "up"}


@dataclass(frozen=True)
class Polled:
    """One account's successful fetch in this cycle; `limits` are its risk-level thresholds."""

    snapshot: Snapshot
    taken_at: datetime
    target_health: float
    latency_ms: int | None = None
    document: str | None = None  # the snapshot JSON kept as the account's latest
    funding: Mapping[str, FundingRate] = field(default_factory=dict)
    limits: DangerLimits = field(default_factory=DangerLimits)
    # None: a poll; "mark_stream": the last poll's positions at streamed marks (an estimate)
    source: str | None = None
    positions_as_of: datetime | None = None  # an estimate's: when its positions were polled


def _value(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def account_rows(polled: Sequence[Polled]) -> list[tuple[dict[str, Any], list[dict[str, Any]]]]:
    """For each polled account, its account-snapshot row and its position rows."""
    if not polled:
        return []
    snapshots = [p.snapshot for p in polled]
    batch = batch_from_snapshots(snapshots)
    # issue 13: multi-collateral accounts' cross figures and prices move their collateral
    collateral = collateral_batch(batch, snapshots)
    result = with_multi_collateral(batch, evaluate(batch), snapshots, collateral)
    sigma = [
        polled[a].snapshot.positions[i].volatility
        for a, i in zip(batch.account.tolist(), batch.index.tolist(), strict=True)
    ]
    sigma_array = [math.nan if s is None else s for s in sigma]
    watch_prices = batch_alert_prices(
        batch, result, np.array(sigma_array, dtype=float), [p.limits for p in polled], collateral
    )
    # the 24 h chance of touching either side (union bound, capped: margin.danger.liquidation_chance)
    touch = np.minimum(
        1.0,
        touch_probability(batch.mark, result.liquidation_price_down, sigma_array, 24.0, result.distance)
        + touch_probability(batch.mark, result.liquidation_price_up, sigma_array, 24.0, result.distance),
    )
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
        risks: list[PositionRisk] = []
        order: list[int] = []
        pool_health: dict[str, float | None] = {}
        for r in rows_of.get(a, []):
            i = int(batch.index[r])
            pos = snap.positions[i]
            down, up = _value(result.liquidation_price_down[r]), _value(result.liquidation_price_up[r])
            liq = _value(result.liquidation_price[r])
            distance = _value(result.distance[r])
            pool_key = f"pool:{int(batch.pool[r])}"
            pool_health[pool_key] = _value(result.pool_health[batch.pool[r]])
            risks.append(
                PositionRisk(
                    pool_key, pos.mark_price, down, up, bool(distance is not None and distance < 0), pos.volatility
                )
            )
            order.append(i)
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
                "liquidation_price_down": down,
                "liquidation_price_up": up,
                "liquidation_side": SIDES.get(int(result.liquidation_side[r])),
                "exchange_liquidation_price": exchange_liq,
                # the venue reports one price: it agrees when it is close to either of ours
                "disagrees": disagrees(down, exchange_liq) and disagrees(up, exchange_liq),
                "distance": distance,
                "distance_sigma": distance_in_sigma(pos.mark_price, liq, distance, pos.volatility),
                "health": _value(result.pool_health[batch.pool[r]]) if pos.margin_mode == "isolated" else None,
                "volatility": pos.volatility,
                "touch_probability": None if pos.volatility is None else float(touch[r]),
                **{name: _value(watch_prices[name][r]) for name in PRICE_COLUMNS},
            }
        assessment = assess(risks, pool_health, item.limits)
        for i, level in zip(order, assessment.positions, strict=True):
            positions[i]["level"] = int(level)  # type: ignore[index]
        kept = [p for p in positions if p is not None]
        nearest = min((p for p in kept if p["distance"] is not None), key=lambda p: abs(p["distance"]), default=None)
        touches = [p["touch_probability"] for p in kept if p["touch_probability"] is not None]
        outlook = _funding_outlook(item)
        account = {
            "taken_at": item.taken_at,
            "exchange_time": None,
            "wallet_balance": snap.wallet_balance,
            "equity": equity,
            "maintenance_margin": maintenance,
            "health": _value(result.pool_health[pool]),
            "margin_ratio": (maintenance / equity if has_positions and equity > 0 and maintenance > 0 else None),
            "worst_health": _value(result.account_worst_health[a]),
            "deficit": max(0.0, maintenance - equity),
            "topup_to_target": max(0.0, item.target_health * maintenance - equity),
            "target_health": item.target_health,
            "nearest_distance": nearest["distance"] if nearest else None,
            "positions": len(snap.positions),
            "latency_ms": item.latency_ms,
            "touch_probability": max(touches) if touches else None,
            "level": int(assessment.level),
            "danger_chance": assessment.chance,
            "nearest_symbol": nearest["symbol"] if nearest else None,
            "nearest_side": nearest["side"] if nearest else None,
            "nearest_liquidation_side": nearest["liquidation_side"] if nearest else None,
            "nearest_liquidation_price": nearest["liquidation_price"] if nearest else None,
            "nearest_sigma": nearest["distance_sigma"] if nearest else None,
            **outlook,
            "source": item.source,
            "positions_as_of": item.positions_as_of,
        }
        output.append((account, kept))
    return output


def _funding_outlook(item: Polled) -> dict[str, float | None]:
    """The cross pool's health after 1, 3 and 7 days of funding at today's rates, and when
    (hours) funding alone takes it below the warning level."""
    empty: dict[str, float | None] = {
        "funding_health_1d": None,
        "funding_health_3d": None,
        "funding_health_7d": None,
        "funding_breach_hours": None,
    }
    if not item.funding:
        return empty
    projection = funding_projection(item.snapshot, item.funding, (24.0, 72.0, 168.0), item.limits.warning_health)
    cross = next((p for p in projection.pools if p.pool == "cross"), None)
    if cross is None:
        return empty
    return {
        "funding_health_1d": cross.health_at[24.0],
        "funding_health_3d": cross.health_at[72.0],
        "funding_health_7d": cross.health_at[168.0],
        "funding_breach_hours": cross.breach_hours,
    }
