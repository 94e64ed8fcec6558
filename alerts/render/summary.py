"""Text from an exchange, a connector or a config is hostile and long: an HTML error page,
a stack of "refused: ... refused", ISO times with microseconds, control characters. Each is
summarised to one short line here; escaping for each channel is the channel's job (the
templates autoescape HTML, Slack and Discord escape their own syntax)."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime

LIMIT = 160

_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)
_HEAD = re.compile(r"<(script|style|head)[^>]*>.*?</\1\s*>", re.IGNORECASE | re.DOTALL)
_TAG = re.compile(r"</?[A-Za-z!?][^<>]{0,500}>")  # a tag, a comment or a doctype; not "a < b > c"
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u200b-\u200f\u202a-\u202e\u2066-\u2069]")
_ISO = re.compile(r"\b(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}:\d{2})(?:\.\d+)?(Z|[+-]\d{2}:?\d{2})?")
_SPACE = re.compile(r"\s+")
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_WORD_TWICE = re.compile(r"\b(\w+)(?: \1\b)+")


def _iso(match: re.Match[str]) -> str:
    """An ISO time to "2026-12-01 13:02:11 UTC" (to the second, in UTC)."""
    day, time, zone = match.groups()
    if zone in (None, "Z"):
        return f"{day} {time} UTC"
    try:
        moment = datetime.fromisoformat(f"{day}T{time}{zone}").astimezone(UTC)
    except ValueError:
        return f"{day} {time}"
    return f"{moment:%Y-%m-%d %H:%M:%S} UTC"


def one_line(text: str | None, limit: int = LIMIT) -> str:
    """`text` as one readable line of at most `limit` characters: an HTML page becomes its
    title (or its text), times lose their microseconds, control characters and repeated
    clauses go, and a long remainder ends in "…"."""
    if not text:
        return ""
    text = str(text)
    if _TAG.search(text):
        title = _TITLE.search(text)
        if title and title.group(1).strip():
            before = text[: title.start()].split("<", 1)[0]
            text = f"{before} {title.group(1)}"
        text = _TAG.sub(" ", _HEAD.sub(" ", text))
        text = html.unescape(text)
    text = _CONTROL.sub(" ", _ANSI.sub("", text))
    text = _ISO.sub(_iso, text)
    text = _WORD_TWICE.sub(r"\1", _SPACE.sub(" ", text).strip())
    text = _drop_repeats(text)
    if len(text) > limit:
        text = text[: limit - 1].rstrip() + "…"
    return text


def _drop_repeats(text: str) -> str:
    """ "refused: key can withdraw: refused" -> "refused: key can withdraw": a clause
    (between ": " or "; ") said once already is not said again."""
    parts = re.split(r"(: |; )", text)
    seen: set[str] = set()
    kept: list[str] = []
    for i in range(0, len(parts), 2):
        clause = parts[i].strip()
        key = clause.lower().rstrip(".")
        if not clause or key in seen:
            continue
        seen.add(key)
        if kept:
            kept.append(parts[i - 1])
        kept.append(clause)
    return "".join(kept)
