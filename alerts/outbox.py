"""The sender: delivers outbox rows (alert_deliveries). A row is claimed by compare-and-set
(pending -> sending), sent, then marked sent; temporary failures go back to pending with
a backoff, permanent ones are marked failed with their reason. A row left "sending" by a
crashed sender is taken up again after a lease: delivery is at least once, and the
email's Message-ID is the notification's, so a rare resend is recognisable as the same
message."""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from alerts.senders import DeliveryError, PermanentDeliveryError, post_webhook, send_email
from config.settings import Config
from store.schema import AlertDelivery, AlertNotification

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Backoff:
    base_seconds: float = 5.0
    cap_seconds: float = 300.0

    def after(self, attempts: int) -> timedelta:
        ceiling = min(self.cap_seconds, self.base_seconds * 2 ** max(0, attempts - 1))
        return timedelta(seconds=random.uniform(ceiling / 2, ceiling))  # noqa: S311 - jitter


def _claim(session: Session, row: AlertDelivery, now: datetime) -> bool:
    """Compare-and-set: only one sender wins the row."""
    result = session.execute(
        update(AlertDelivery)
        .where(AlertDelivery.id == row.id, AlertDelivery.status == row.status, AlertDelivery.attempts == row.attempts)
        .values(status="sending", claimed_at=now, attempts=row.attempts + 1)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1


def _send(config: Config, channel: str, notification: AlertNotification) -> None:
    if channel == "email":
        if config.alerts.email is None:
            raise PermanentDeliveryError("email is no longer configured")
        send_email(
            config.alerts.email,
            json.loads(notification.recipients),
            notification.subject_line,
            notification.body_text,
            notification.body_html,
            message_key=f"marginwatch-alert-{notification.id}",
        )
        return
    name = channel.removeprefix("webhook:")
    hook = next((w for w in config.alerts.webhooks if w.name == name), None)
    if hook is None:
        raise PermanentDeliveryError(f"webhook {name} is no longer configured")
    post_webhook(hook, json.loads(notification.payload))


def deliver_due(
    sessions: sessionmaker[Session],
    config: Config,
    now: Callable[[], datetime],
    backoff: Backoff = Backoff(),
    limit: int = 100,
) -> dict[str, int]:
    """Send what is due. Returns counts by outcome: sent, retry, failed."""
    outcome = {"sent": 0, "retry": 0, "failed": 0}
    moment = now()
    with sessions() as session:
        due = session.scalars(
            select(AlertDelivery)
            .where(
                or_(
                    and_(AlertDelivery.status == "pending", AlertDelivery.next_attempt_at <= moment),
                    and_(
                        AlertDelivery.status == "sending",
                        AlertDelivery.claimed_at < moment - timedelta(seconds=config.alerts.delivery_lease_seconds),
                    ),
                )
            )
            .order_by(AlertDelivery.id)
            .limit(limit)
        ).all()
    for row in due:
        with sessions.begin() as session:
            if not _claim(session, row, now()):
                continue
            notification = session.get(AlertNotification, row.notification_id)
        try:
            _send(config, row.channel, notification)
        except DeliveryError as exc:
            values: dict[str, Any] = {"last_error": str(exc)[:1000]}
            if exc.temporary:
                values.update(status="pending", next_attempt_at=now() + backoff.after(row.attempts + 1))
                outcome["retry"] += 1
            else:
                values.update(status="failed")
                outcome["failed"] += 1
            log.warning("alert %s via %s: %s", row.notification_id, row.channel, exc)
        else:
            values = {"status": "sent", "sent_at": now(), "last_error": None}
            outcome["sent"] += 1
        with sessions.begin() as session:
            session.execute(
                update(AlertDelivery)
                .where(AlertDelivery.id == row.id)
                .values(**values)
                .execution_options(synchronize_session=False)
            )
    return outcome


async def run_sender(
    sessions: sessionmaker[Session],
    config: Config,
    stop: asyncio.Event,
    wake: asyncio.Event,
    now: Callable[[], datetime],
    idle_seconds: float = 1.0,
    backoff: Backoff = Backoff(),
) -> None:
    """Deliver until `stop`: at once when woken (a new notification), else every
    `idle_seconds` (retries falling due)."""
    while not stop.is_set():
        wake.clear()
        try:
            await asyncio.to_thread(deliver_due, sessions, config, now, backoff)
        except Exception:  # the sender must outlive a bad moment; it is logged
            log.exception("alert delivery failed; retrying")
        try:
            await asyncio.wait_for(wake.wait(), timeout=idle_seconds)
        except TimeoutError:
            pass
    await asyncio.to_thread(deliver_due, sessions, config, now, backoff)  # flush what is due
