"""Sending without the database: for the monitor's own alerts (a poller that cannot write
the database, a silent poller, a watchdog that cannot read it), when the outbox cannot be
used. Every configured channel that needs no database gets the message at once, all
channels side by side (a hanging one delays only itself, bounded by its timeout); the
outcome per channel is returned, to be recorded once the database is back.

Temporary: the delivery work (issue 15, parts 1-2) plans `alerts.outbox.send_direct`
over the same channels (Telegram included); this module is to be folded into it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from alerts.senders import post_webhook, send_email
from config.settings import Config

log = logging.getLogger(__name__)


def monitor_recipients(config: Config) -> list[str]:
    """Everyone who gets any account's email: the monitor's alerts concern every account."""
    if config.alerts.email is None:
        return []
    everyone = set(config.alerts.email.to)
    for account in config.accounts:
        everyone |= set(config.recipients(account))
    return sorted(everyone)


def direct_channels(config: Config) -> list[str]:
    """The channels send_direct uses, named as the outbox names them."""
    return (["email"] if config.alerts.email else []) + [f"webhook:{w.name}" for w in config.alerts.webhooks]


def send_direct(
    config: Config, subject: str, text: str, html: str, payload: Mapping[str, Any], message_key: str = ""
) -> dict[str, str | None]:
    """Send through every channel now. Returns channel -> None (sent) or the error, in
    words; never raises (every exception is a failed channel)."""
    sends: dict[str, Callable[[], None]] = {}
    email = config.alerts.email
    if email is not None:
        recipients = monitor_recipients(config)
        sends["email"] = lambda: send_email(email, recipients, subject, text, html, message_key=message_key)
    for hook in config.alerts.webhooks:
        sends[f"webhook:{hook.name}"] = lambda hook=hook: post_webhook(hook, dict(payload))
    if not sends:
        return {}

    def attempt(send: Callable[[], None]) -> str | None:
        try:
            send()
        except Exception as exc:  # every failure is an outcome to record, whatever its type
            return f"{type(exc).__name__}: {exc}"[:1000]
        return None

    with ThreadPoolExecutor(max_workers=len(sends), thread_name_prefix="marginwatch-direct") as pool:
        futures = {channel: pool.submit(attempt, send) for channel, send in sends.items()}
        results = {channel: future.result() for channel, future in futures.items()}
    for channel, error in results.items():
        if error:
            log.warning("monitor alert via %s failed: %s", channel, error)
    return results
