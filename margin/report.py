"""The risk report of one snapshot: everything the engine computes, as a JSON-ready dict.

This is the document `marginwatch risk --format json` prints (its fields are listed in
docs/snapshot-format.md, "Risk report"). Money in the collateral currency, prices in
quote currency, distances and shocks as fractions. A coin-margined (inverse) snapshot's
money is in its coin, and each money field is repeated in USD (margin.inverse_report).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from margin.danger import DangerLimits, PositionRisk, assess, liquidation_chances
from margin.inverse import notional as position_notional
from margin.inverse_report import add_usd_values
from margin.liquidation import agrees_with_either, all_liquidations, distance_in_sigma
from margin.pools import (
    PoolFigures,
    maintenance_requirement,
    pool_figures,
    pools,
    rule_for,
    taker_fee,
    unrealized_pnl,
)
from margin.remedies import deleverage_plan
from margin.snapshot import Snapshot
from margin.stress import DEFAULT_SHOCKS, liquidating_shocks, stress_test

DEFAULT_TARGET_HEALTH = 1.5


def risk_report(
    snapshot: Snapshot,
    target_health: float = DEFAULT_TARGET_HEALTH,
    shocks: Sequence[float] = DEFAULT_SHOCKS,
    slippage: float = 0.0,
    limits: DangerLimits = DangerLimits(),  # noqa: B008 - frozen
) -> dict[str, Any]:
    """Account, pools, positions, remedies and stress test of `snapshot`."""
    all_pools = [pool_figures(snapshot, pool) for pool in pools(snapshot)]
    cross = all_pools[0]
    by_position = {i: f for f in all_pools[1:] for i in f.pool.indices}
    healths = [f.health for f in all_pools if f.health is not None]
    rule = rule_for(snapshot)
    fee = taker_fee(snapshot)
    liquidations = all_liquidations(snapshot)

    pool_key = {i: f.pool.key for f in all_pools for i in f.pool.indices}
    risks = [
        PositionRisk(pool_key[i], p.mark_price, found.down, found.up, found.past, p.volatility)
        for i, (p, found) in enumerate(zip(snapshot.positions, liquidations, strict=True))
    ]
    assessment = assess(risks, {f.pool.key: f.health for f in all_pools if f.pool.indices}, limits)
    day_chances = assessment.chances if limits.horizon_hours == 24.0 else liquidation_chances(risks, 24.0)

    positions: list[dict[str, Any]] = []
    for i, pos in enumerate(snapshot.positions):
        found = liquidations[i]
        distance = found.distance
        chance = day_chances[i]
        requirement = maintenance_requirement(pos, rule.mode(pos.margin_mode), fee, pos.mark_price)
        isolated = by_position.get(i)
        notional = position_notional(pos)
        positions.append(
            {
                "symbol": pos.symbol,
                "side": pos.side,
                "margin_mode": pos.margin_mode,
                "contract_type": pos.contract_type,
                "settle": pos.settle,
                "contracts": pos.contracts,
                "size": pos.size,
                "entry_price": pos.entry_price,
                "mark_price": pos.mark_price,
                "notional": notional,
                "unrealized_pnl": unrealized_pnl(pos, pos.mark_price),
                "maintenance_margin": requirement,
                "leverage": pos.leverage,
                "initial_margin": notional / pos.leverage if pos.leverage else None,
                "liquidation_price": found.nearest,
                "liquidation_side": found.side,
                "liquidation_price_down": found.down,
                "liquidation_price_up": found.up,
                "distance_to_liquidation": distance,
                "distance_sigma": distance_in_sigma(pos.mark_price, found.nearest, distance, pos.volatility),
                "touch_probability_24h": chance,
                "level": assessment.positions[i].name.lower(),
                "exchange_liquidation_price": pos.exchange_liquidation_price,
                "disagrees_with_exchange": not agrees_with_either(found, pos.exchange_liquidation_price),
                "equity": isolated.equity if isolated else None,
                "health": isolated.health if isolated else None,
                "topup_to_target": isolated.topup_to(target_health) if isolated else None,
            }
        )

    pool_rows = []
    for figures in all_pools:
        if not figures.pool.indices:
            continue
        members = [positions[i] for i in figures.pool.indices]
        chances = [p["touch_probability_24h"] for p in members if p["touch_probability_24h"] is not None]
        pool_rows.append(
            {
                "pool": figures.pool.key,
                "margin_mode": figures.pool.margin_mode,
                "equity": figures.equity,
                "maintenance_margin": figures.maintenance_margin,
                "health": figures.health,
                "level": assessment.pools[figures.pool.key].name.lower(),
                "touch_probability_24h": max(chances) if chances else None,
                "nearest": _nearest(members),
            }
        )
    chances = [p["touch_probability_24h"] for p in positions if p["touch_probability_24h"] is not None]

    plan = deleverage_plan(snapshot, target_health, slippage, liquidations)
    report = {
        "exchange": snapshot.exchange,
        "account_name": snapshot.account,
        "collateral": snapshot.collateral,
        "target_health": target_health,
        "limits": {
            "warning_health": limits.warning_health,
            "critical_health": limits.critical_health,
            "warning_chance": limits.warning_chance,
            "critical_chance": limits.critical_chance,
            "warning_distance": limits.warning_distance,
            "critical_distance": limits.critical_distance,
            "horizon_hours": limits.horizon_hours,
        },
        "account": {
            "wallet_balance": snapshot.wallet_balance,
            "equity": cross.equity,
            "maintenance_margin": cross.maintenance_margin,
            "health": cross.health,
            "margin_ratio": cross.margin_ratio,
            "deficit": cross.deficit,
            "topup_to_target": cross.topup_to(target_health),
            "native_ratio": _native_ratio(snapshot, cross),
            "worst_health": min(healths) if healths else None,
            "level": assessment.level.name.lower(),
            "touch_probability_24h": max(chances) if chances else None,
            "nearest": _nearest(positions),
        },
        "pools": pool_rows,
        "positions": positions,
        "deleverage": [
            {
                "symbol": r.symbol,
                "side": r.side,
                "position": r.index,
                "reduce_contracts": r.contracts,
                "reduce_notional": r.notional,
                "fee": r.fee,
                "slippage_cost": r.slippage_cost,
            }
            for r in plan.reductions
        ],
        "deleverage_summary": {
            "health_before": plan.health_before,
            "health_after": plan.health_after,
            "reaches_target": plan.reaches_target,
            "total_cost": plan.total_cost,
            "note": plan.note,
            "nearest_distance_before": plan.distance_before,
            "nearest_distance_after": plan.distance_after,
            "touch_probability_24h_after": plan.chance_after,
        },
        "stress": _stress(snapshot, shocks),
    }
    if snapshot.multi_collateral:  # issue 13: collateral table, venue ratio, wrong-way share
        from margin.collateral_report import add_collateral_sections

        add_collateral_sections(report, snapshot, target_health)
    return add_usd_values(snapshot, report)


def _nearest(positions: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """The position whose liquidation price is nearest its mark (smallest |distance|)."""
    known = [p for p in positions if p["distance_to_liquidation"] is not None]
    if not known:
        return None
    p = min(known, key=lambda p: abs(p["distance_to_liquidation"]))
    return {
        "symbol": p["symbol"],
        "side": p["side"],
        "price": p["liquidation_price"],
        "liquidation_side": p["liquidation_side"],
        "distance": p["distance_to_liquidation"],
        "distance_sigma": p["distance_sigma"],
    }


def _native_ratio(snapshot: Snapshot, figures: PoolFigures) -> dict[str, Any] | None:
    rule = rule_for(snapshot)
    if rule.native_ratio_name is None:
        return None
    value = figures.health if rule.native_ratio_kind == "equity/maintenance" else figures.margin_ratio
    return {"name": rule.native_ratio_name, "value": value}


def _stress(snapshot: Snapshot, shocks: Sequence[float]) -> dict[str, Any]:
    scenarios = []
    for scenario in stress_test(snapshot, shocks):
        scenarios.append(
            {
                "shock": scenario.shock,
                "account": {
                    "equity": scenario.pools[0].equity,
                    "maintenance_margin": scenario.pools[0].maintenance_margin,
                    "health": scenario.pools[0].health,
                },
                "pools": [
                    {
                        "pool": p.pool.key,
                        "equity": p.equity,
                        "maintenance_margin": p.maintenance_margin,
                        "health": p.health,
                        "liquidated": p.liquidated,
                    }
                    for p in scenario.pools
                    if p.pool.indices
                ],
                "liquidated_positions": list(scenario.liquidated_positions),
            }
        )
    return {
        "shocks": list(shocks),
        "scenarios": scenarios,
        "liquidating_shocks": [
            {"pool": s.pool.key, "down": s.down, "up": s.up, "smallest": s.smallest, "side": s.side}
            for s in liquidating_shocks(snapshot)
        ],
    }
