"""The sender: delivers outbox rows (alert_deliveries). A row is claimed by compare-and-set
(pending -> sending), sent, then marked sent; temporary failures go back to pending with
a backoff, permanent ones are marked failed with their reason. A row left "sending" by a
crashed sender is taken up again after a lease: delivery is at least once, and the
email's Message-ID is the notification's, so a rare resend is recognisable as the same
message.

Each channel (the SMTP server, each webhook, each Telegram bot) drains its own rows on a
worker and a thread of its own: a channel that hangs delays only itself, for as long as
its timeout. Whatever goes wrong with one row — building the message, a bad address, an
exception nobody foresaw — ends as that row's recorded failure, never as a row stuck in
"sending"."""

from __future__ import annotations

import asyncio
import functools
import json
import logging
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any, TypeVar, cast

from sqlalchemy import ColumnElement, CursorResult, and_, not_, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from alerts.channels import Outgoing, channel_keys, send
from alerts.clean import one_line
from alerts.identity import domain_of, email_headers
from alerts.senders import DeliveryError, SmtpSession
from config.settings import Config
from connectors.errors import RetryPolicy
from store.schema import AlertDelivery, AlertNotification

log = logging.getLogger(__name__)
T = TypeVar("T")

# An exception that is no DeliveryError (a bug, a corrupt row) is retried this many times
# in all (it may have been a passing oddity), then the row fails with it as the reason.
UNEXPECTED_ATTEMPTS = 3


# After a temporary failure: 2.5-5 s, doubling up to 150-300 s (config.alerts.retry_*_seconds
# set it in the poller); the same jittered backoff as the exchange calls'.
DELIVERY_BACKOFF = RetryPolicy(5.0, 300.0)


def _claim(session: Session, row: AlertDelivery, now: datetime) -> bool:
    """Compare-and-set: only one sender wins the row."""
    claim = (
        update(AlertDelivery)
        .where(AlertDelivery.id == row.id, AlertDelivery.status == row.status, AlertDelivery.attempts == row.attempts)
        .values(status="sending", claimed_at=now, attempts=row.attempts + 1)
        .execution_options(synchronize_session=False)
    )
    result = cast(CursorResult[Any], session.execute(claim))  # a DML statement's result has the rowcount
    return result.rowcount == 1


def _of_channel(key: str) -> ColumnElement[bool]:
    """Rows of the channel `key`: "telegram:desk" holds "telegram:desk:<chat>" rows."""
    return or_(AlertDelivery.channel == key, AlertDelivery.channel.startswith(f"{key}:", autoescape=True))


def _outgoing(config: Config, notification: AlertNotification | None) -> Outgoing:
    if notification is None:
        raise ValueError("its notification is gone")
    sender = config.alerts.email.sender if config.alerts.email else None
    return Outgoing(
        subject=notification.subject_line,
        text=notification.body_text,
        html=notification.body_html,
        payload=json.loads(notification.payload),
        recipients=json.loads(notification.recipients),
        ack_id=int(notification.id),
        # issue 20: the ids drawn when the notification was written, the same on a resend
        headers=email_headers(notification, domain_of(sender)),
    )


def _failure(exc: Exception, attempts: int, now: datetime, backoff: RetryPolicy) -> tuple[str, dict[str, Any]]:
    """The row's outcome ("retry" or "failed") and the values that record it."""
    if isinstance(exc, DeliveryError):
        reason, temporary = str(exc), exc.temporary
    else:
        reason = f"could not be sent: {type(exc).__name__}: {exc}"
        temporary = attempts < UNEXPECTED_ATTEMPTS
    values: dict[str, Any] = {"last_error": one_line(reason, 1000)}
    if not temporary:
        return "failed", {**values, "status": "failed"}
    asked = getattr(exc, "retry_after", None)  # a server's Retry-After is honoured
    wait = timedelta(seconds=backoff.delay(attempts - 1, asked))  # `attempts` counts this one
    return "retry", {**values, "status": "pending", "next_attempt_at": now + wait}


