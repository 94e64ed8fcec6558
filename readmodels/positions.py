"""The position grid: every open position of every account's latest snapshot, one row
each, as a trader reads an exchange's position screen (venue-native symbol, size in
contracts and in the base coin, notional in its currency, liquidation prices ours and the
venue's, distance, margin ratio, unrealised PnL, next funding). Read from the store only:
a handful of queries by key, never the history."""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from readmodels.accounts import AccountView, account_views
from readmodels.symbols import native_symbol, pool_name, symbol_parts
from store import repo
from store.freshness import Staleness
from store.schema import PositionSnapshot


@dataclass(frozen=True)
class GridRow:
    """One position. Prices in the market's quote currency, money in `currency` (the quote,
    or the coin of a coin-margined contract, whose size `base_size` is then in USD);
    `distance` a fraction of mark toward `liquidation_side` (down | up); `margin_ratio`
    its pool's maintenance / equity (the cross pool's for a cross position); funding as
    a fraction per interval, `funding_received` what the position receives at the next
    settlement at the current rate (negative: it pays)."""

    account: str  # the account's name
    label: str  # exchange/name
    level: str
    stale: bool
    exchange: str
    symbol: str  # venue-native (BTC-USDT-SWAP on OKX, BTCUSDT on Binance)
    unified: str  # ccxt's (BTC/USDT:USDT)
    side: str
    margin_mode: str
    pool: str  # "cross" or "isolated · BTC short"
    contracts: float
    base_size: float
    base: str
    currency: str
    notional: float
    leverage: float | None
    entry_price: float
    mark_price: float
    liquidation_price: float | None
    exchange_liquidation_price: float | None
    disagrees: bool
    distance: float | None
    distance_sigma: float | None
    liquidation_side: str | None
    margin_ratio: float | None
    unrealized_pnl: float
    maintenance_margin: float
    isolated_margin: float | None
    touch_probability: float | None
    volatility: float | None
    health: float | None
    funding_rate: float | None
    next_funding_at: datetime | None
    funding_received: float | None
    amount_step: float | None
    price_tick: float | None


def _amount_steps(document: str | None) -> list[float | None]:
    if not document:
        return []
    try:
        return [p.get("amount_step") for p in json.loads(document).get("positions", [])]
    except (ValueError, AttributeError):
        return []


def _received(side: str, rate: float | None, notional: float) -> float | None:
    """Funding a position receives at one settlement: longs pay a positive rate."""
    if rate is None:
        return None
    return -(1.0 if side == "long" else -1.0) * rate * abs(notional)


def position_grid(
    session: Session, now: datetime, stale: Staleness | float, views: list[AccountView] | None = None
) -> list[GridRow]:
    """Every position of every account's latest snapshot, accounts worst first, each
    account's positions nearest liquidation first."""
    views = views if views is not None else account_views(session, now, stale)
    by_snapshot = {v.snapshot_id: v for v in views if v.snapshot_id is not None and v.positions}
    if not by_snapshot:
        return []
    rows = session.scalars(
        select(PositionSnapshot)
        .where(PositionSnapshot.snapshot_id.in_(list(by_snapshot)))
        .order_by(PositionSnapshot.snapshot_id, PositionSnapshot.id)
    )
    positions: dict[int, list[PositionSnapshot]] = defaultdict(list)
    for row in rows:
        positions[row.snapshot_id].append(row)
    documents = {a.id: a.latest_document for a in repo.accounts(session) if a.latest_snapshot_id in by_snapshot}
    snapshots = {v.snapshot_id: repo.latest_snapshot(session, v.account_id) for v in by_snapshot.values()}
    stats = {(s.exchange, s.symbol): s for s in repo.market_stats(session)}
    grid = []
    for view in views:  # worst account first
        sid = view.snapshot_id
        if sid not in by_snapshot:
            continue
        steps = _amount_steps(documents.get(view.account_id))
        snap = snapshots.get(sid)
        account_rows = []
        for i, p in enumerate(positions[sid]):
            base, quote, settle, _expiry = symbol_parts(p.symbol)
            if settle and settle == base != quote:
                # coin-margined: the size is in the quote currency (USD), money in the coin
                base, quote = quote, settle
            stat = stats.get((view.exchange, p.symbol))
            rate = stat.funding_rate if stat else None
            next_at = None
            if stat is not None and stat.hours_to_funding is not None:
                next_at = stat.updated_at + timedelta(hours=stat.hours_to_funding)
            if p.margin_mode == "isolated":
                ratio = 1.0 / p.health if p.health else None
            else:
                ratio = snap.margin_ratio if snap is not None else None
            account_rows.append(
                GridRow(
                    account=view.name,
                    label=view.label,
                    level=view.level,
                    stale=not view.watched,
                    exchange=view.exchange,
                    symbol=native_symbol(view.exchange, p.symbol),
                    unified=p.symbol,
                    side=p.side,
                    margin_mode=p.margin_mode,
                    pool=pool_name(p.margin_mode, p.symbol, p.side),
                    contracts=p.contracts,
                    base_size=p.contracts * p.contract_size,
                    base=base,
                    currency=quote,
                    notional=abs(p.notional),
                    leverage=p.leverage,
                    entry_price=p.entry_price,
                    mark_price=p.mark_price,
                    liquidation_price=p.liquidation_price,
                    exchange_liquidation_price=p.exchange_liquidation_price,
                    disagrees=bool(p.disagrees),
                    distance=p.distance,
                    distance_sigma=p.distance_sigma,
                    liquidation_side=p.liquidation_side,
                    margin_ratio=ratio,
                    unrealized_pnl=p.unrealized_pnl,
                    maintenance_margin=p.maintenance_margin,
                    isolated_margin=p.isolated_margin,
                    touch_probability=p.touch_probability,
                    volatility=p.volatility,
                    health=p.health,
                    funding_rate=rate,
                    next_funding_at=next_at,
                    funding_received=_received(p.side, rate, p.notional),
                    amount_step=steps[i] if i < len(steps) else None,
                    price_tick=stat.price_tick if stat else None,
                )
            )
        account_rows.sort(key=lambda r: float("inf") if r.distance is None else abs(r.distance))
        grid.extend(account_rows)
    return grid
