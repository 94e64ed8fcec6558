"""Text from an exchange or a config, made inert wherever the dashboard shows it.

Streamlit renders the body of st.markdown, st.error/warning/info/success, st.caption and
metric labels as Markdown: a link there is clickable and an image is fetched by the
browser (a beacon saying when and where the page is viewed). Plotly reads a few HTML tags
in chart text, `<a href>` among them. Everything an exchange or a config says (errors,
symbols, names, notes that quote them) goes through `md` or `svg` before it reaches one of
those; tables (st.dataframe) show their cells as plain text already.
"""

from __future__ import annotations

import html
import re

# Every ASCII punctuation character may be backslash-escaped in CommonMark, and an escaped
# one is a literal: no link, image, emphasis, code, HTML, autolink (`https\://`, `www\.`),
# math ($), directive (:red[...]) or table can start from it.
_PUNCTUATION = re.compile(r"([!-/:-@\[-`{-~])")
# Characters with no business in a message that would change how a line is read: control
# characters (a carriage return hides what precedes it), bidirectional overrides (a
# reversed link target) and zero-width ones.
_INVISIBLE = re.compile("[\x00-\x08\x0b-\x1f\x7f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]")
# GFM's autolink literals: a scheme's "://", "www.", and the "@" of an address
_AUTOLINK = re.compile(r"(?i):(?=//)|www(?=\.)|@")
_WORD_JOINER = "\u2060"


def _join(match: re.Match[str]) -> str:
    return match.group(0) + _WORD_JOINER


def plain(text: object) -> str:
    """`text` as a string without control, bidirectional or zero-width characters."""
    return _INVISIBLE.sub("\N{REPLACEMENT CHARACTER}", str(text))


def md(text: object) -> str:
    """`text` for a Markdown context, shown as it is: every punctuation character escaped,
    each line break kept as a line break, and an invisible word joiner put into what GFM
    would turn into a link by itself (`https://`, `www.`, `name@host`): Streamlit's
    Markdown finds those in the text after the escapes are read, so escaping alone does
    not stop them."""
    lines = plain(str(text).replace("\r\n", "\n")).split("\n")
    return "  \n".join(_PUNCTUATION.sub(r"\\\1", _AUTOLINK.sub(_join, line)) for line in lines)


def svg(text: object) -> str:
    """`text` for Plotly's chart text (hover labels, annotations, axis titles)."""
    return html.escape(plain(text), quote=False)
