"""The channels for real: webhooks to a JSON endpoint on loopback (Slack and Discord shapes),
`marginwatch alerts test` through SMTP and a webhook, silences from the CLI."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from alerts.messages import channel_test
from alerts.senders import PermanentDeliveryError, TemporaryDeliveryError, post_webhook
from config.settings import WebhookConfig
from tests.alert_gallery import Hook
from tests.alert_scenario import write_toml
from tests.helpers import SmtpServer, run_cli


@pytest.fixture
def hook() -> Iterator[Hook]:
    endpoint = Hook()
    yield endpoint
    endpoint.server.shutdown()


PAYLOAD = channel_test(datetime(2026, 11, 1, 13, 0, tzinfo=UTC), "mw@example.org").payload


@pytest.mark.parametrize("fmt", ["slack", "discord", "json"])
def test_webhook_shapes(hook: Hook, fmt: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MW_HOOK_URL", hook.url)
    post_webhook(WebhookConfig(name="h", url_env="MW_HOOK_URL", format=fmt), PAYLOAD)
    (body,) = hook.bodies
    subject = "TEST · marginwatch · alert channel check"
    if fmt == "slack":  # Block Kit in a coloured attachment, the subject as the fallback text
        assert body["text"] == subject and body["attachments"][0]["blocks"][0]["type"] == "header"
    elif fmt == "discord":  # an embed; no mention parsed from any text
        assert body["content"] == subject and body["embeds"][0]["title"] == "TEST · marginwatch"
        assert body["allowed_mentions"] == {"parse": []}
    else:  # the payload itself, with its ids
        assert body == PAYLOAD and body["notification_id"] and body["message_id"].endswith("@example.org>")


def test_webhook_failures_are_sorted(hook: Hook, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MW_HOOK_URL", hook.url)
    config = WebhookConfig(name="h", url_env="MW_HOOK_URL")
    hook.status = 503
    with pytest.raises(TemporaryDeliveryError):
        post_webhook(config, PAYLOAD)
    hook.status = 404
    with pytest.raises(PermanentDeliveryError):
        post_webhook(config, PAYLOAD)
    monkeypatch.setenv("MW_HOOK_URL", "http://127.0.0.1:9/nothing-listens")
    with pytest.raises(TemporaryDeliveryError):
        post_webhook(config, PAYLOAD)
    received = len(hook.bodies)
    for bad in (hook.url + "\r\nX-Injected: 1", "file:///etc/passwd"):  # never a header, never a file
        monkeypatch.setenv("MW_HOOK_URL", bad)
        with pytest.raises(PermanentDeliveryError, match="not an http"):
            post_webhook(config, PAYLOAD)
    assert len(hook.bodies) == received  # nothing was posted


def test_alerts_test_command_and_silences(
    hook: Hook, smtp_server: SmtpServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MW_HOOK_URL", hook.url)
    config_path = tmp_path / "marginwatch.toml"
    write_toml(
        {
            "database_url": f"sqlite:///{tmp_path / 'c.db'}",
            "alerts": {
                "email": {
                    "host": "127.0.0.1",
                    "port": smtp_server.port,
                    "security": "none",
                    "from": "mw@example.org",
                    "to": ["risk@example.org"],
                },
                "webhooks": [{"name": "desk", "url_env": "MW_HOOK_URL", "format": "slack"}],
            },
            "accounts": [
                {
                    "name": "main",
                    "exchange": "binanceusdm",
                    "key_env": "K",
                    "secret_env": "S",
                    "alerts": {"email_to": ["owner@example.org"]},
                }
            ],
        },
        config_path,
    )
    code, out, err = run_cli("alerts", "test", "--config", str(config_path))
    assert code == 0, out + err
    assert "sent    email to owner@example.org, risk@example.org" in out and "sent    webhook desk" in out
    (message,) = smtp_server.inbox.messages
    assert message["Subject"].startswith("TEST · marginwatch")
    assert message["Message-ID"].endswith("@example.org>")  # the sender's domain, not @localhost
    assert hook.bodies and "TEST · marginwatch" in hook.bodies[0]["text"]
    smtp_server.stop()
    code, out, _ = run_cli("alerts", "test", "--config", str(config_path))
    assert code == 1 and "FAILED  email" in out  # a broken channel is said, not hidden

    code, out, err = run_cli(
        "alerts",
        "silence",
        "--account",
        "all",
        "--minutes",
        "30",
        "--reason",
        "exchange maintenance",
        "--config",
        str(config_path),
    )
    assert code == 0, err
    silence_id = out.split()[1].rstrip(":")
    code, out, _ = run_cli("alerts", "list", "--config", str(config_path))
    assert "all accounts" in out and "exchange maintenance" in out
    assert run_cli("alerts", "unsilence", silence_id, "--config", str(config_path))[0] == 0
    code, out, _ = run_cli("alerts", "list", "--config", str(config_path))
    assert "exchange maintenance" not in out
    code, _, err = run_cli("alerts", "silence", "--account", "nobody", "--config", str(config_path))
    assert code == 2 and "no account named 'nobody'" in err
