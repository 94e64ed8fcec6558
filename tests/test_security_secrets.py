"""Secrets never leave memory: not in logs (at DEBUG), not in the database file, not in
stored or printed error messages — including when the exchange echoes them back."""

from __future__ import annotations

import asyncio
import copy
import json
import logging
import os
import secrets
from pathlib import Path
from typing import Any

import pytest

from config.settings import parse_config
from poller.runtime import run_poller
from simulator import ExchangeSimulator
from tests.alert_scenario import write_toml
from tests.conftest import run_cli

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


def test_no_secret_in_logs_database_or_messages(keyed: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    sim, accounts = keyed
    database = tmp_path / "secrets.db"
    config_accounts = []
    every_secret = []
    for i, account in enumerate(accounts):
        key, secret = account["api_key"], account["secret"]
        if i == 2:
            secret = _secret("WRONGSECRET")  # an auth failure: Bybit echoes the signed string
        env = {f"MW_SEC_{i}_KEY": key, f"MW_SEC_{i}_SECRET": secret}
        entry = {
            "name": f"acct{i}",
            "exchange": account["venue"],
            "key_env": f"MW_SEC_{i}_KEY",
            "secret_env": f"MW_SEC_{i}_SECRET",
            "base_url": sim.base_url,
            "timeout_seconds": 2,
        }
        if account.get("passphrase"):
            env[f"MW_SEC_{i}_PASS"] = account["passphrase"]
            entry["passphrase_env"] = f"MW_SEC_{i}_PASS"
        os.environ.update(env)
        every_secret += [*env.values(), account["secret"]]
        config_accounts.append(entry)
    doc = {"poll_interval_seconds": 0.5, "database_url": f"sqlite:///{database}", "accounts": config_accounts}
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
