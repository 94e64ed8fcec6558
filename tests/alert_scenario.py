"""Shared set-up for the alert scenarios: one Binance cross account on the simulator whose
health follows the mark price, a poller with alerts to a loopback SMTP server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from config.files import write_config
from config.settings import parse_config
from margin.snapshot import parse_snapshot
from margin.stress import price_for_health
from simulator import ExchangeSimulator
from tests.receivers import Receiver

SYMBOL = "BTC/USDT:USDT"
ENTRY = 90_000.0


def scenario() -> dict[str, Any]:
    """One cross long, 1 BTC at 90,000 with 12,000 USDT: health ~2 at 86,000."""
    demo = json.loads((Path(__file__).parent / "fixtures" / "simulator" / "scenario.json").read_text())
    return {
        "seed": 1,
        "random_walk": {"enabled": False},
        "markets": {"binanceusdm": [m for m in demo["markets"]["binanceusdm"] if m["symbol"] == SYMBOL]},
        "accounts": [
            {
                "venue": "binanceusdm",
                "name": "main",
                "api_key": "alert-key",
                "secret": "alert-secret",
                "passphrase": None,
                "permissions": {"trade": False, "withdraw": False},
                "collateral": "USDT",
                "wallet_balance": 12_000.0,
                "positions": [
                    {
                        "symbol": SYMBOL,
                        "side": "long",
                        "contracts": 1.0,
                        "entry_price": ENTRY,
                        "margin_mode": "cross",
                        "isolated_margin": None,
                        "leverage": 20,
                    }
                ],
            }
        ],
    }


def mark_for_health(document: dict[str, Any], health: float) -> float:
    """The BTC mark at which the account's cross pool has `health`."""
    price = price_for_health(parse_snapshot(document), SYMBOL, health)
    assert price is not None
    return price


# The risk level's chance and distance rules switched off: scenarios that walk the health
# bands alone (at 20x, health 2 is 0.4 % from liquidation: the risk level is critical there).
HEALTH_BANDS_ONLY = {
    "touch_warning_above": 1.0,
    "touch_critical_above": 1.0,
    "distance_warning_below": 0.0,
    "distance_critical_below": 0.0,
}


def config_doc(
    base_url: str,
    database_url: str,
    smtp_port: int,
    interval: float = 1.0,
    *,
    env: pytest.MonkeyPatch,
    danger: bool = True,
) -> dict[str, Any]:
    """The scenario's config; its account's keys are set in the environment through `env`
    (undone after the test)."""
    env.setenv("MW_ALERT_KEY", "alert-key")
    env.setenv("MW_ALERT_SECRET", "alert-secret")
    return {
        "poll_interval_seconds": interval,
        "database_url": database_url,
        "alerts": {
            **({} if danger else HEALTH_BANDS_ONLY),
            "retry_base_seconds": 0.2,
            "retry_cap_seconds": 0.5,
            # a send cut short by a kill is taken up again after this (above the 2 s SMTP
            # timeout): a test that kills the poller mid-send need not wait the default 120 s
            "delivery_lease_seconds": 5,
            # the dwell counts minutes of the store's clock: these runs last seconds
            "recovery_dwell_minutes": 0,
            "email": {
                "host": "127.0.0.1",
                "port": smtp_port,
                "security": "none",
                "from": "marginwatch@example.org",
                "to": ["trader@example.org"],
                "timeout_seconds": 2,
            },
        },
        "accounts": [
            {
                "name": "main",
                "exchange": "binanceusdm",
                "key_env": "MW_ALERT_KEY",
                "secret_env": "MW_ALERT_SECRET",
                "base_url": base_url,
                "timeout_seconds": 3,
            }
        ],
    }


def write_toml(doc: dict[str, Any], path: Path) -> Path:
    """A config document as the TOML file the CLI reads (validated on the way)."""
    return write_config(parse_config(doc), path)


def outage_config(
    sim: ExchangeSimulator, receiver: Receiver, db: Path, check: str, env: pytest.MonkeyPatch, interval: float = 0.5
) -> dict[str, Any]:
    """A poller config for the outage and heartbeat tests: no email, a webhook and a
    heartbeat to `receiver` (heartbeat check `check`), short timeouts."""
    doc = config_doc(sim.base_url, f"sqlite:///{db}", smtp_port=1, interval=interval, danger=False, env=env)
    del doc["alerts"]["email"]
    env.setenv("MW_OUTAGE_HOOK", f"{receiver.url}/hook/ops")
    doc["alerts"]["webhooks"] = [{"name": "ops", "url_env": "MW_OUTAGE_HOOK", "format": "json", "timeout_seconds": 3}]
    doc["accounts"][0]["timeout_seconds"] = 0.4  # a failing account's retries end within the interval
    doc["database_busy_timeout_seconds"] = 0.5
    doc["monitor"] = {"heartbeat_url": f"{receiver.url}/ping/{check}", "heartbeat_timeout_seconds": 2}
    return doc
