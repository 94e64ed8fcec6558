"""Stored position rows as the risk level's inputs (margin.danger), so that the alerts read
the level exactly as the poller computed it, with the thresholds configured now."""

from __future__ import annotations

from collections.abc import Sequence

from margin.danger import Assessment, DangerLimits, PositionRisk, assess
from store.schema import AccountSnapshot, PositionSnapshot


def assess_stored(
    snapshot: AccountSnapshot | None, positions: Sequence[PositionSnapshot], limits: DangerLimits
) -> Assessment:
    """The risk level of a stored snapshot. Isolated positions are their own pools (their
    stored health is their pool's); the cross pool's health is the snapshot's."""
    risks = []
    pool_health: dict[str, float | None] = {}
    for p in positions:
        key = "cross" if p.margin_mode == "cross" else f"isolated:{p.id}"
        pool_health[key] = (snapshot.health if snapshot is not None else None) if key == "cross" else p.health
        past = p.distance is not None and p.distance < 0
        risks.append(
            PositionRisk(key, p.mark_price, p.liquidation_price_down, p.liquidation_price_up, past, p.volatility)
        )
    return assess(risks, pool_health, limits)
