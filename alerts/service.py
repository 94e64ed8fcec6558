"""Alert evaluation against the store: read an account's figures and rule states, step the
rules (alerts.evaluate), and write new states, transitions and — when something worth
telling changed — one notification with its outbox rows, all in one transaction. A
restart therefore neither forgets a firing alert nor tells it twice."""

from __future__ import annotations

import json
import math
from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, sessionmaker

from alerts.channels import row_channels
from alerts.evaluate import AccountFigures, evaluate, position_subject
from alerts.levels import limits_for
from alerts.messages import MessageInputs, Nearest, NearPosition, Remedy, compose
from alerts.rules import Level, RuleState, Transition
from config.settings import AccountConfig, Config
from margin.pools import pool_figures, pools
from margin.remedies import deleverage_plan
from margin.snapshot import SnapshotError, parse_snapshot
from store import repo
from store.danger import assess_stored
from store.freshness import freshness, is_stale, staleness
from store.schema import (
    Account,
    AccountSnapshot,
    AlertDelivery,
    AlertNotification,
    AlertState,
    AlertTransition,
    PositionSnapshot,
    Silence,
)


def _load_states(session: Session, account_id: int) -> dict[str, AlertState]:
    return {r.subject: r for r in session.scalars(select(AlertState).where(AlertState.account_id == account_id))}


def _rule_state(row: AlertState) -> RuleState:
    return RuleState(Level(row.level), tuple(json.loads(row.counts)), row.since, row.last_notified, row.value)


def _save_states(session: Session, account_id: int, rows: dict[str, AlertState], states: dict[str, RuleState]) -> None:
    """Update the stored rows in place (only changed columns are written), add the new
    subjects, drop the ended ones (a closed position's)."""
    for subject in rows.keys() - states.keys():
        session.delete(rows[subject])
    for subject, s in states.items():
        row = rows.get(subject)
        if row is None:
            row = AlertState(account_id=account_id, subject=subject)
            session.add(row)
        row.level, row.counts = int(s.level), json.dumps(list(s.counts))
        if row.acked_level is not None and row.acked_level != row.level:  # a new level: the ack ends
            row.acked_level, row.acked_at, row.acked_by = None, None, None
        row.since, row.last_notified = s.since, s.last_notified
        row.value = None if s.value is None or not math.isfinite(s.value) else s.value


def silenced(session: Session, account_id: int, now: datetime) -> bool:
    return (
        session.scalar(
            select(Silence.id)
            .where(
                or_(Silence.account_id == account_id, Silence.account_id.is_(None)),
                Silence.starts_at <= now,
                Silence.ends_at > now,
            )
            .limit(1)
        )
        is not None
    )


def _figures(
    config: Config,
    account_config: AccountConfig,
    account: Account,
    snapshot: AccountSnapshot | None,
    positions: list[PositionSnapshot],
    target: float,
    now: datetime,
) -> AccountFigures:
    danger = assess_stored(snapshot, positions, limits_for(config.rules_for(account_config)))
    return AccountFigures(
        state=account.state,
        stale=is_stale(account.last_success_at, now, staleness(config), account.consecutive_failures),
        health=snapshot.health if snapshot else None,
        nearest_distance=snapshot.nearest_distance if snapshot else None,
        target_health=target,
        isolated={position_subject(p.symbol, p.side): p.health for p in positions if p.margin_mode == "isolated"},
        has_snapshot=snapshot is not None,
        chance=danger.chance,
        fallback_distance=danger.fallback_distance,
    )


def _remedy(account: Account, target: float) -> Remedy | None:
    """The engine's remedy, from the account's latest snapshot document."""
    if not account.latest_document:
        return None
    try:
        snapshot = parse_snapshot(json.loads(account.latest_document))
    except (SnapshotError, ValueError):
        return None
    plan = deleverage_plan(snapshot, target)
    topup = pool_figures(snapshot, pools(snapshot)[0]).topup_to(target)
    return Remedy(
        topup=topup,
        target_health=target,
        reductions=[(r.symbol, r.side, r.contracts) for r in plan.reductions],
        reaches_target=plan.reaches_target,
        note=plan.note,
    )


def _nearest(snapshot: AccountSnapshot | None) -> Nearest | None:
    if snapshot is None or snapshot.nearest_distance is None or snapshot.nearest_liquidation_price is None:
        return None
    return Nearest(
        snapshot.nearest_symbol or "",
        snapshot.nearest_distance,
        snapshot.nearest_sigma,
        snapshot.nearest_liquidation_price,
        snapshot.nearest_liquidation_side,
    )


def _worth_telling(config: Config, account: AccountConfig, acked: dict[str, int], subject: str, t: Transition) -> bool:
    """Not a resolution the config does not want told, nor a repeat of an acknowledged level."""
    if t.kind == "resolved" and not config.rules_for(account).notify_resolved:
        return False
    return not (t.kind == "repeat" and acked.get(subject) == int(t.to_level))


