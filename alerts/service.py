"""Alert evaluation against the store: read an account's figures and rule states, step the
rules (alerts.evaluate), and write new states, transitions and — when something worth
telling changed — one notification with its outbox rows, all in one transaction. A
restart therefore neither forgets a firing alert nor tells it twice."""

from __future__ import annotations

import math
from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, sessionmaker

from alerts import facts, identity, incidents
from alerts.channels import enqueue, row_channels
from alerts.collateral_lines import collateral_lines
from alerts.evaluate import AccountFigures, evaluate, position_subject
from alerts.levels import limits_for
from alerts.messages import Identity, Incident, Message, MessageInputs, compose
from alerts.rules import Level, RuleState, Transition
from config.settings import AccountConfig, Config
from store import repo
from store.danger import assess_stored
from store.freshness import is_stale, staleness
from store.schema import (
    Account,
    AccountSnapshot,
    AlertIncident,
    AlertNotification,
    AlertState,
    AlertTransition,
    PositionSnapshot,
    Silence,
)


def _load_states(session: Session, account_id: int) -> dict[str, AlertState]:
    return {r.subject: r for r in session.scalars(select(AlertState).where(AlertState.account_id == account_id))}


def _rule_state(row: AlertState) -> RuleState:
    return RuleState(
        Level(row.level),
        tuple(row.counts),
        row.since,
        row.last_notified,
        row.value,
        row.calm_since,
        row.clear_since,
    )


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
        row.level, row.counts = int(s.level), list(s.counts)
        if row.acked_level is not None and row.acked_level != row.level:  # a new level: the ack ends
            row.acked_level, row.acked_at, row.acked_by = None, None, None
        row.since, row.last_notified = s.since, s.last_notified
        row.value = None if s.value is None or not math.isfinite(s.value) else s.value
        row.calm_since, row.clear_since = s.calm_since, s.clear_since


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
        level_now = max((s.level for s in states.values()), default=Level.OK)
        incident = incidents.track(
            session,
            account_id,
            level_now,
            now,
            lambda: facts.worst_of(session, account.exchange, positions, account.collateral),
        )
        muted = silenced(session, account_id, now)
        tell = [(s, t) for s, t in told if _worth_telling(config, account_config, acked, s, t)] if not muted else []
        notification_id = None
        if tell:
            notification_id = _notify(
                session,
                config,
                account_config,
                account,
                snapshot,
                positions,
                figures,
                tell,
                target,
                now,
                level_now,
                incident,
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
    incident: AlertIncident | None,
) -> int:
    document = facts.document_of(account)
    ticks = facts.price_ticks(session, account.exchange, [p.symbol for p in positions])
    legs = facts.legs_of(positions, ticks, document)
    aim = facts.aim_of(config.rules_for(account_config), target)
    message = compose(
        MessageInputs(
            label=account_config.label,
            collateral=account.collateral,
            transitions=tell,
            health=snapshot.health if snapshot else None,
            equity=snapshot.equity if snapshot else None,
            maintenance_margin=snapshot.maintenance_margin if snapshot else None,
            positions=legs,
            remedy=facts.remedy_of(document, legs, aim) if level_now > Level.OK else None,
            nearest=facts.nearest_of(snapshot),
            chance_24h=snapshot.touch_probability if snapshot else None,
            level_now=level_now,
            problem=facts.problem_of(account, figures.stale),
            incident=_incident_facts(incident),
            identity=_identity(config, incident),
            as_of=facts.data_time(snapshot),
            positions_as_of=snapshot.positions_as_of if snapshot is not None and snapshot.source else None,
            now=now,
            exchange=account.exchange,
            account=account.name,
            collateral_rows=collateral_lines(document),
        )
    )
    return _store_notification(session, config, account_config, account.id, message, incident, now)


def _identity(config: Config, incident: AlertIncident | None) -> Identity:
    """Fresh ids for a new notification; the first one of an incident becomes its thread."""
    key = identity.new_key()
    sender = config.alerts.email.sender if config.alerts.email else None
    message_id = identity.message_id(key, identity.domain_of(sender))
    if incident is not None and incident.root_message_id is None:
        incident.root_message_id = message_id
    return Identity(key, message_id, incident.root_message_id if incident is not None else None)


def _incident_facts(incident: AlertIncident | None) -> Incident | None:
    if incident is None:
        return None
    return Incident(
        incident.id, incident.opened_at, incident.closed_at, Level(incident.worst_level), incident.worst_detail
    )


def _store_notification(
    session: Session,
    config: Config,
    account_config: AccountConfig,
    account_id: int,
    message: Message,
    incident: AlertIncident | None,
    now: datetime,
) -> int:
    """The notification and its outbox rows, in the caller's transaction."""
    ids = message.payload
    notification = AlertNotification(
        account_id=account_id,
        created_at=now,
        level=int(message.level),
        subject_line=message.subject,
        body_text=message.text,
        body_html=message.html,
        payload=message.payload,
        recipients=list(config.recipients(account_config)),
        uuid=ids["notification_id"],
        message_id=ids["message_id"],
        incident_id=incident.id if incident is not None else None,
        thread_id=ids["thread_id"],
    )
    return enqueue(session, notification, row_channels(config), now)


def alert_liquidation(
    sessions: sessionmaker[Session],
    config: Config,
    account_config: AccountConfig,
    account_id: int,
    event: dict,
    now: datetime,
) -> int | None:
    """A liquidation the venue confirmed: told at once as CRITICAL (an event, not a state:
    nothing to resolve later), in the thread of the account's open incident if there is one."""
    subject = f"liquidation:{event['symbol']}:{event['side']}"
    transition = Transition("liquidation", "liquidated", Level.OK, Level.CRITICAL, event.get("price"), now)
    with sessions.begin() as session:
        account = session.get(Account, account_id)
        if account is None:
            return None
        muted = silenced(session, account_id, now)
        notification_id = None
        if not muted:
            snapshot = session.get(AccountSnapshot, account.latest_snapshot_id) if account.latest_snapshot_id else None
            positions = repo.latest_positions(session, snapshot.id) if snapshot else []
            symbols = [event["symbol"], *(p.symbol for p in positions)]
            ticks = facts.price_ticks(session, account.exchange, symbols)
            legs = facts.legs_of(positions, ticks, facts.document_of(account))
            incident = incidents.open_incident(session, account_id)
            occurred = event["occurred_at"]
            message = compose(
                MessageInputs(
                    label=account_config.label,
                    collateral=account.collateral,
                    transitions=[(subject, transition)],
                    health=snapshot.health if snapshot else None,
                    equity=snapshot.equity if snapshot else None,
                    maintenance_margin=snapshot.maintenance_margin if snapshot else None,
                    positions=legs,
                    level_now=Level.CRITICAL,
                    incident=_incident_facts(incident),
                    identity=_identity(config, incident),
                    as_of=occurred if isinstance(occurred, datetime) else facts.data_time(snapshot),
                    now=now,
                    exchange=account.exchange,
                    account=account.name,
                    event="liquidated",
                    ticks=ticks,
                )
            )
            notification_id = _store_notification(session, config, account_config, account_id, message, incident, now)
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
