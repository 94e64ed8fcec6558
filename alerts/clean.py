"""Hostile text made safe for one line: email headers, terminal output, log lines.

Text an exchange, a config or a user controls may carry CR/LF (header injection: a
multi-line nginx 502 page as the last error), ANSI escapes (a terminal rewritten by a
symbol name) or other control characters. Every control character, and the Unicode line
and paragraph separators, become a space; runs of whitespace collapse to one."""

from __future__ import annotations

import re

# C0 controls, DEL, C1 controls (NEL included), and U+2028/U+2029 (line/paragraph separators)
_CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")
_SPACES = re.compile(r" {2,}")

HEADER_LIMIT = 200  # characters of a subject: mail clients show about 80; RFC 5322 lines stop at 998


def has_controls(text: str) -> bool:
    return _CONTROLS.search(text) is not None


def one_line(text: str, limit: int | None = None) -> str:
    """`text` without control characters, on one line, shortened to `limit` characters
    (the last one an ellipsis) when given."""
    flat = _SPACES.sub(" ", _CONTROLS.sub(" ", text)).strip()
    if limit is not None and len(flat) > limit:
        return flat[: max(0, limit - 1)].rstrip() + "…"
    return flat


def header_value(text: str, limit: int = HEADER_LIMIT) -> str:
    """A value for an email header: one line, at most `limit` characters."""
    return one_line(text, limit)
