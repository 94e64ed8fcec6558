"""Delivery channels: email over SMTP (stdlib smtplib + email) and webhooks (JSON POST,
Slack and Discord incoming-webhook shapes). Each raises TemporaryDeliveryError (retry
later: connection refused, timeouts, 4xx greylisting, HTTP 429/5xx) or
PermanentDeliveryError (stored and shown: 5xx mailbox or auth refusals, HTTP 4xx)."""

from __future__ import annotations

import json
import os
import smtplib
import ssl
import urllib.error
import urllib.request
from collections.abc import Sequence
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any

from config import redaction
from config.settings import EmailConfig, WebhookConfig


class DeliveryError(Exception):
    temporary = True


class TemporaryDeliveryError(DeliveryError):
    temporary = True


class PermanentDeliveryError(DeliveryError):
    temporary = False


def build_email(
    config: EmailConfig, recipients: Sequence[str], subject: str, text: str, html_body: str, message_key: str
) -> EmailMessage:
    """A multipart/alternative message. Its Message-ID derives from the notification, so a
    resend after a crash carries the same id and mail systems can fold the duplicate."""
    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = config.sender
    message["To"] = ", ".join(recipients)
    message["Date"] = formatdate(localtime=False)
    domain = config.sender.rpartition("@")[2] or "marginwatch"
    message["Message-ID"] = f"<{message_key}@{domain}>" if message_key else make_msgid()
    message.set_content(text)
    message.add_alternative(html_body, subtype="html")
    return message


def send_email(
    config: EmailConfig, recipients: Sequence[str], subject: str, text: str, html_body: str, message_key: str = ""
) -> None:
    if not recipients:
        raise PermanentDeliveryError("no recipients configured for this account")
    message = build_email(config, recipients, subject, text, html_body, message_key)
    username = os.environ.get(config.username_env) if config.username_env else None
    password = os.environ.get(config.password_env) if config.password_env else None
    redaction.register([password])  # smtplib logs the AUTH exchange at debuglevel
    try:
        if config.security == "ssl":
            client: smtplib.SMTP = smtplib.SMTP_SSL(
                config.host, config.port, timeout=config.timeout_seconds, context=ssl.create_default_context()
            )
        else:
            client = smtplib.SMTP(config.host, config.port, timeout=config.timeout_seconds)
        with client:
            if config.security == "starttls":
                client.starttls(context=ssl.create_default_context())
            if username:
                client.login(username, password or "")
            refused = client.send_message(message, to_addrs=list(recipients))
        if refused:
            codes = {code for code, _ in refused.values()}
            error = f"refused recipients: {', '.join(sorted(refused))}"
            if all(400 <= c < 500 for c in codes):
                raise TemporaryDeliveryError(error)
            raise PermanentDeliveryError(error)
    except DeliveryError:
        raise
    except smtplib.SMTPRecipientsRefused as exc:
        codes = {code for code, _ in exc.recipients.values()}
        kind = TemporaryDeliveryError if all(400 <= c < 500 for c in codes) else PermanentDeliveryError
        raise kind(f"recipients refused: {', '.join(sorted(exc.recipients))}") from None
    except smtplib.SMTPResponseException as exc:
        kind = TemporaryDeliveryError if 400 <= exc.smtp_code < 500 else PermanentDeliveryError
        raise kind(f"SMTP {exc.smtp_code}: {_text(exc.smtp_error)}") from None
    except (smtplib.SMTPServerDisconnected, OSError) as exc:  # refused, reset, timed out
        raise TemporaryDeliveryError(f"SMTP server unreachable: {type(exc).__name__}: {exc}") from None
    except smtplib.SMTPException as exc:
        raise PermanentDeliveryError(f"SMTP error: {exc}") from None


def _text(value: bytes | str) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def webhook_body(config: WebhookConfig, payload: dict[str, Any]) -> dict[str, Any]:
    """Slack wants {"text"}, Discord {"content"} (2,000 characters at most)."""
    summary = (
        f"*{payload['subject']}*\n"
        + "\n".join(f"• {c['rule']} {c['kind']} {c['level']}" for c in payload.get("changes", []))
        + ("\n" + "\n".join(payload.get("remedy", [])) if payload.get("remedy") else "")
    )
    if config.format == "slack":
        return {"text": summary}
    if config.format == "discord":
        return {"content": summary.replace("*", "**")[:2000]}
    return payload


def post_webhook(config: WebhookConfig, payload: dict[str, Any]) -> None:
    url = os.environ.get(config.url_env)
    if not url:
        raise PermanentDeliveryError(f"webhook {config.name}: variable {config.url_env} not set")
    redaction.register([url])  # the URL grants posting: a secret
    data = json.dumps(webhook_body(config, payload)).encode()
    request = urllib.request.Request(  # noqa: S310 - the configured webhook's URL
        url,
        data=data,
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=config.timeout_seconds) as response:  # noqa: S310
            response.read()
    except urllib.error.HTTPError as exc:
        kind = TemporaryDeliveryError if exc.code == 429 or exc.code >= 500 else PermanentDeliveryError
        raise kind(f"webhook {config.name}: HTTP {exc.code}") from None
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise TemporaryDeliveryError(f"webhook {config.name}: unreachable ({reason})") from None
