"""The channels an alert goes out through, and one message sent on one of them.

A channel is "email" (the SMTP server), "webhook:<name>" or "telegram:<name>"; an outbox
row names its channel, and a Telegram row also its chat ("telegram:<name>:<chat id>"), so
that a chat that refuses the bot fails alone. `send_direct` sends without the outbox:
for when the database itself is down."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from alerts.clean import one_line
from alerts.senders import DeliveryError, PermanentDeliveryError, SmtpSession, post_webhook, send_email
from alerts.telegram_text import alert_html
from config.settings import Config
from store.schema import AlertDelivery, AlertNotification


@dataclass(frozen=True)
class Outgoing:
    """One message as every channel needs it. `key` makes the email's Message-ID (the
    same on a resend); `ack_id` is the notification Telegram's /ack names."""

    subject: str
    text: str
    html: str
    payload: dict[str, Any]
    recipients: Sequence[str] = field(default_factory=list)
    key: str = ""
    ack_id: int | None = None
    headers: Mapping[str, str] | None = None  # a stored notification's identity (alerts.identity)


def channel_keys(config: Config) -> list[str]:
    """Each configured channel: one sender worker each."""
    return (
        (["email"] if config.alerts.email else [])
        + [f"webhook:{w.name}" for w in config.alerts.webhooks]
        + [f"telegram:{t.name}" for t in config.alerts.telegram]
    )


def row_channels(config: Config) -> list[str]:
    """The outbox rows one notification gets: one per channel, one per Telegram chat."""
    rows = []
    for key in channel_keys(config):
        if key.startswith("telegram:"):
            bot = next(t for t in config.alerts.telegram if f"telegram:{t.name}" == key)
            rows += [f"{key}:{chat}" for chat in bot.chat_ids]
        else:
            rows.append(key)
    return rows


def channel_key(row_channel: str) -> str:
    """The worker a row belongs to: "telegram:desk:42" -> "telegram:desk"."""
    if row_channel.startswith("telegram:"):
        return ":".join(row_channel.split(":")[:2])
    return row_channel


def send(config: Config, channel: str, message: Outgoing, smtp: SmtpSession | None = None) -> None:
    """Send `message` on the row channel `channel`; raises a DeliveryError. `smtp`: an
    SMTP connection kept across the emails of one delivery round."""
    if channel == "email":
        if config.alerts.email is None:
            raise PermanentDeliveryError("email is no longer configured")
        send_email(
            config.alerts.email,
            message.recipients,
            message.subject,
            message.text,
            message.html,
            message.headers,
            message.key,
            session=smtp,
        )
        return
    if channel.startswith("webhook:"):
        name = channel.removeprefix("webhook:")
        hook = next((w for w in config.alerts.webhooks if w.name == name), None)
        if hook is None:
            raise PermanentDeliveryError(f"webhook {name} is no longer configured")
        post_webhook(hook, message.payload)
        return
    if channel.startswith("telegram:"):
        _, name, chat = [*channel.split(":", 2), ""][:3]
        bot = next((t for t in config.alerts.telegram if t.name == name), None)
        if bot is None:
            raise PermanentDeliveryError(f"telegram {name} is no longer configured")
        if not chat.lstrip("-").isdigit() or int(chat) not in bot.chat_ids:
            raise PermanentDeliveryError(f"telegram {name}: chat {chat or '(none)'} is no longer in chat_ids")
        from alerts.telegram import send_alert  # the Telegram client loads only where it is used (0.5 s)

        send_alert(bot, int(chat), alert_html(message.subject, message.text, _ackable(message)))
        return
    raise PermanentDeliveryError(f"unknown channel {one_line(channel, 80)!r}")


def _ackable(message: Outgoing) -> int | None:
    """The id /ack takes, for a message about a level that can repeat (not a resolution,
    not a liquidation: an event)."""
    changes = message.payload.get("changes", [])
    if message.payload.get("level") not in ("WARNING", "CRITICAL"):
        return None
    if changes and all(c.get("kind") == "liquidated" for c in changes):
        return None
    return message.ack_id


def all_recipients(config: Config) -> list[str]:
    """Every address any account's alerts go to, and the default list."""
    email = config.alerts.email
    return sorted({r for a in config.accounts for r in config.recipients(a)} | set(email.to if email else []))


def send_direct(
    config: Config,
    subject: str,
    text: str,
    html: str,
    payload: dict[str, Any],
    recipients: Sequence[str] | None = None,
    key: str = "",
) -> list[tuple[str, str | None]]:
    """Send one message at once through every configured channel, without the database
    (for when it is down, and for `alerts test`): all channels at the same time, each
    bounded by its own timeout. Blocking: from async code, call it in a thread. Returns
    (channel, None) for each channel that delivered and (channel, reason) for each that
    did not; never raises for a channel's failure. Email goes to `recipients`, by default
    everyone any account's alerts go to; Telegram to every configured chat. `key` makes the
    email's Message-ID (the same for every send of one message)."""
    message = Outgoing(
        subject, text, html, payload, list(recipients) if recipients is not None else all_recipients(config), key
    )
    channels = row_channels(config)
    if not channels:
        return []

    def attempt(channel: str) -> str | None:
        try:
            send(config, channel, message)
        except DeliveryError as exc:
            return one_line(str(exc), 500)
        except Exception as exc:  # a failure to report, not to raise: the other channels go on
            return one_line(f"{type(exc).__name__}: {exc}", 500)
        return None

    with ThreadPoolExecutor(max_workers=len(channels), thread_name_prefix="alert-direct") as pool:
        outcomes = list(pool.map(attempt, channels))
    return list(zip(channels, outcomes, strict=True))


async def run_bots(sessions: sessionmaker[Session], config: Config, stop: asyncio.Event) -> None:
    """Every configured Telegram bot answering its commands, until `stop`; returns at once
    when there is none."""
    bots = [b for b in config.alerts.telegram if b.commands]
    if not bots:
        return
    from alerts.telegram_bot import run_commands

    await asyncio.gather(*(run_commands(sessions, config, b, stop) for b in bots))


def enqueue(session: Session, notification: AlertNotification, channels: Sequence[str], at: datetime) -> int:
    """Store `notification` and one pending outbox row per channel, due `at`, in the
    caller's transaction. Returns the notification's id."""
    session.add(notification)
    session.flush()
    for channel in channels:
        session.add(
            AlertDelivery(
                notification_id=notification.id, channel=channel, status="pending", attempts=0, next_attempt_at=at
            )
        )
    return int(notification.id)
