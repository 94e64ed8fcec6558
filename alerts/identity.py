"""Stable identity for alert messages: a notification's ids are drawn once, when it is
written (uuid4: unique across databases, restores and restarts, unlike row ids that start
at 1 again in a fresh database), stored with it, and sent unchanged on every resend, so a
mail service or a webhook receiver recognises a repeat. The messages of one account
incident, from its first WARNING to its resolution, reply to the incident's first message
(In-Reply-To, References): one thread."""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from typing import Protocol

FALLBACK_DOMAIN = "marginwatch.invalid"  # RFC 2606: never a real host
_DOMAIN = re.compile(r"^(?=.{1,253}$)([A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}$")


class Identified(Protocol):
    message_id: str | None
    thread_id: str | None


def new_key() -> str:
    return str(uuid.uuid4())


def domain_of(sender: str | None) -> str:
    """The domain of the From address (a Message-ID's right-hand side), when it is a real
    one: "localhost" or a bare host name would say nothing about who sent it."""
    domain = (sender or "").rpartition("@")[2].strip().rstrip(">").lower()
    return domain if _DOMAIN.match(domain) else FALLBACK_DOMAIN


def message_id(key: str, domain: str) -> str:
    return f"<alert-{key}@{domain}>"


def new_message_id(sender: str | None) -> str:
    """A Message-ID for a message not stored as a notification (the channel test)."""
    return message_id(new_key(), domain_of(sender))


def thread_headers(message: str, thread: str | None) -> dict[str, str]:
    """Message-ID, and the replies' In-Reply-To and References to the thread's first
    message."""
    headers = {"Message-ID": message}
    if thread and thread != message:
        headers["In-Reply-To"] = thread
        headers["References"] = thread
    return headers


def email_headers(notification: Identified, domain: str = FALLBACK_DOMAIN) -> Mapping[str, str]:
    """The identity headers of a stored notification (one stored before message ids were,
    if any is still undelivered, gets a fresh one)."""
    message = notification.message_id or message_id(new_key(), domain)
    return thread_headers(message, notification.thread_id)
