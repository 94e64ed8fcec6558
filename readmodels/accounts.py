"""The read model every screen shares (status table, dashboard, alerts): each account's
latest figures with its freshness, worst first. Stale data is shown as stale, never as
healthy."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from store import repo
from store.freshness import Staleness, freshness


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
        if self.key_status == "trade":
            parts.append("key can trade (use a read-only key)")
        return "; ".join(parts)

    @property
    def sort_key(self) -> tuple[int, float]:
        """Unwatched accounts first (nothing is known of them), then the lowest health."""
        health = self.worst_health if self.worst_health is not None else math.inf
        return (0 if not self.watched else 1, health)


def account_views(session: Session, now: datetime, stale: Staleness | float) -> list[AccountView]:
    """Every stored account, worst first. `stale`: the staleness rule (store.freshness),
    or just its age limit in seconds."""
    rule = stale if isinstance(stale, Staleness) else Staleness(stale)
    keys = repo.latest_key_checks(session)
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
            )
        )
    return sorted(views, key=lambda v: v.sort_key)
