"""What an alert says, gathered from the store: the positions as the message shows them
(with each market's price tick and order step), the remedy planned on the account's latest
snapshot document, and the feed's problem when the data is stale or the account not
polled. The sentences themselves are alerts.messages'."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from alerts import remedy as remedies
from alerts.messages import Nearest, Problem
from alerts.render import lines
from alerts.render.lines import Leg
from alerts.rules import Level
from config.settings import AlertRules
from margin.snapshot import Snapshot, SnapshotError, parse_snapshot
from store.schema import Account, AccountSnapshot, MarketStat, PositionSnapshot


def price_ticks(session: Session, exchange: str, symbols: Sequence[str]) -> dict[str, float | None]:
    if not symbols:
        return {}
    rows = session.execute(
        select(MarketStat.symbol, MarketStat.price_tick).where(
            MarketStat.exchange == exchange, MarketStat.symbol.in_(set(symbols))
        )
    )
    return {symbol: tick for symbol, tick in rows}


def document_of(account: Account) -> Snapshot | None:
    """The account's latest snapshot document, parsed (None when absent or unreadable: a
    message goes out without a remedy rather than not at all)."""
    if not account.latest_document:
        return None
    try:
        return parse_snapshot(json.loads(account.latest_document))
    except (SnapshotError, ValueError):
        return None


def legs_of(
    positions: Sequence[PositionSnapshot], ticks: Mapping[str, float | None], snapshot: Snapshot | None
) -> list[Leg]:
    steps: dict[tuple[str, str, str], float | None] = {}  # (symbol, side, margin mode) as stored
    if snapshot is not None:
        steps = {(p.symbol, p.side, p.margin_mode): p.amount_step for p in snapshot.positions}
    return [
        Leg(
            symbol=p.symbol,
            side=p.side,
            margin_mode=p.margin_mode,
            contracts=p.contracts,
            contract_size=p.contract_size,
            mark_price=p.mark_price,
            notional=p.notional,
            liquidation_price=p.liquidation_price,
            liquidation_side=p.liquidation_side,
            distance=p.distance,
            sigma=p.distance_sigma,
            chance=p.touch_probability,
            health=p.health,
            level=None if p.level is None else Level(p.level),
            price_tick=ticks.get(p.symbol),
            amount_step=steps.get((p.symbol, p.side, p.margin_mode)),
        )
        for p in positions
    ]


def nearest_of(snapshot: AccountSnapshot | None) -> Nearest | None:
    if snapshot is None or snapshot.nearest_distance is None or snapshot.nearest_liquidation_price is None:
        return None
    return Nearest(
        snapshot.nearest_symbol or "",
        snapshot.nearest_distance,
        snapshot.nearest_sigma,
        snapshot.nearest_liquidation_price,
        snapshot.nearest_liquidation_side,
    )


def worst_of(
    session: Session, exchange: str, positions: Sequence[PositionSnapshot], collateral: str
) -> tuple[float | None, str | None]:
    """(signed distance, the compact danger line) of the position nearest liquidation (past
    it first): one row made a Leg, one tick looked up, so that it is cheap at every poll."""
    known = [(p.distance, p) for p in positions if p.distance is not None]
    if not known:
        return None, None
    _, row = min(known, key=lambda pair: pair[0])
    (leg,) = legs_of([row], price_ticks(session, exchange, [row.symbol]), None)
    return leg.distance, lines.danger(leg, collateral, compact=True)


def aim_of(rules: AlertRules, target: float) -> remedies.Aim:
    """The remedy aims past the risk level's clear levels, so that acting on it also ends
    the alert (a threshold set to "off" is not aimed at)."""
    clear = rules.danger_clear_ratio
    return remedies.Aim(
        target_health=target,
        max_chance=rules.touch_warning_above * clear if rules.touch_warning_above < 1 else None,
        min_distance=rules.distance_warning_below / clear if rules.distance_warning_below > 0 else None,
        horizon_hours=rules.touch_horizon_hours,
    )


def remedy_of(snapshot: Snapshot | None, legs: list[Leg], aim: remedies.Aim) -> remedies.Remedy | None:
    if snapshot is None or not snapshot.positions:
        return None
    ordered = lines.danger_order([leg for leg in legs if leg.distance is not None])
    focus = None
    if ordered:
        key = (ordered[0].symbol, ordered[0].side, ordered[0].margin_mode)
        focus = next((i for i, p in enumerate(snapshot.positions) if (p.symbol, p.side, p.margin_mode) == key), None)
    return remedies.plan(snapshot, aim, focus)


def problem_of(account: Account, stale: bool) -> Problem | None:
    """The feed's problem, if any: not polled (a refused or failing key), or stale."""
    if account.state != "active":
        kind = "refused" if account.state == "refused" else "not_polled"
        return Problem(kind, account.state_reason or account.last_error, account.last_success_at)
    if stale:
        return Problem("stale", account.last_error, account.last_success_at)
    return None


def data_time(snapshot: AccountSnapshot | None) -> datetime | None:
    return None if snapshot is None else snapshot.taken_at
