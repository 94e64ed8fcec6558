"""Delivery channels: email over SMTP (stdlib smtplib + email) and webhooks (JSON POST,
Slack and Discord incoming-webhook shapes); Telegram is alerts.telegram. Each raises
TemporaryDeliveryError (retry later: connection refused, timeouts, 4xx greylisting, HTTP
429/5xx) or PermanentDeliveryError (stored and shown: 5xx mailbox or auth refusals, HTTP
4xx, a malformed address or URL).

Header values are hostile text (a subject carries the exchange's last error, a liquidated
symbol): they are cut to one line without control characters before they reach a header."""

from __future__ import annotations

import http.client
import json
import os
import smtplib
import ssl
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from email.message import EmailMessage
from email.utils import formatdate, parseaddr
from typing import Any

from alerts import identity
from alerts.clean import has_controls, header_value, one_line
from alerts.render import webhooks
from config import redaction
from config.settings import BARE_ADDRESS, EmailConfig, WebhookConfig


class DeliveryError(Exception):
    temporary = True


class TemporaryDeliveryError(DeliveryError):
    temporary = True

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after  # seconds the server asked us to wait, if it did


class PermanentDeliveryError(DeliveryError):
    temporary = False


def build_email(
    config: EmailConfig,
    recipients: Sequence[str],
    subject: str,
    text: str,
    html_body: str,
    headers: Mapping[str, str] | None = None,
    message_key: str = "",
) -> EmailMessage:
    """A multipart/alternative message. `headers`: its identity (Message-ID, and a reply's
    In-Reply-To/References: alerts.identity), stored with the notification, so a resend
    after a crash carries the same id and mail systems fold the duplicate; without them,
    `message_key` makes the Message-ID (a message sent without the database)."""
    sender = _checked_address(config.sender, "from", display_name=True)
    to = [_checked_address(r, "recipient") for r in recipients]
    message = EmailMessage()
    message["Subject"] = header_value(subject)
    message["From"] = sender
    message["To"] = ", ".join(to)
    message["Date"] = formatdate(localtime=False)
    # --- message identity and thread (issue 20: alerts.identity builds them) ---
    if headers is None:
        domain = identity.domain_of(parseaddr(sender)[1])
        key = (
            identity.message_id(header_value(message_key, 120), domain)
            if message_key
            else identity.new_message_id(sender)
        )
        headers = identity.thread_headers(key, None)
    for name, value in headers.items():
        message[name] = header_value(value, 998)
    # --- end of message identity ---
    message.set_content(text)
    message.add_alternative(html_body, subtype="html")
    return message


def _checked_address(value: str, what: str, display_name: bool = False) -> str:
    """The config refuses bad addresses; a stored notification's recipients are checked
    again (they were written by an older config): a bad one fails the row, never a header."""
    address = parseaddr(value)[1] if display_name else value
    if has_controls(value) or not BARE_ADDRESS.match(address):
        raise PermanentDeliveryError(f"invalid {what} address {one_line(value, 80)!r}")
    return value


class SmtpSession:
    """One SMTP connection kept open across the emails of one delivery round: a cascade's
    alerts pay one connect (and TLS, and login), not one each. Any failure drops the
    connection; a kept one that the server had closed meanwhile is replaced once."""

    def __init__(self) -> None:
        self.client: smtplib.SMTP | None = None

    def send(self, connect: Callable[[], smtplib.SMTP], message: EmailMessage, recipients: list[str]) -> dict:
        if self.client is not None:
            try:
                return self.client.send_message(message, to_addrs=recipients)
            except (smtplib.SMTPServerDisconnected, OSError):
                self.close()  # gone while kept: once more, on a fresh connection
            except BaseException:
                self.close()
                raise
        self.client = connect()
        try:
            return self.client.send_message(message, to_addrs=recipients)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        client, self.client = self.client, None
        if client is None:
            return
        try:
            client.quit()
        except (smtplib.SMTPException, OSError):
            client.close()


def send_email(
    config: EmailConfig,
    recipients: Sequence[str],
    subject: str,
    text: str,
    html_body: str,
    headers: Mapping[str, str] | None = None,
    message_key: str = "",
    session: SmtpSession | None = None,
) -> None:
    """Send one email; with `session`, on its kept connection (opened on first use)."""
    if not recipients:
        raise PermanentDeliveryError("no recipients configured for this account")
    message = build_email(config, recipients, subject, text, html_body, headers, message_key)
    username = os.environ.get(config.username_env) if config.username_env else None
    password = os.environ.get(config.password_env) if config.password_env else None
    redaction.register([password])  # smtplib logs the AUTH exchange at debuglevel

    def connect() -> smtplib.SMTP:
        if config.security == "ssl":
            client: smtplib.SMTP = smtplib.SMTP_SSL(
                config.host, config.port, timeout=config.timeout_seconds, context=ssl.create_default_context()
            )
        else:
            client = smtplib.SMTP(config.host, config.port, timeout=config.timeout_seconds)
        try:
            if config.security == "starttls":
                client.starttls(context=ssl.create_default_context())
            if username:
                client.login(username, password or "")
        except BaseException:
            client.close()
            raise
        return client

    try:
        if session is None:
            with connect() as client:
                refused = client.send_message(message, to_addrs=list(recipients))
        else:
            refused = session.send(connect, message, list(recipients))
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
    except (UnicodeError, ValueError) as exc:  # a host or address the server cannot take
        raise PermanentDeliveryError(f"SMTP: cannot send: {type(exc).__name__}: {exc}") from None


def _text(value: bytes | str) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def webhook_body(config: WebhookConfig, payload: dict[str, Any]) -> dict[str, Any]:
    """Slack Block Kit, Discord embeds, or the JSON payload itself (alerts.render.webhooks)."""
    return webhooks.webhook_body(config.format, payload)


def post_webhook(config: WebhookConfig, payload: dict[str, Any]) -> None:
    url = os.environ.get(config.url_env)
    if not url:
        raise PermanentDeliveryError(f"webhook {config.name}: variable {config.url_env} not set")
    redaction.register([url])  # the URL grants posting: a secret
    if has_controls(url) or not url.startswith(("http://", "https://")):
        raise PermanentDeliveryError(f"webhook {config.name}: {config.url_env} is not an http(s) URL on one line")
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
        if exc.code == 429 or exc.code >= 500:
            raise TemporaryDeliveryError(
                f"webhook {config.name}: HTTP {exc.code}", retry_after=_retry_after(exc.headers.get("Retry-After"))
            ) from None
        raise PermanentDeliveryError(f"webhook {config.name}: HTTP {exc.code}") from None
    except http.client.InvalidURL as exc:
        raise PermanentDeliveryError(f"webhook {config.name}: invalid URL ({exc})") from None
    except (urllib.error.URLError, TimeoutError, OSError, http.client.HTTPException) as exc:
        # URLError and timeouts are OSErrors; HTTPException: the answer broke off midway
        reason = getattr(exc, "reason", exc)
        raise TemporaryDeliveryError(f"webhook {config.name}: unreachable ({type(exc).__name__}: {reason})") from None


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:  # an HTTP date: the backoff decides
        return None
