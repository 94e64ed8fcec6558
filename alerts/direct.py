"""Sending without the database, for the monitor's own alerts (a poller that cannot write
the database, a silent poller, a watchdog that cannot read it): the outbox's channels
(alerts.channels.send_direct: every channel at once, a hanging one delays only itself),
with the outcome per channel returned to be recorded once the database is back."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from alerts.channels import all_recipients, row_channels
from alerts.channels import send_direct as send_now
from config.settings import Config

log = logging.getLogger(__name__)


def monitor_recipients(config: Config) -> list[str]:
    """Everyone who gets any account's email: the monitor's alerts concern every account."""
    return all_recipients(config) if config.alerts.email is not None else []


def direct_channels(config: Config) -> list[str]:
    """The channels send_direct uses, named as the outbox names them."""
    return row_channels(config)


def send_direct(
    config: Config, subject: str, text: str, html: str, payload: Mapping[str, Any], message_key: str = ""
) -> dict[str, str | None]:
    """Send through every channel now. Returns channel -> None (sent) or the error, in
    words; never raises (every exception is a failed channel)."""
    results = dict(send_now(config, subject, text, html, dict(payload), monitor_recipients(config), message_key))
    for channel, error in results.items():
        if error:
            log.warning("monitor alert via %s failed: %s", channel, error)
    return results