def evaluate_account(
    sessions: sessionmaker[Session], config: Config, account_config: AccountConfig, account_id: int, now: datetime
) -> int | None:
    """Step the account's rules once. Returns the id of the notification created, if any."""
    target = config.target_for(account_config)
    with sessions.begin() as session:
        # the account's row locked (PostgreSQL): two pollers never step one account's rules
        # at once, so a transition is never told twice
        account = session.get(Account, account_id, with_for_update=True)
        if account is None:
            return None
        snapshot = session.get(AccountSnapshot, account.latest_snapshot_id) if account.latest_snapshot_id else None
        positions = repo.latest_positions(session, snapshot.id) if snapshot else []
        figures = _figures(config, account_config, account, snapshot, positions, target, now)
        rules = config.rules_for(account_config)
        rows = _load_states(session, account_id)
        acked = {k: r.acked_level for k, r in rows.items() if r.acked_level is not None}
        states, told = evaluate(rules, figures, {k: _rule_state(r) for k, r in rows.items()}, now)
        _save_states(session, account_id, rows, states)
        muted = silenced(session, account_id, now)
        tell = [(s, t) for s, t in told if _worth_telling(config, account_config, acked, s, t)] if not muted else []
        notification_id = None
        if tell:
            level_now = max((s.level for s in states.values()), default=Level.OK)
            notification_id = _notify(
                session, config, account_config, account, snapshot, positions, figures, tell, target, now, level_now
            )
        for subject, t in told:
            session.add(
                AlertTransition(
                    account_id=account_id,
                    subject=subject,
                    kind=t.kind,
                    from_level=int(t.from_level),
                    to_level=int(t.to_level),
                    value=None if t.value is None or not math.isfinite(t.value) else t.value,
                    at=now,
                    muted=muted or (subject, t) not in tell,
                    notification_id=notification_id if (subject, t) in tell else None,
                )
            )
        return notification_id


def _notify(
    session: Session,
    config: Config,
    account_config: AccountConfig,
    account: Account,
    snapshot: AccountSnapshot | None,
    positions: list[PositionSnapshot],
    figures: AccountFigures,
    tell: list[tuple[str, Transition]],
    target: float,
    now: datetime,
    level_now: Level,
) -> int:
    # past liquidation (negative distance) first, then the nearest
    nearest = sorted((p for p in positions if p.distance is not None), key=lambda p: p.distance)[:3]
    stale_reason = None
    if figures.state != "active":
        stale_reason = f"not polled ({account.state}): {account.state_reason or account.last_error}"
    elif figures.stale:
        since = "never" if account.last_success_at is None else account.last_success_at.isoformat()
        why = freshness(account.last_success_at, now, staleness(config), account.consecutive_failures).reason
        stale_reason = f"no fresh snapshot since {since} ({why})" + (
            f"; last error: {account.last_error}" if account.last_error else ""
        )
    message = compose(
        MessageInputs(
            label=account_config.label,
            collateral=account.collateral,
            transitions=tell,
            health=snapshot.health if snapshot else None,
            equity=snapshot.equity if snapshot else None,
            maintenance_margin=snapshot.maintenance_margin if snapshot else None,
            stale_reason=stale_reason,
            positions=[NearPosition(p.symbol, p.side, p.mark_price, p.liquidation_price, p.distance) for p in nearest],
            remedy=_remedy(account, target) if any(t.to_level > Level.OK for _, t in tell) else None,
            nearest=_nearest(snapshot),
            chance_24h=snapshot.touch_probability if snapshot else None,
            level_now=level_now,
        )
    )
    recipients = config.recipients(account_config)
    notification = AlertNotification(
        account_id=account.id,
        created_at=now,
        level=int(message.level),
        subject_line=message.subject,
        body_text=message.text,
        body_html=message.html,
        payload=json.dumps(message.payload, default=str),
        recipients=json.dumps(recipients),
    )
    session.add(notification)
    session.flush()
    for channel in row_channels(config):
        session.add(
            AlertDelivery(
                notification_id=notification.id, channel=channel, status="pending", attempts=0, next_attempt_at=now
            )
        )
    return int(notification.id)


def alert_liquidation(
    sessions: sessionmaker[Session],
    config: Config,
    account_config: AccountConfig,
    account_id: int,
    event: dict,
    now: datetime,
) -> int | None:
    """A liquidation the venue confirmed: told at once as CRITICAL (an event, not a state:
    nothing to resolve later)."""
    subject = f"liquidation:{event['symbol']}:{event['side']}"
    transition = Transition("liquidation", "liquidated", Level.OK, Level.CRITICAL, event.get("price"), now)
    with sessions.begin() as session:
        account = session.get(Account, account_id)
        if account is None:
            return None
        muted = silenced(session, account_id, now)
        notification_id = None
        if not muted:
            price = "an unknown price" if event.get("price") is None else f"{float(event['price']):,.4f}"
            message = compose(
                MessageInputs(
                    label=account_config.label,
                    collateral=account.collateral,
                    transitions=[(subject, transition)],
                    stale_reason=f"{event['symbol']} {event['side']} was liquidated at {price} "
                    f"({event['source']}, {event['occurred_at']:%Y-%m-%d %H:%M:%S} UTC)",
                )
            )
            notification = AlertNotification(
                account_id=account_id,
                created_at=now,
                level=int(Level.CRITICAL),
                subject_line=f"LIQUIDATED · {account_config.label} · {event['symbol']} {event['side']} at {price}",
                body_text=message.text,
                body_html=message.html,
                payload=json.dumps(message.payload, default=str),
                recipients=json.dumps(config.recipients(account_config)),
            )
            session.add(notification)
            session.flush()
            notification_id = int(notification.id)
            for channel in row_channels(config):
                session.add(
                    AlertDelivery(
                        notification_id=notification_id,
                        channel=channel,
                        status="pending",
                        attempts=0,
                        next_attempt_at=now,
                    )
                )
        session.add(
            AlertTransition(
                account_id=account_id,
                subject=subject,
                kind="liquidated",
                from_level=0,
                to_level=int(Level.CRITICAL),
                value=event.get("price"),
                at=now,
                muted=muted,
                notification_id=notification_id,
            )
        )
        return notification_id
