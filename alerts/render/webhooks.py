"""Webhook bodies from an alert's JSON payload (alerts.render.payload): Slack Block Kit with
the level's colour, the remedy and the top positions; Discord embeds; the payload itself for
`json`. Text from an exchange or a config is escaped for each: Slack reads <, > and & as its
link and mention syntax, Discord reads Markdown and @mentions."""

from __future__ import annotations

import re
from typing import Any

from alerts.render.email import colour

SLACK_HEADER = 150  # Block Kit: a header's plain_text
SLACK_SECTION = 3000  # a section's text
SLACK_FIELD = 2000  # each of a section's fields (at most 10)
SLACK_POSITIONS = 4
DISCORD_TITLE = 256
DISCORD_DESCRIPTION = 4096
DISCORD_FIELD_NAME = 256
DISCORD_FIELD_VALUE = 1024
DISCORD_FOOTER = 2048
DISCORD_CONTENT = 2000
DISCORD_FIELDS = 5
_DISCORD_MARKDOWN = re.compile(r"([\\*_~`|>\[\]])")


def webhook_body(fmt: str, payload: dict[str, Any]) -> dict[str, Any]:
    """The body a `fmt` webhook (slack, discord, json) receives for `payload`."""
    if fmt == "slack":
        return slack_body(payload)
    if fmt == "discord":
        return discord_body(payload)
    return payload


def _cap(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _display(payload: dict[str, Any]) -> dict[str, Any]:
    """The formatted sentences (a payload stored before they were has subject and text)."""
    return payload.get("display") or {
        "lead": payload.get("subject", ""),
        "action_title": "",
        "actions": [],
        "changes": [],
        "positions": [],
        "account": [],
        "as_of": "",
        "footer": "",
    }


def _title(payload: dict[str, Any]) -> str:
    account = (payload.get("account") or {}).get("label") or ""
    headline = payload.get("headline") or payload.get("level") or ""
    return f"{headline} · {account}" if account else payload.get("subject", headline)


def slack_escape(text: str) -> str:
    """Slack's three control characters as entities: text from an exchange never becomes a
    link, a mention or @channel."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _mrkdwn(text: str, limit: int = SLACK_SECTION) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": _cap(text, limit)}


def slack_body(payload: dict[str, Any]) -> dict[str, Any]:
    d = _display(payload)
    e = slack_escape
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": _cap(_title(payload), SLACK_HEADER), "emoji": False}},
        {"type": "section", "text": _mrkdwn(f"*{e(d['lead'])}*" if d["lead"] else e(payload.get("subject", "")))},
    ]
    if d["actions"]:
        body = "\n".join(f"• {e(line)}" for line in d["actions"])
        blocks.append({"type": "section", "text": _mrkdwn(f"*{e(d['action_title'])}*\n{body}")})
    positions = d["positions"][:SLACK_POSITIONS]
    if positions:
        fields = [_mrkdwn(f"*{e(p['title'])}*\n" + "\n".join(e(x) for x in p["lines"]), SLACK_FIELD) for p in positions]
        blocks.append({"type": "section", "fields": fields})
    if d["changes"]:
        changes = "\n".join(f"• {e(line)}" for line in d["changes"])
        blocks.append({"type": "section", "text": _mrkdwn(f"*What changed*\n{changes}")})
    footer = " · ".join(x for x in (d["as_of"], d["footer"]) if x)
    if footer:
        blocks.append({"type": "context", "elements": [_mrkdwn(e(footer))]})
    subject = e(payload.get("subject", ""))
    attachment = {"color": colour(payload.get("headline") or ""), "fallback": subject, "blocks": blocks}
    return {"text": subject, "attachments": [attachment]}


def discord_escape(text: str) -> str:
    """Markdown characters escaped (a symbol or an error text never formats)."""
    return _DISCORD_MARKDOWN.sub(r"\\\1", text)


def discord_body(payload: dict[str, Any]) -> dict[str, Any]:
    d = _display(payload)
    e = discord_escape
    description = f"**{e(d['lead'])}**" if d["lead"] else ""
    if d["actions"]:
        description += f"\n\n**{e(d['action_title'])}**\n" + "\n".join(f"• {e(x)}" for x in d["actions"])
    if d["changes"]:
        description += "\n\n**What changed**\n" + "\n".join(f"• {e(x)}" for x in d["changes"])
    fields = [
        {
            "name": _cap(e(p["title"]), DISCORD_FIELD_NAME),
            "value": _cap("\n".join(e(x) for x in p["lines"]) or "-", DISCORD_FIELD_VALUE),
            "inline": False,
        }
        for p in d["positions"][:DISCORD_FIELDS]
    ]
    embed: dict[str, Any] = {
        "title": _cap(e(_title(payload)), DISCORD_TITLE),
        "description": _cap(description, DISCORD_DESCRIPTION),
        "color": int(colour(payload.get("headline") or "")[1:], 16),
        "fields": fields,
    }
    footer = " · ".join(x for x in (d["as_of"], d["footer"]) if x)
    if footer:
        embed["footer"] = {"text": _cap(footer, DISCORD_FOOTER)}
    if payload.get("created_at"):
        embed["timestamp"] = payload["created_at"]
    return {
        "content": _cap(e(payload.get("subject", "")), DISCORD_CONTENT),
        "embeds": [embed],
        "allowed_mentions": {"parse": []},  # no @everyone, @here or role pings from any text
    }
