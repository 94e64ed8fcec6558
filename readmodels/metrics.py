"""What marginwatch tells Prometheus about the accounts (docs/deploy.md, "Metrics"): the
figures every screen shows, read from the store after each cycle and aged at each scrape.

The names are fixed: the shipped alert rules (examples/prometheus) and the Grafana
dashboard (examples/grafana) rely on them. Per account (labels exchange, account):
health, level (0 ok, 1 warning, 2 critical, 3 stale, 4 not watched), the nearest
liquidation's distance (fraction of mark, negative once past it) and the same in daily σ,
the chance of touching a liquidation price within 24 h, equity, maintenance margin and the
top-up to target (collateral currency), the data's age (seconds); per position (labels
exchange, account, symbol, side): its liquidation distance; per delivery channel: the
alert deliveries waiting and the ones that failed.

Series come only from the latest read: a closed position or an account gone from the
config has no series at the next scrape, so the label sets stay bounded by what is watched.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from alerts.channels import row_channels
from config.settings import Config
from readmodels.accounts import LEVEL_NUMBERS, AccountView, account_views
from store.freshness import Staleness
from store.schema import AlertDelivery, PositionSnapshot

ACCOUNT = ("exchange", "account")
POSITION = ("exchange", "account", "symbol", "side")
QUEUED = ("pending", "sending")  # a delivery not done yet: waiting for its turn, or in flight


@dataclass(frozen=True)
class PositionDistance:
    """A position of an account's latest snapshot and its liquidation distance (fraction
    of mark, negative once past liquidation)."""

    exchange: str
    account: str
    symbol: str
    side: str
    distance: float


@dataclass(frozen=True)
class MetricsState:
    """One read of the store: the watched accounts (worst first), their open positions,
    and the alert deliveries by channel. `read_at` is when it was read."""

    read_at: datetime
    stale_after_seconds: float
    accounts: tuple[AccountView, ...] = ()
    positions: tuple[PositionDistance, ...] = ()
    deliveries_pending: Mapping[str, int] = field(default_factory=dict)
    deliveries_failed: Mapping[str, int] = field(default_factory=dict)


def read_state(
    session: Session,
    now: datetime,
    stale: Staleness | float,
    names: Collection[str] | None = None,
    channels: Collection[str] = (),
) -> MetricsState:
    """The store as metrics show it; with `names`, only those accounts (the configured ones:
    an account removed from the config is no longer watched, and no longer reported).
    `channels` (the configured ones) are counted from 0 before their first delivery: a
    channel's first failure is then an increase that rules see. `stale`: the staleness rule
    (store.freshness), or just its age limit in seconds."""
    stale_after_seconds = stale.after_seconds if isinstance(stale, Staleness) else stale
    views = tuple(v for v in account_views(session, now, stale) if names is None or v.name in names)
    by_snapshot = {v.snapshot_id: v for v in views if v.snapshot_id is not None}
    nearest: dict[tuple[str, str, str, str], float] = {}
    if by_snapshot:
        p = PositionSnapshot
        rows = session.execute(
            select(p.snapshot_id, p.symbol, p.side, p.distance)
            .where(p.snapshot_id.in_(by_snapshot))
            .where(p.distance.is_not(None))
        )
        for snapshot_id, symbol, side, distance in rows:
            if distance is None:  # the query leaves none; the row's type allows them
                continue
            view = by_snapshot[snapshot_id]
            key = (view.exchange, view.name, symbol, side)
            # one series per label set: a symbol held twice on one side (cross and isolated) shows the nearer
            if key not in nearest or abs(distance) < abs(nearest[key]):
                nearest[key] = distance
    pending = dict.fromkeys(channels, 0)
    failed = dict.fromkeys(channels, 0)
    counts = session.execute(
        select(AlertDelivery.channel, AlertDelivery.status, func.count()).group_by(
            AlertDelivery.channel, AlertDelivery.status
        )
    )
    for channel, status, count in counts:
        pending[channel] = pending.get(channel, 0) + (count if status in QUEUED else 0)
        failed[channel] = failed.get(channel, 0) + (count if status == "failed" else 0)
    return MetricsState(
        read_at=now,
        stale_after_seconds=stale_after_seconds,
        accounts=views,
        positions=tuple(PositionDistance(*key, distance) for key, distance in nearest.items()),
        deliveries_pending=pending,
        deliveries_failed=failed,
    )


def configured_channels(config: Config) -> list[str]:
    """The delivery channels of `config`, named as the outbox names them (one per Telegram
    chat too: alerts.channels.row_channels)."""
    return row_channels(config)


def aged(view: AccountView, read_at: datetime, now: datetime, stale_after_seconds: float) -> AccountView:
    """The account as it stands at `now`: its data older by the time since it was read,
    and stale once that passes the limit (a poller that stopped reads as stale, never as
    the last level it saw)."""
    if view.age_seconds is None:
        return view
    age = view.age_seconds + max(0.0, (now - read_at).total_seconds())
    return replace(view, age_seconds=age, stale=view.stale or age > stale_after_seconds)


# name (after the marginwatch_ prefix) -> help text, and how to read it off an account
ACCOUNT_GAUGES: dict[str, str] = {
    "account_health": "Health of the account's worst margin pool: equity / maintenance margin (1 is liquidation).",
    "account_level": "Risk level: 0 ok, 1 warning, 2 critical, 3 stale, 4 not watched.",
    "account_liquidation_distance_ratio": "Distance from the mark to the nearest liquidation price, either side, "
    "as a fraction of the mark (negative once past it).",
    "account_liquidation_distance_sigma": "The nearest liquidation distance in daily standard deviations of the price.",
    "account_touch_probability_24h": "Chance that the price touches a liquidation price (either side) within 24 h.",
    "account_equity": "Equity in the account's collateral currency.",
    "account_maintenance_margin": "Maintenance margin in the account's collateral currency.",
    "account_topup_to_target": "Collateral to add to bring the account to its target health (collateral currency).",
    "account_data_age_seconds": "Seconds since the account's last successful poll.",
}


def _account_values(view: AccountView) -> dict[str, float | None]:
    nearest = view.nearest
    return {
        "account_health": view.worst_health,
        "account_level": float(LEVEL_NUMBERS[view.level]),
        "account_liquidation_distance_ratio": nearest.distance if nearest else None,
        "account_liquidation_distance_sigma": nearest.distance_sigma if nearest else None,
        "account_touch_probability_24h": view.touch_probability,
        "account_equity": view.equity,
        "account_maintenance_margin": view.maintenance_margin,
        "account_topup_to_target": view.topup_to_target,
        "account_data_age_seconds": view.age_seconds,
    }


def families(state: MetricsState | None, now: datetime) -> Iterator[Metric]:
    """The metric families of `state` at `now` (every family, empty without a state: a
    registry learns the names from this). A figure that is not known has no sample."""
    gauges = {
        name: GaugeMetricFamily(f"marginwatch_{name}", text, labels=ACCOUNT) for name, text in ACCOUNT_GAUGES.items()
    }
    position = GaugeMetricFamily(
        "marginwatch_position_liquidation_distance_ratio",
        "Distance from the mark to the position's liquidation price, as a fraction of the mark "
        "(negative once past it).",
        labels=POSITION,
    )
    pending = GaugeMetricFamily(
        "marginwatch_alert_deliveries_pending",
        "Alert deliveries not done yet (waiting or in flight), by channel.",
        labels=("channel",),
    )
    failed = CounterMetricFamily(
        "marginwatch_alert_deliveries_failed",
        "Alert deliveries that failed for good (every retry spent, or refused), by channel.",
        labels=("channel",),
    )
    if state is not None:
        for view in state.accounts:
            view = aged(view, state.read_at, now, state.stale_after_seconds)
            for name, value in _account_values(view).items():
                if value is not None:
                    gauges[name].add_metric((view.exchange, view.name), value)
        for p in state.positions:
            position.add_metric((p.exchange, p.account, p.symbol, p.side), p.distance)
        for channel, count in sorted(state.deliveries_pending.items()):
            pending.add_metric((channel,), count)
        for channel, count in sorted(state.deliveries_failed.items()):
            failed.add_metric((channel,), count)
    yield from gauges.values()
    yield from (position, pending, failed)
