"""Account incidents: an account's episode above OK, opened by the poll that takes its worst
alert level above OK and closed by the poll that brings it back (silenced or not). Each
poll in between keeps the worst moment (level first, then the smallest signed distance to
liquidation), which the resolution reports: what it was, for how long, where it is now."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from alerts.identity import new_key
from alerts.rules import Level
from store.schema import AlertIncident

# (signed distance to the nearest liquidation, the headline figures then) of this poll
Worst = Callable[[], tuple[float | None, str | None]]


def open_incident(session: Session, account_id: int) -> AlertIncident | None:
    return session.scalars(
        select(AlertIncident)
        .where(AlertIncident.account_id == account_id, AlertIncident.closed_at.is_(None))
        .order_by(AlertIncident.opened_at.desc())
        .limit(1)
    ).first()


def track(session: Session, account_id: int, level: Level, now: datetime, worst: Worst) -> AlertIncident | None:
    """Open, update or close the account's incident for this poll's level in force. Returns
    the incident this poll belongs to (the one just closed, on the poll that resolves it)."""
    incident = open_incident(session, account_id)
    if incident is None:
        if level == Level.OK:
            return None
        distance, detail = worst()
        incident = AlertIncident(
            id=new_key(),
            account_id=account_id,
            opened_at=now,
            first_level=int(level),
            worst_level=int(level),
            worst_at=now,
            worst_distance=distance,
            worst_detail=detail,
        )
        session.add(incident)
        return incident
    if level == Level.OK:
        incident.closed_at = now
        return incident
    if level >= incident.worst_level:
        distance, detail = worst()
        worse = level > incident.worst_level or (
            distance is not None and (incident.worst_distance is None or distance < incident.worst_distance)
        )
        if worse:
            incident.worst_level, incident.worst_at = int(level), now
            incident.worst_distance, incident.worst_detail = distance, detail or incident.worst_detail
    return incident