def deliver_due(
    sessions: sessionmaker[Session],
    config: Config,
    now: Callable[[], datetime],
    backoff: RetryPolicy = DELIVERY_BACKOFF,
    limit: int = 100,
    channel: str | None = None,
    skip: Collection[str] = (),
) -> dict[str, int]:
    """Send what is due: every channel's rows, or only those of `channel` (a channel key),
    or those of no channel in `skip`. Returns counts by outcome: sent, retry, failed."""
    outcome = {"sent": 0, "retry": 0, "failed": 0}
    moment = now()
    lease = timedelta(seconds=config.alerts.delivery_lease_seconds)
    due = or_(
        and_(AlertDelivery.status == "pending", AlertDelivery.next_attempt_at <= moment),
        and_(AlertDelivery.status == "sending", AlertDelivery.claimed_at < moment - lease),
    )
    query = select(AlertDelivery).where(due)
    if channel is not None:
        query = query.where(_of_channel(channel))
    if skip:
        query = query.where(not_(or_(*(_of_channel(k) for k in skip))))
    with sessions() as session:
        rows = session.scalars(query.order_by(AlertDelivery.id).limit(limit)).all()
    smtp = SmtpSession()  # one connection for the round's emails
    try:
        _deliver_rows(sessions, config, now, backoff, rows, smtp, outcome)
    finally:
        smtp.close()
    return outcome


def _deliver_rows(
    sessions: sessionmaker[Session],
    config: Config,
    now: Callable[[], datetime],
    backoff: RetryPolicy,
    rows: Sequence[AlertDelivery],
    smtp: SmtpSession,
    outcome: dict[str, int],
) -> None:
    for row in rows:
        with sessions.begin() as session:
            if not _claim(session, row, now()):
                continue
            notification = session.get(AlertNotification, row.notification_id)
        attempts = row.attempts + 1
        try:
            send(config, row.channel, _outgoing(config, notification), smtp)
        except Exception as exc:  # every failure is the row's, recorded: never a stuck row
            kind, values = _failure(exc, attempts, now(), backoff)
            outcome[kind] += 1
            unforeseen = not isinstance(exc, DeliveryError)  # a bug or a corrupt row: its traceback helps
            log.warning(
                "alert %s via %s: %s", row.notification_id, row.channel, values["last_error"], exc_info=unforeseen
            )
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


async def _until(event: asyncio.Event, seconds: float) -> None:
    try:
        await asyncio.wait_for(event.wait(), timeout=seconds)
    except TimeoutError:
        pass


async def run_sender(
    sessions: sessionmaker[Session],
    config: Config,
    stop: asyncio.Event,
    wake: asyncio.Event,
    now: Callable[[], datetime],
    idle_seconds: float = 1.0,
    backoff: RetryPolicy = DELIVERY_BACKOFF,
) -> None:
    """Deliver until `stop`: at once when woken (a new notification), else every
    `idle_seconds` (retries falling due). One worker per channel, each on its own thread;
    rows of channels no longer configured are failed with that reason."""
    keys = channel_keys(config)
    pool = ThreadPoolExecutor(max_workers=len(keys) + 1, thread_name_prefix="alert-sender")
    loop = asyncio.get_running_loop()
    nudges = {key: asyncio.Event() for key in keys}

    async def in_pool(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return await loop.run_in_executor(pool, functools.partial(fn, *args, **kwargs))

    async def drain(**where: Any) -> None:
        try:
            await in_pool(deliver_due, sessions, config, now, backoff, **where)
        except Exception:  # the sender must outlive a bad moment (the database away); it is logged
            log.exception("alert delivery (%s) failed; retrying", where.get("channel") or "other channels")

    async def worker(key: str) -> None:
        nudge = nudges[key]
        while not stop.is_set():
            nudge.clear()
            await drain(channel=key)
            await _until(nudge, idle_seconds)
        await drain(channel=key)  # flush what is due

    workers = [asyncio.create_task(worker(key), name=f"alert-sender {key}") for key in keys]
    try:
        while not stop.is_set():
            wake.clear()
            for nudge in nudges.values():
                nudge.set()
            await drain(skip=keys)
            await _until(wake, idle_seconds)
        for nudge in nudges.values():
            nudge.set()
        await asyncio.gather(*workers)
    finally:
        for task in workers:
            task.cancel()
        pool.shutdown(wait=False)
