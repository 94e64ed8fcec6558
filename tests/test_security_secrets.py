"""Secrets never leave memory: not in logs (at DEBUG), not in the database file, not in
stored or printed error messages — including when the exchange echoes them back."""

from __future__ import annotations

import asyncio
import copy
import io
import json
import logging
import secrets
from pathlib import Path
from typing import Any

import pytest

from config.settings import parse_config
from poller.runtime import run_poller
from simulator import ExchangeSimulator
from tests.alert_scenario import write_toml
from tests.helpers import run_cli

FIXTURE = Path(__file__).parent / "fixtures" / "simulator" / "scenario.json"


def _secret(tag: str) -> str:
    return f"{tag}-{secrets.token_hex(12)}"


@pytest.fixture
def keyed() -> Any:
    """The simulator fixture with fresh, unmistakable credentials for every account."""
    doc = json.loads(FIXTURE.read_text())

    for account in doc["accounts"]:
        account["api_key"], account["secret"] = _secret("KEY"), _secret("SECRET")
        if account["venue"] == "okx":
            account["passphrase"] = _secret("PASS")
            account["permissions"]["withdraw"] = False
    simulator = ExchangeSimulator(copy.deepcopy(doc))
    simulator.start()
    yield simulator, doc["accounts"]
    simulator.stop()


def _configure(
    sim: Any, accounts: list[dict[str, Any]], database: Path, tag: str, env: pytest.MonkeyPatch
) -> tuple[dict[str, Any], list[str]]:
    """A config over every simulator account, its credentials in the environment; the third
    account with a wrong secret (Bybit echoes the signed string, API key included)."""
    config_accounts = []
    every_secret = []
    for i, account in enumerate(accounts):
        key, secret = account["api_key"], account["secret"]
        if i == 2:
            secret = _secret("WRONGSECRET")  # an auth failure: Bybit echoes the signed string
        values = {f"MW_{tag}_{i}_KEY": key, f"MW_{tag}_{i}_SECRET": secret}
        entry = {
            "name": f"acct{i}",
            "exchange": account["venue"],
            "key_env": f"MW_{tag}_{i}_KEY",
            "secret_env": f"MW_{tag}_{i}_SECRET",
            "base_url": sim.base_url,
            "timeout_seconds": 2,
        }
        if account.get("passphrase"):
            values[f"MW_{tag}_{i}_PASS"] = account["passphrase"]
            entry["passphrase_env"] = f"MW_{tag}_{i}_PASS"
        for name, value in values.items():
            env.setenv(name, value)
        every_secret += [*values.values(), account["secret"]]
        config_accounts.append(entry)
    doc = {"poll_interval_seconds": 0.5, "database_url": f"sqlite:///{database}", "accounts": config_accounts}
    return doc, every_secret


