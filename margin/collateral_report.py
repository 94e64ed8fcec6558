"""The risk report's parts for multi-collateral accounts (docs/snapshot-format.md,
"Multi-collateral accounts: the engine"): the collateral table, the venue's own ratio beside
ours, the top-up asset, and the stress loss that comes from collateral. Money in the
valuation currency."""

from __future__ import annotations

from typing import Any

from margin.collateral import account_figures, best_topup
from margin.collateral_stress import loss_split
from margin.pools import pools
from margin.snapshot import Snapshot

# A venue ratio this far (relative) from ours is flagged, like liquidation prices.
RATIO_TOLERANCE = 0.005


def add_collateral_sections(report: dict[str, Any], snapshot: Snapshot, target_health: float) -> None:
    """Fill in the multi-collateral parts of `report` (margin.report.risk_report's hook)."""
    cross = pools(snapshot)[0]
    figures = account_figures(snapshot, cross)
    account = report["account"]
    account["account_mode"] = snapshot.account_mode
    account["valuation_currency"] = snapshot.valuation_currency
    account["liquidation_level"] = figures.rule.level
    account["venue_maintenance_margin"] = figures.venue_maintenance
    ours = figures.native_ratio()
    theirs = snapshot.exchange_native_ratio
    account["native_ratio"] = (
        None
        if figures.rule.native_name is None
        else {
            "name": figures.rule.native_name,
            "value": ours,
            "exchange_value": theirs,
            "disagrees_with_exchange": ratio_disagrees(ours, theirs),
        }
    )
    account["collateral"] = [
        {
            "asset": row.asset,
            "amount": row.amount,
            "equity": row.equity,
            "price": row.price,
            "value": row.value,
            "ratio": row.ratio,
            "adjusted_value": row.adjusted,
            "price_symbol": asset.price_symbol,
        }
        for asset, row in zip(snapshot.assets, figures.assets, strict=True)
    ]
    need = account["topup_to_target"]
    choice = best_topup(snapshot, cross, need) if need > 0 else None
    account["topup_asset"] = choice[0] if choice else None
    account["topup_amount"] = choice[1] if choice else None
    for scenario in report["stress"]["scenarios"]:
        split = loss_split(snapshot, scenario["shock"])
        scenario["account"]["collateral_loss"] = split.collateral
        scenario["account"]["position_loss"] = split.positions
        scenario["account"]["wrong_way_share"] = split.wrong_way_share


def collateral_summary(snapshot: Snapshot, shock: float = -0.2) -> dict[str, Any]:
    """What the dashboard shows of a multi-collateral account: the collateral table, the
    venue's ratio beside ours, and the share of the loss under `shock` that comes from the
    collateral (valuation currency)."""
    cross = pools(snapshot)[0]
    figures = account_figures(snapshot, cross)
    ours = figures.native_ratio()
    split = loss_split(snapshot, shock)
    return {
        "valuation_currency": snapshot.valuation_currency,
        "liquidation_level": figures.rule.level,
        "ratio_name": figures.rule.native_name,
        "ratio_ours": ours,
        "ratio_exchange": snapshot.exchange_native_ratio,
        "ratio_disagrees": ratio_disagrees(ours, snapshot.exchange_native_ratio),
        "shock": shock,
        "shock_loss": split.total,
        "shock_collateral_loss": split.collateral,
        "wrong_way_share": split.wrong_way_share,
        "rows": [
            {
                "asset": row.asset,
                "amount": row.amount,
                "equity": row.equity,
                "price": row.price,
                "ratio": row.ratio,
                "value": row.value,
                "adjusted_value": row.adjusted,
                "moves_with": asset.price_symbol,
            }
            for asset, row in zip(snapshot.assets, figures.assets, strict=True)
        ],
    }


def ratio_disagrees(ours: float | None, theirs: float | None, tolerance: float = RATIO_TOLERANCE) -> bool:
    """True when the venue reports a ratio and ours is more than `tolerance` from it."""
    if theirs is None:
        return False
    if ours is None:
        return True
    return abs(ours - theirs) > tolerance * abs(theirs)
