"""Delivery status: each notification's outbox rows (pending, sending, sent, failed with
the reason, attempts), for `marginwatch alerts deliveries`, the dashboard and the bot."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from alerts.clean import one_line
from store.schema import Account, AlertDelivery, AlertNotification

STATUSES = ("pending", "sending", "sent", "failed")


@dataclass(frozen=True)
class DeliveryView:
    id: int
    alert: int  # the notification's id (what /ack and the CLI name)
    created_at: datetime
    account: str
    subject: str  # one line: exchange text made safe to print
    channel: str
    status: str
    attempts: int
    next_attempt_at: datetime | None  # pending rows: when the next try is due
    sent_at: datetime | None
    error: str | None  # one line


def recent_deliveries(
    sessions: sessionmaker[Session], limit: int = 50, status: str | None = None
) -> list[DeliveryView]:
    """The newest outbox rows first (of one status, if given)."""
    query = (
        select(
            AlertDelivery, AlertNotification.created_at, AlertNotification.subject_line, Account.exchange, Account.name
        )
        .join(AlertNotification, AlertNotification.id == AlertDelivery.notification_id)
        .join(Account, Account.id == AlertNotification.account_id)
        .order_by(AlertDelivery.notification_id.desc(), AlertDelivery.id)
        .limit(limit)
    )
    if status is not None:
        query = query.where(AlertDelivery.status == status)
    with sessions() as session:
        rows = session.execute(query).all()
    return [
        DeliveryView(
            id=d.id,
            alert=d.notification_id,
            created_at=created,
            account=f"{exchange}/{name}",
            subject=one_line(subject, 160),
            channel=one_line(d.channel, 80),
            status=d.status,
            attempts=d.attempts,
            next_attempt_at=d.next_attempt_at if d.status == "pending" else None,
            sent_at=d.sent_at,
            error=None if d.last_error is None else one_line(d.last_error, 300),
        )
        for d, created, subject, exchange, name in rows
    ]


def delivery_counts(sessions: sessionmaker[Session]) -> dict[str, int]:
    """How many outbox rows are in each status (every status listed, 0 included)."""
    with sessions() as session:
        found = dict(session.execute(select(AlertDelivery.status, func.count()).group_by(AlertDelivery.status)).all())
    return {status: int(found.get(status, 0)) for status in (*STATUSES, *sorted(set(found) - set(STATUSES)))}