def test_no_secret_in_logs_database_or_messages(
    keyed: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    sim, accounts = keyed
    database = tmp_path / "secrets.db"
    doc, every_secret = _configure(sim, accounts, database, "SEC", monkeypatch)
    sim.add_fault("okx", "/api/v5/account/positions", "http500", count=3)
    caplog.set_level(logging.DEBUG)  # every logger, ccxt's and aiohttp's included
    asyncio.run(run_poller(parse_config(doc), cycles=3, secrets_file={}))
    config_path = tmp_path / "marginwatch.toml"
    write_toml(doc, config_path)
    printed = [
        run_cli("status", "--config", str(config_path)),
        run_cli("snapshot", "--account", "acct2", "--config", str(config_path)),
        run_cli("snapshot", "--account", "acct0", "--config", str(config_path)),
    ]

    logs = "\n".join(r.getMessage() + " " + str(r.exc_info or "") for r in caplog.records)
    assert "authentication failed" in logs  # the failure was logged...
    stored = b"".join(p.read_bytes() for p in tmp_path.glob("secrets.db*"))
    assert b"authentication failed" in stored  # ...and stored
    assert any("authentication failed" in err for _, _, err in printed)  # ...and printed
    for value in every_secret:
        assert value not in logs, "a credential reached the logs"
        assert value.encode() not in stored, "a credential reached the database"
        for _, out, err in printed:
            assert value not in out and value not in err, "a credential was printed"
    assert logging.getLogger("ccxt").getEffectiveLevel() > logging.DEBUG


CCXT_LOGGERS = ("ccxt", "ccxt.base.exchange", "ccxt.async_support.base.exchange")


def _pages_text(config_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every element of every dashboard page (AppTest), as its protobuf text."""
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("MARGINWATCH_CONFIG", str(config_path))
    at = AppTest.from_file(str(Path(__file__).parent.parent / "app" / "main.py"), default_timeout=60)
    at.secrets["marginwatch_test"] = "isolated"  # no developer's login decides this test
    texts = []
    for page in ("views/overview/page.py", "views/account/page.py", "views/risk/page.py", "views/alerts/page.py"):
        (at.run() if not texts else at.switch_page(page).run())
        texts += [str(node.proto) for block in (at.main, at.sidebar) for node in block if node.proto is not None]
    for name in ("acct0", "acct1", "acct2", "acct3"):  # each account's page, and its errors on the keys page
        at.session_state["mw_account"] = name
        at.switch_page("views/account/page.py").run()
        texts += [str(node.proto) for node in at.main if node.proto is not None]
    at.switch_page("views/keys/page.py").run()
    for name in at.selectbox(key="mw_errors_account").options:
        at.selectbox(key="mw_errors_account").set_value(name).run()
        texts += [str(node.proto) for node in at.main if node.proto is not None]
    assert not at.exception, [e.value for e in at.exception]
    return "\n".join(texts)


def test_no_secret_anywhere_with_ccxts_own_logger_at_debug(
    keyed: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ccxt's logger on at DEBUG (its request log carries the API key in the headers and the
    signature in the URL), the pin that normally holds it at INFO taken away: the
    redaction alone keeps every credential out of what is written, and out of the
    database, the CLI's output and the dashboard's pages."""
    from connectors import redirect

    sim, accounts = keyed
    database = tmp_path / "debug.db"
    doc, every_secret = _configure(sim, accounts, database, "DBG", monkeypatch)
    monkeypatch.setattr(redirect, "quiet_ccxt_logger", lambda: None)
    written = io.StringIO()
    handler = logging.StreamHandler(written)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    levels = {name: logging.getLogger(name).level for name in ("", *CCXT_LOGGERS)}
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    for name in CCXT_LOGGERS:
        logging.getLogger(name).setLevel(logging.DEBUG)
    try:
        sim.add_fault("okx", "/api/v5/account/positions", "http500", count=3)
        asyncio.run(run_poller(parse_config(doc), cycles=3, secrets_file={}))
    finally:
        root.removeHandler(handler)
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)
    config_path = tmp_path / "marginwatch.toml"
    write_toml(doc, config_path)
    printed = "\n".join(
        out + err
        for out, err in (
            run_cli("status", "--config", str(config_path))[1:],
            run_cli("snapshot", "--account", "acct2", "--config", str(config_path))[1:],
        )
    )
    pages = _pages_text(config_path, monkeypatch)
    logs = written.getvalue()
    stored = b"".join(p.read_bytes() for p in tmp_path.glob("debug.db*"))

    assert "Request:" in logs and "X-MBX-APIKEY" in logs  # ccxt's request log was written...
    assert "signature=***" in logs  # ...with its signatures cut
    assert "authentication failed" in logs and b"authentication failed" in stored and "acct0" in pages
    for value in every_secret:
        assert value not in logs, "a credential reached the logs"
        assert value.encode() not in stored, "a credential reached the database"
        assert value not in printed, "a credential was printed"
        assert value not in pages, "a credential reached a dashboard page"
