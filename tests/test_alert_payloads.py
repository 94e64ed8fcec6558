"""Every kind of alert through the outbox to a loopback SMTP server and a loopback webhook
receiver (Slack, Discord and JSON endpoints): the JSON payload validates against its
documented schema (docs/alert-payload.schema.json) and carries its ids; Slack bodies
validate against the Block Kit subset they use (tests/fixtures/slack-block-kit-subset.
schema.json); Discord embeds keep within Discord's limits; hostile text is escaped for
each channel."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from alerts.messages import channel_test
from alerts.render.webhooks import discord_body, slack_body
from tests.alert_gallery import T0, Desk, Hook, config, document, gallery
from tests.helpers import SmtpServer

ROOT = Path(__file__).parent.parent
PAYLOAD_SCHEMA = json.loads((ROOT / "docs" / "alert-payload.schema.json").read_text())
SLACK_SCHEMA = json.loads((ROOT / "tests" / "fixtures" / "slack-block-kit-subset.schema.json").read_text())
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
HOOKS = [
    {"name": "slack", "url_env": "MW_SLACK_URL", "format": "slack"},
    {"name": "discord", "url_env": "MW_DISCORD_URL", "format": "discord"},
    {"name": "json", "url_env": "MW_JSON_URL", "format": "json"},
]


def _valid(schema: dict[str, Any], doc: Any) -> None:
    Draft202012Validator.check_schema(schema)
    errors = sorted(Draft202012Validator(schema).iter_errors(doc), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors[:5])


@pytest.fixture
def hook(monkeypatch: pytest.MonkeyPatch) -> Iterator[Hook]:
    endpoint = Hook()
    for h in HOOKS:
        monkeypatch.setenv(h["url_env"], endpoint.url.replace("/hook", f"/{h['name']}"))
    yield endpoint
    endpoint.server.shutdown()


@pytest.fixture
def delivered(tmp_path: Path, smtp_server: SmtpServer, hook: Hook) -> dict[str, Any]:
    made = gallery(tmp_path, smtp_server.port, HOOKS)
    return {"made": made, "inbox": smtp_server.inbox.messages, "hook": hook}


def test_every_kind_reaches_every_channel_with_its_ids(delivered: dict[str, Any]) -> None:
    made, inbox, hook = delivered["made"], delivered["inbox"], delivered["hook"]
    sent = {n.message_id for n in made.values()}
    assert {m["Message-ID"] for m in inbox} == sent  # one email each, with the stored id
    bodies = hook.by_path("/json")
    assert len(bodies) == len(made) == len(hook.by_path("/slack")) == len(hook.by_path("/discord"))
    by_id = {b["notification_id"]: b for b in bodies}
    for kind, notification in made.items():
        body = by_id[notification.uuid]
        _valid(PAYLOAD_SCHEMA, body)
        assert UUID.match(body["notification_id"]) and UUID.match(body["incident_id"]), kind
        assert body["message_id"] == notification.message_id
        assert body["incident_id"] == notification.incident_id
        assert body["subject"] == notification.subject_line
        assert body["created_at"].startswith("2026-11-01T13:")
    assert by_id[made["critical"].uuid]["level"] == "CRITICAL"
    assert by_id[made["resolved"].uuid]["kind"] == "resolved"
    assert by_id[made["resolved"].uuid]["incident"]["closed_at"] is not None
    assert by_id[made["stale"].uuid]["problem"]["kind"] == "stale"
    assert by_id[made["refused"].uuid]["problem"]["kind"] == "refused"


def test_the_json_payload_has_the_figures_as_numbers(delivered: dict[str, Any]) -> None:
    made, hook = delivered["made"], delivered["hook"]
    critical = next(b for b in hook.by_path("/json") if b["notification_id"] == made["critical"].uuid)
    assert critical["figures"] == {
        "equity": 10.8,
        "maintenance_margin": 10.0,
        "health": pytest.approx(1.08),
        "chance_24h": None,
    }
    (btc,) = critical["positions"]
    assert btc["symbol"] == "BTC/USDT:USDT" and btc["short_symbol"] == "BTC"
    assert btc["liquidation_price"] == pytest.approx(89.2 / 0.9, rel=1e-3)  # the fee to close moves it a little
    assert btc["distance"] == pytest.approx(1 - 89.2 / 90, rel=1e-2) and btc["price_tick"] == 0.01
    (topup,) = critical["remedy"]["topups"]
    assert topup["amount"] == pytest.approx(8.2, rel=0.01) and topup["liquidation_price_after"] == pytest.approx(
        90, rel=1e-3
    )
    (cut,) = critical["remedy"]["reductions"]
    assert cut == {
        "symbol": "BTC/USDT:USDT",
        "side": "long",
        "contracts": 0.433,
        "size": 0.433,
        "notional": pytest.approx(43.3),
    }
    assert critical["data_age_seconds"] == 0.0 and critical["as_of"] == "2026-11-01T13:04:00.000Z"


def test_slack_bodies_are_block_kit_with_the_level_colour_remedy_and_positions(delivered: dict[str, Any]) -> None:
    made, hook = delivered["made"], delivered["hook"]
    slack = hook.by_path("/slack")
    for body in slack:
        _valid(SLACK_SCHEMA, body)
    critical = next(b for b in slack if b["text"] == made["critical"].subject_line)
    (attachment,) = critical["attachments"]
    assert attachment["color"] == "#b00020"
    header, lead, remedy, positions, changes, context = attachment["blocks"]
    assert header["text"]["text"] == "CRITICAL · binanceusdm/main"
    assert lead["text"]["text"] == "*BTC long 0.9 % from liquidation at 99.11 USDT (down)*"
    assert remedy["text"]["text"].startswith("*Do now*\n• add 8.21 USDT → health 1.90")
    assert positions["fields"][0]["text"].startswith("*BTC long · CRITICAL*\n0.9 % from liq 99.11 USDT")
    assert changes["text"]["text"].startswith("*What changed*")
    assert context["elements"][0]["text"].startswith("as of 13:04:00 UTC (data age 0 s)")
    colours = {b["text"].split(" · ")[0]: b["attachments"][0]["color"] for b in slack}
    assert colours["WARNING"] != colours["CRITICAL"] != colours["RESOLVED"]


def test_discord_bodies_are_embeds_within_discord_limits(delivered: dict[str, Any]) -> None:
    for body in delivered["hook"].by_path("/discord"):
        (embed,) = body["embeds"]
        assert body["allowed_mentions"] == {"parse": []}
        assert len(body["content"]) <= 2000 and len(embed["title"]) <= 256 and len(embed["description"]) <= 4096
        assert len(embed["fields"]) <= 25 and all(len(f["value"]) <= 1024 for f in embed["fields"])
        total = len(embed["title"]) + len(embed["description"]) + len(embed.get("footer", {}).get("text", ""))
        assert total + sum(len(f["name"]) + len(f["value"]) for f in embed["fields"]) <= 6000
        assert isinstance(embed["color"], int) and embed["timestamp"].endswith("Z")


def test_hostile_text_is_summarised_and_escaped_for_each_channel(tmp_path: Path, smtp_server: SmtpServer) -> None:
    """An exchange error that tries Slack's mention and link syntax, Discord's Markdown and
    an HTML injection, with control characters: one line, escaped wherever it lands."""
    hostile = (
        "<@U024BE7LH> limit < 5 & margin > 2 *bold* `code` <script>alert(1)</script>\r\nX-Injected: 1\x1b[31m "
        "<!channel>"
    )
    desk = Desk(tmp_path, config(smtp_server.port))
    desk.poll(document(3.0))
    desk.fail(hostile, minutes=1)
    assert desk.fail(hostile, minutes=4) is not None
    desk.deliver()
    (message,) = smtp_server.inbox.messages
    (notification,) = desk.notifications()
    assert "\n" not in message["Subject"] and "X-Injected" not in message
    html = message.get_body(("html",)).get_content().replace("\u00a0", " ")
    assert "<script>" not in html and "alert(1)" not in html  # tags are dropped from the summary
    assert "limit &lt; 5 &amp; margin &gt; 2" in html  # and what is left is escaped
    payload = json.loads(notification.payload)
    lead = payload["display"]["lead"]
    assert "limit < 5 & margin > 2" in lead and "<!channel>" not in lead
    assert "\r" not in lead and "\n" not in lead and "\x1b" not in lead
    slack = slack_body(payload)
    text = json.dumps(slack)
    assert "<@U024BE7LH>" not in text and "&lt;@U024BE7LH&gt; limit &lt; 5 &amp; margin &gt; 2" in text
    _valid(SLACK_SCHEMA, slack)
    discord = discord_body(payload)
    assert "\\*bold\\* \\`code\\`" in discord["embeds"][0]["description"]
    assert discord["allowed_mentions"] == {"parse": []}


def test_the_channel_test_message_validates_too() -> None:
    payload = channel_test(T0, "marginwatch@example.org").payload
    _valid(PAYLOAD_SCHEMA, payload)
    assert payload["kind"] == "test" and payload["message_id"].endswith("@example.org>")
    _valid(SLACK_SCHEMA, slack_body(payload))
