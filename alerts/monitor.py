"""The monitor's own alerts: the watcher watched. Subjects (stored with no account):

- `monitor:database`: a poller cannot write the database (locked past the busy timeout,
  read-only, full disk, server unreachable). Sent directly (alerts.direct), once per
  cause, and recorded when the database is back, with a resolution through the outbox.
- `monitor:poller`: the watchdog saw no poller complete a cycle for N intervals; and its
  resolution when one does again.
- `monitor:watchdog`: the watchdog cannot read the database.

compose_monitor is pure; the record functions write what was told, in one transaction.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from alerts.channels import enqueue
from alerts.direct import direct_channels, monitor_recipients
from alerts.messages import Message
from alerts.rules import Level
from config.settings import Config
from store.schema import AlertDelivery, AlertNotification, AlertTransition

LABEL = "marginwatch"


@dataclass(frozen=True)
class MonitorEvent:
    subject: str  # monitor:database | monitor:poller | monitor:watchdog
    kind: str  # fired | resolved
    headline: str  # "poller cannot write the database (database is locked)"
    at: datetime
    details: Sequence[str] = field(default_factory=tuple)

    @property
    def level(self) -> Level:
        return Level.CRITICAL if self.kind == "fired" else Level.OK


def compose_monitor(event: MonitorEvent) -> Message:
    """Subject "CRITICAL · marginwatch · poller cannot write the database (disk full)"."""
    headline = "CRITICAL" if event.kind == "fired" else "RESOLVED"
    subject = f"{headline} · {LABEL} · {event.headline}"
    lines = [f"{LABEL}: {headline}", "", event.headline, "", *event.details, "", f"At {event.at:%Y-%m-%d %H:%M:%S} UTC"]
    text = "\n".join(lines).rstrip() + "\n"
    e = html.escape
    colour = "#b00020" if event.kind == "fired" else "#1b7f3b"
    body = (
        f'<html><body><h2 style="color:{colour}">{e(headline)} · {e(LABEL)}</h2>'
        f"<p><b>{e(event.headline)}</b></p>"
        + "".join(f"<p>{e(line)}</p>" for line in event.details if line)
        + f"<p>At {event.at:%Y-%m-%d %H:%M:%S} UTC</p></body></html>"
    )
    payload = {
        "account": LABEL,
        "level": headline,
        "subject": subject,
        "changes": [{"rule": event.subject, "kind": event.kind, "level": event.level.name, "value": None}],
        "remedy": [],
        "text": text,
    }
    return Message(event.level, subject, text, body, payload)


def message_key(event: MonitorEvent) -> str:
    """A stable Message-ID part: the same event told twice is recognisably the same."""
    return f"marginwatch-{event.subject.replace(':', '-')}-{event.kind}-{int(event.at.timestamp() * 1000)}"


def _notification(config: Config, message: Message, at: datetime) -> AlertNotification:
    return AlertNotification(
        account_id=None,
        created_at=at,
        level=int(message.level),
        subject_line=message.subject,
        body_text=message.text,
        body_html=message.html,
        payload=message.payload,
        recipients=monitor_recipients(config),
    )


def _transition(event: MonitorEvent, notification_id: int | None) -> AlertTransition:
    fired = event.kind == "fired"
    return AlertTransition(
        account_id=None,
        subject=event.subject,
        kind=event.kind,
        from_level=int(Level.OK if fired else Level.CRITICAL),
        to_level=int(event.level),
        value=None,
        at=event.at,
        muted=False,
        notification_id=notification_id,
    )


def record_told(session: Session, config: Config, event: MonitorEvent, outcome: Mapping[str, str | None]) -> int:
    """Store an event that was sent directly: its transition, its message, and one
    delivery row per channel, sent or failed as it went. Returns the notification id."""
    message = compose_monitor(event)
    notification = _notification(config, message, event.at)
    session.add(notification)
    session.flush()
    for channel, error in outcome.items():
        session.add(
            AlertDelivery(
                notification_id=notification.id,
                channel=channel,
                status="failed" if error else "sent",
                attempts=1,
                next_attempt_at=event.at,
                claimed_at=event.at,
                sent_at=None if error else event.at,
                last_error=error,
            )
        )
    session.add(_transition(event, int(notification.id)))
    return int(notification.id)


def queue_monitor_message(session: Session, config: Config, message: Message, at: datetime) -> int:
    """A message of the monitor itself (no account: a monitor alert, the digest) stored
    and queued on every channel that takes the monitor's messages. Returns its id."""
    return enqueue(session, _notification(config, message, at), direct_channels(config), at)


def notify(session: Session, config: Config, event: MonitorEvent) -> int:
    """Store an event and queue it in the outbox (the database works: the sender delivers
    it). Returns the notification id."""
    notification_id = queue_monitor_message(session, config, compose_monitor(event), event.at)
    session.add(_transition(event, notification_id))
    return notification_id


def last_kind(sessions: sessionmaker[Session], subject: str) -> str | None:
    """The newest stored transition of a monitor subject: "fired" while it is firing."""
    with sessions() as session:
        return session.scalar(
            select(AlertTransition.kind)
            .where(AlertTransition.account_id.is_(None), AlertTransition.subject == subject)
            .order_by(AlertTransition.at.desc(), AlertTransition.id.desc())
            .limit(1)
        )
