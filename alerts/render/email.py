"""The email: HTML and plain text from one Content, through Jinja2 templates
(alerts/render/templates). The HTML is built for a phone first: a viewport, one column at
most 600 px wide, positions stacked rather than tabled, long words breakable (<wbr>), the
level's colour on a banner that keeps its white text in dark mode, and every meaning in
the text too, for clients that strip CSS. The plain text says the same in the same order."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from markupsafe import Markup, escape

from alerts.render.content import Content
from alerts.rules import Level

if TYPE_CHECKING:
    from jinja2 import Environment

TEMPLATES = Path(__file__).parent / "templates"
COLOURS = {  # white text on each passes WCAG AA (4.5:1)
    "CRITICAL": "#b00020",
    "LIQUIDATED": "#7a0016",
    "WARNING": "#8a4b00",
    "RESOLVED": "#1b6e34",
    "OK": "#1b6e34",
    "TEST": "#34495e",
}
_LONG_WORD = re.compile(r"\S{25,}")
# a figure and its unit: "0.9 %", "0.3 σ", "100 USDT", "≈ 43", "5 min", "4 s"
_UNIT_SPACE = re.compile(r"(?<=\d) (?=[%σ]|[A-Z]{2,6}\b|(?:min|s|h|d)\b)|(?<=[≈<>]) (?=\d)")


def colour(headline: str, level: Level | None = None) -> str:
    return COLOURS.get(headline) or COLOURS.get(level.name if level is not None else "OK", COLOURS["OK"])


def breakable(text: str) -> Markup:
    """Escaped text whose long words may break anywhere (<wbr> every 20 characters), so
    that no word is wider than a phone even where CSS is stripped; a figure keeps its unit
    on its line (a no-break space: "0.9 %", "43.30 USDT")."""
    text = _UNIT_SPACE.sub("\u00a0", text)
    parts = []
    last = 0
    for match in _LONG_WORD.finditer(text):
        parts.append(escape(text[last : match.start()]))
        word = match.group(0)
        parts.append(Markup("<wbr>").join(escape(word[i : i + 20]) for i in range(0, len(word), 20)))
        last = match.end()
    parts.append(escape(text[last:]))
    return Markup("").join(parts)


@cache
def _environment() -> Environment:
    # imported when the first message is written, not when the poller starts
    from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

    # HTML is escaped everywhere; the plain-text part has nothing to escape (the senders
    # strip what a header must not hold)
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(enabled_extensions=("html", "html.j2"), default_for_string=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["breakable"] = breakable
    return env


def render_email(content: Content) -> tuple[str, str]:
    """(plain text, HTML) of one message."""
    values = {"c": content, "colour": colour(content.headline, content.level)}
    text = _environment().get_template("email.txt.j2").render(**values)
    body = _environment().get_template("email.html.j2").render(**values)
    return text, body
