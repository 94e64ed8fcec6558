"""The read model every screen shares (status table, dashboard, metrics): each account's
latest figures with its freshness and its risk level, worst first. Stale data is shown as
stale, never as healthy.

The order, everywhere: worst level first (critical, then not watched, stale, warning, ok:
an account nobody can see into comes right after known danger), then the highest chance of
touching a liquidation price within 24 h, then the nearest liquidation distance."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TypedDict

from sqlalchemy.orm import Session

from config.settings import account_label
from store import repo
from store.freshness import Staleness, freshness
from store.levels import (
    CRITICAL,
    LEVEL_NUMBERS,
    NOT_WATCHED,
    OK,
    ORDER,
    STALE,
    WARNING,
    display_level,
    order_key,
)
from store.schema import AccountSnapshot, StreamState
from store.stream_states import account_marks

__all__ = ["CRITICAL", "LEVEL_NUMBERS", "NOT_WATCHED", "OK", "ORDER", "STALE", "WARNING", "AccountView"]


@dataclass(frozen=True)
class Nearest:
    """The position whose liquidation price is nearest its mark: its symbol and side (long
    or short), the liquidation price, which side of the mark it is on (down or up), the
    signed distance (fraction of mark) and the distance in daily σ (None without σ)."""

    symbol: str | None
    side: str | None
    price: float | None
    liquidation_side: str | None
    distance: float
    distance_sigma: float | None


@dataclass(frozen=True)
class AccountView:
    account_id: int
    name: str
    exchange: str
    collateral: str
    state: str  # active | paused | refused
    state_reason: str | None
    stale: bool
    age_seconds: float | None  # since the last successful poll (never negative)
    last_error: str | None
    health: float | None
    worst_health: float | None
    equity: float | None
    maintenance_margin: float | None
    margin_ratio: float | None
    topup_to_target: float | None
    nearest_distance: float | None
    positions: int
    snapshot_id: int | None
    key_status: str | None
    risk_level: int | None = None  # margin.danger.Level of the latest snapshot, as the poller computed it
    touch_probability: float | None = None  # 24 h, either side, highest of any position
    nearest: Nearest | None = None
    # streaming (docs/streaming.md): the newest streamed mark's age, the venue stream's
    # state ("live", "stale", "down"; None: not streamed), and whether the latest figures
    # are an estimate (the last poll's positions at streamed marks) and of when its positions are
    mark_age_seconds: float | None = None
    stream: str | None = None
    estimate: bool = False
    positions_age_seconds: float | None = None

    @property
    def level(self) -> str:
        """critical | warning | ok from the latest snapshot, or why nothing is known now:
        not watched (refused or paused key) or stale (no fresh data)."""
        return display_level(self.state, self.stale, self.risk_level, self.positions)

    @property
    def label(self) -> str:
        return account_label(self.exchange, self.name)

    @property
    def watched(self) -> bool:
        """Fresh data from an account still being polled."""
        return self.state == "active" and not self.stale

    @property
    def problem(self) -> str:
        """What needs a person: why it is not watched, the last error, a key that can trade."""
        parts = [
            p
            for p in (self.state_reason if self.state != "active" else None, self.last_error if self.stale else None)
            if p
        ]
        parts = list(dict.fromkeys(parts))  # a refusal is often both the state's reason and the last error
        if self.key_status == "trade":
            parts.append("key can trade (use a read-only key)")
        if self.state == "active" and self.stream in ("stale", "down"):
            parts.append(f"mark stream {self.stream}: alerts wait for the next poll")
        return "; ".join(parts)

    @property
    def sort_key(self) -> tuple[int, float, float, float]:
        """Worst level first, then the highest chance, then the nearest distance (then the
        lowest health, for accounts without positions to tell apart)."""
        return order_key(
            self.level, self.touch_probability, self.nearest.distance if self.nearest else None, self.worst_health
        )


def account_views(session: Session, now: datetime, stale: Staleness | float) -> list[AccountView]:
    """Every stored account, worst first. `stale`: the staleness rule (store.freshness),
    or just its age limit in seconds."""
    rule = stale if isinstance(stale, Staleness) else Staleness(stale)
    keys = repo.latest_key_checks(session)
    streams = account_marks(session)
    views = []
    for account, snap in repo.latest_snapshots(session):
        fresh = freshness(account.last_success_at, now, rule, account.consecutive_failures)
        check = keys.get(account.id)
        views.append(
            AccountView(
                account_id=account.id,
                name=account.name,
                exchange=account.exchange,
                collateral=account.collateral,
                state=account.state,
                state_reason=account.state_reason,
                stale=fresh.stale,
                age_seconds=fresh.age_seconds,
                last_error=account.last_error,
                health=snap.health if snap else None,
                worst_health=snap.worst_health if snap else None,
                equity=snap.equity if snap else None,
                maintenance_margin=snap.maintenance_margin if snap else None,
                margin_ratio=snap.margin_ratio if snap else None,
                topup_to_target=snap.topup_to_target if snap else None,
                nearest_distance=snap.nearest_distance if snap else None,
                positions=snap.positions if snap else 0,
                snapshot_id=snap.id if snap else None,
                key_status=check.status if check else None,
                risk_level=snap.level if snap else None,
                touch_probability=snap.touch_probability if snap else None,
                nearest=_nearest(snap),
                **_streaming(streams.get(account.id), snap, now),
            )
        )
    return sorted(views, key=lambda v: v.sort_key)


class _Streaming(TypedDict):
    mark_age_seconds: float | None
    stream: str | None
    estimate: bool
    positions_age_seconds: float | None


def _streaming(state: StreamState | None, snap: AccountSnapshot | None, now: datetime) -> _Streaming:
    """The AccountView fields of streaming."""

    def age(moment: datetime | None) -> float | None:
        return None if moment is None else max(0.0, (now - moment).total_seconds())

    estimate = bool(snap is not None and snap.source)
    return {
        "mark_age_seconds": age(state.last_message_at) if state else None,
        "stream": None if state is None else "stale" if state.stale else "live" if state.connected else "down",
        "estimate": estimate,
        "positions_age_seconds": age(snap.positions_as_of if estimate and snap else None),
    }


def _nearest(snap: AccountSnapshot | None) -> Nearest | None:
    if snap is None or snap.nearest_distance is None:
        return None
    return Nearest(
        snap.nearest_symbol,
        snap.nearest_side,
        snap.nearest_liquidation_price,
        snap.nearest_liquidation_side,
        snap.nearest_distance,
        snap.nearest_sigma,
    )


def status_document(views: list[AccountView]) -> list[dict[str, object]]:
    """The accounts as `marginwatch status --format json` prints them, in the same order."""
    return [
        {
            "exchange": v.exchange,
            "account": v.name,
            "level": v.level,
            "health": v.worst_health,
            "touch_probability_24h": v.touch_probability,
            "nearest": None
            if v.nearest is None
            else {
                "symbol": v.nearest.symbol,
                "side": v.nearest.side,
                "price": v.nearest.price,
                "liquidation_side": v.nearest.liquidation_side,
                "distance": v.nearest.distance,
                "distance_sigma": v.nearest.distance_sigma,
            },
            "stale": not v.watched,
            "data_age_seconds": v.age_seconds,
            "mark_age_seconds": v.mark_age_seconds,  # the newest streamed mark (None: not streamed)
            "stream": v.stream,  # live | stale | down | None
            "estimate": v.estimate,  # the figures: the last poll's positions at streamed marks
            "problem": v.problem or None,
        }
        for v in views
    ]
