"""Maintenance-margin tiers (Binance "leverage brackets", Bybit "risk limits", OKX
"position tiers", Hyperliquid "margin tiers").

A tier applies to a position whose notional (quote currency) lies in
[min_notional, max_notional). Maintenance margin = notional x rate - amount, where the
amount (Binance's "cum", Hyperliquid's "deduction") keeps the margin continuous across tier
boundaries: cum_n = cum_(n-1) + min_notional_n x (rate_n - rate_(n-1)) (Binance USD-M FAQ,
"Leverage and Margin of USDⓈ-M Futures").
"""

from __future__ import annotations

import bisect
import functools
import itertools
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Tier:
    """One tier. `max_notional` is math.inf for the last, open-ended tier."""

    min_notional: float
    max_notional: float
    maintenance_margin_rate: float
    maintenance_amount: float
    max_leverage: float | None = None


def normalise_tiers(raw: Iterable[Mapping[str, float | None]]) -> tuple[Tier, ...]:
    """Sort tiers by their floor and fill in missing maintenance amounts from the table.

    Raises ValueError when two tiers start at the same notional or the first does not
    start at 0.
    """
    rows = sorted(raw, key=lambda r: float(r["min_notional"] or 0.0))
    tiers: list[Tier] = []
    for row in rows:
        floor = float(row["min_notional"] or 0.0)
        rate = float(row["maintenance_margin_rate"])  # type: ignore[arg-type]
        amount = row.get("maintenance_amount")
        if tiers and floor == tiers[-1].min_notional:
            raise ValueError(f"two tiers start at notional {floor:g}")
        if amount is None:
            if tiers:
                prev = tiers[-1]
                amount = prev.maintenance_amount + floor * (rate - prev.maintenance_margin_rate)
            else:
                amount = 0.0
        ceiling = row.get("max_notional")
        tiers.append(
            Tier(
                min_notional=floor,
                max_notional=math.inf if ceiling is None else float(ceiling),
                maintenance_margin_rate=rate,
                maintenance_amount=float(amount),
                max_leverage=None if row.get("max_leverage") is None else float(row["max_leverage"]),  # type: ignore[arg-type]
            )
        )
    if tiers and tiers[0].min_notional != 0.0:
        raise ValueError(f"the first tier must start at notional 0, not {tiers[0].min_notional:g}")
    return tuple(tiers)


def never_negative(tiers: tuple[Tier, ...]) -> tuple[Tier, ...]:
    """The table with no segment where maintenance (notional x rate - amount) is negative.

    A tier's amount applies only from the notional where rate x notional >= amount: that
    is what a bracket means (Binance's cum is the margin the lower brackets did not charge).
    Below that notional the tier charges nothing, so such a tier is split in two there: a
    segment with rate 0 and amount 0, then the tier itself. A tier that never reaches its
    amount before the next floor becomes rate 0 and amount 0. Tables whose amounts follow
    from their rates (cum_n above) are returned unchanged.
    """
    result: list[Tier] = []
    for i, tier in enumerate(tiers):
        rate, amount = tier.maintenance_margin_rate, tier.maintenance_amount
        if rate * tier.min_notional >= amount:
            result.append(tier)
            continue
        end = tiers[i + 1].min_notional if i + 1 < len(tiers) else math.inf
        start = amount / rate if rate > 0 else math.inf
        while rate * start < amount:  # the first notional where the margin is not below 0
            start = math.nextafter(start, math.inf)
        if start >= end:
            result.append(Tier(tier.min_notional, tier.max_notional, 0.0, 0.0, tier.max_leverage))
            continue
        result.append(Tier(tier.min_notional, start, 0.0, 0.0, tier.max_leverage))
        result.append(Tier(start, tier.max_notional, rate, amount, tier.max_leverage))
    return tuple(result)


def tier_index(tiers: tuple[Tier, ...], notional: float, below: bool = False) -> int:
    """Index of the tier that holds `notional` (the last one whose floor is <= notional);
    with `below`, of the tier just below it (the last floor < notional)."""
    floors = [t.min_notional for t in tiers]
    search = bisect.bisect_left if below else bisect.bisect_right
    return max(0, search(floors, notional) - 1)


def tier_for(tiers: tuple[Tier, ...], notional: float, below: bool = False) -> Tier:
    """The tier that holds `notional` (or, with `below`, the one just below it)."""
    return tiers[tier_index(tiers, notional, below)]


@functools.lru_cache(maxsize=4096)
def tier_shape(tiers: tuple[Tier, ...]) -> tuple[bool, bool]:
    """(rising, continuous): the rate never falls from one tier to the next; the amounts
    keep notional x rate - amount continuous at every floor. A rising table's requirement
    is at most its top rate x notional; a rising continuous one is convex in the notional.
    The liquidation solver uses both to rule a side out without walking it."""
    rising = continuous = True
    for prev, tier in itertools.pairwise(tiers):
        rising &= tier.maintenance_margin_rate >= prev.maintenance_margin_rate
        expected = prev.maintenance_amount + tier.min_notional * (
            tier.maintenance_margin_rate - prev.maintenance_margin_rate
        )
        continuous &= abs(tier.maintenance_amount - expected) <= 1e-9 * max(1.0, abs(expected), tier.min_notional)
    return rising, continuous
