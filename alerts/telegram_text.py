"""Text for Telegram's HTML parse mode: values escaped (<, >, &), messages within the
Bot API's 4096 characters. No Telegram client here: importing it costs nothing."""

from __future__ import annotations

import html

from alerts.clean import one_line

MESSAGE_LIMIT = 4096  # characters of one Bot API message


def escape(value: object, limit: int = 300) -> str:
    """One value on one line, escaped for Telegram HTML."""
    return html.escape(one_line(str(value), limit), quote=False)


def alert_html(subject: str, text: str, ack_id: int | None = None) -> str:
    """An alert as Telegram HTML: the subject in bold, the plain-text body (remedy
    included), and how to stop its repeats. Every value is escaped; at most 4096 chars."""
    footer = f"\n\n<i>/ack {ack_id} stops the repeats of this alert until it changes level.</i>" if ack_id else ""
    head = f"<b>{escape(subject)}</b>\n\n"
    body = text.strip()
    while True:
        message = head + html.escape(body, quote=False) + footer
        if len(message) <= MESSAGE_LIMIT:
            return message
        # escaping can lengthen the text (& -> &amp;): cut the body until the whole fits
        body = body[: max(0, len(body) - (len(message) - MESSAGE_LIMIT) - 1)].rstrip() + "…"
