"""No credential is ever written to a log, whatever a library logs and at whatever level.

`install()` puts a redacting step into the creation of every log record of the process
(`logging.setLogRecordFactory`), so it covers every logger that can see a request — ccxt's
(which logs each request's headers, API key included, at DEBUG), aiohttp's, urllib3's,
ours — without knowing their names, and handlers added later too; and it adds a redacting
filter to the loggers known to log requests, in case a library replaces the factory. A record's message is
formatted once, then two things are taken out of it:

- every credential value this process has resolved (`register`): an API key, a secret, a
  passphrase, a webhook URL, an SMTP password, wherever they appear;
- whatever follows a credential-like name (`X-MBX-APIKEY: ...`, `"secret": "..."`,
  `signature=...`, `OK-ACCESS-SIGN`, `Authorization: Bearer ...`): signatures are derived
  from the secret and never registered, and a key not yet registered must not pass either.

An exception attached to a record is formatted and redacted the same way (`exc_text`), so
a traceback whose message quotes a signed URL is written without it.
"""

from __future__ import annotations

import logging
import re
import threading
import traceback
from collections.abc import Iterable
from typing import Any

MASK = "***"
_MIN_SECRET_LENGTH = 4  # shorter values would mask ordinary words

# A credential-like name, then ":" or "=" (with quotes and spaces as JSON, dict reprs,
# headers and query strings put them), then the value up to the next delimiter.
_NAMES = (
    r"api[-_ ]?key|apikey|api[-_ ]?secret|secret(?:[-_ ]?key)?|passphrase|password|passwd|private[-_ ]?key"
    r"|signature|sign|x-mbx-apikey|x-bapi-api-key|x-bapi-sign|ok-access-key|ok-access-sign"
    r"|ok-access-passphrase|authorization|x-api-key|access[-_ ]?token|refresh[-_ ]?token|token"
)
_NAMED_VALUE = re.compile(
    rf"(?i)(?<![A-Za-z0-9])(?P<name>{_NAMES})(?P<sep>[\"']?\s*[:=]\s*[\"']?(?:Bearer\s+|Basic\s+)?)"
    r"(?P<value>[^\s\"'&,;}\]\)]+)"
)

_lock = threading.Lock()
_secrets: set[str] = set()
_pattern: re.Pattern[str] | None = None
_installed = False


def register(values: Iterable[str | None]) -> None:
    """Remember credential values so that `redact` masks them wherever they appear."""
    global _pattern
    fresh = {v for v in values if isinstance(v, str) and len(v) >= _MIN_SECRET_LENGTH}
    with _lock:
        if fresh <= _secrets:
            return
        _secrets.update(fresh)
        ordered = sorted(_secrets, key=len, reverse=True)  # a longer secret before its prefix
        _pattern = re.compile("|".join(re.escape(s) for s in ordered))


def redact(text: str) -> str:
    """`text` with every registered credential and every credential-like value masked."""
    pattern = _pattern
    if pattern is not None:
        text = pattern.sub(MASK, text)
    return _NAMED_VALUE.sub(lambda m: m["name"] + m["sep"] + MASK, text)


def _redact_record(record: logging.LogRecord) -> logging.LogRecord:
    try:
        message = record.getMessage()
    except Exception:  # a malformed call (wrong args) is logged as it was given
        message = f"{record.msg} {record.args}"
    record.msg, record.args = redact(message), ()
    if record.exc_info and record.exc_info[1] is not None and not record.exc_text:
        record.exc_text = redact("".join(traceback.format_exception(*record.exc_info)).rstrip("\n"))
    if record.stack_info:
        record.stack_info = redact(record.stack_info)
    return record


class RedactingFilter(logging.Filter):
    """The same redaction as a filter, on the loggers known to see requests: it still
    holds if some library later replaces the record factory instead of wrapping it."""

    def filter(self, record: logging.LogRecord) -> bool:
        _redact_record(record)
        return True


# every logger known to log a request, its headers or its URL
REQUEST_LOGGERS = (
    "ccxt",
    "ccxt.base.exchange",
    "ccxt.async_support.base.exchange",
    "aiohttp.client",
    "aiohttp.internal",
    "aiohttp.access",
    "urllib3.connectionpool",
    "websockets.client",
    "uvicorn.access",
    "uvicorn.error",
)


def install() -> None:
    """Redact every log record of this process from now on (idempotent)."""
    global _installed
    with _lock:
        if _installed:
            return
        previous = logging.getLogRecordFactory()

        def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
            return _redact_record(previous(*args, **kwargs))

        logging.setLogRecordFactory(factory)
        for name in REQUEST_LOGGERS:
            logging.getLogger(name).addFilter(RedactingFilter())
        _installed = True
