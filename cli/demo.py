"""`marginwatch demo`: the product on the built-in exchange simulator, no API keys needed.

Starts the simulator on 127.0.0.1 with the demo scenario (a Binance cross account with
several positions, a Bybit isolated position, an OKX account near its liquidation price,
a Hyperliquid account read by its wallet address with cross and isolated positions, a
Binance COIN-M account margined in BTC (a short perpetual beside a long quarterly), a
withdraw-enabled key that is refused), points a config at it, and runs the poller (and the
dashboard, when asked) until stopped.
"""

from __future__ import annotations

import json
import os
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from config.secrets import load_secrets_file
from config.settings import DEMO_PATH, AccountConfig, Config, parse_config
from simulator import ExchangeSimulator

DEMO_DIR = Path(".marginwatch-demo")
# One owner for two accounts (the Risk page's rebalancing has something to show), and the
# account near liquidation held to a higher target (its remedy is priced on the order book).
DEMO_SETTINGS: dict[str, dict[str, Any]] = {
    "binance-main": {"owner": "demo-fund"},
    "okx-near-liquidation": {"owner": "demo-fund", "target_health": 6.0},
}


def demo_scenario() -> dict[str, Any]:
    text = resources.files("simulator").joinpath("demo_scenario.json").read_text()
    return json.loads(text)


def demo_config(scenario: dict[str, Any], base_url: str, database_url: str, interval: float = 5.0) -> Config:
    """A config for every scenario account, credentials through environment variables (set
    here, in this process only: they are the simulator's made-up keys)."""
    accounts = []
    for i, account in enumerate(scenario["accounts"]):
        prefix = f"MARGINWATCH_DEMO_{i}"
        entry = {
            "name": account.get("name") or f"{account['venue']}-{i}",
            "exchange": account["venue"],
            "collateral": account.get("collateral", "USDT"),
            "base_url": base_url,
            **DEMO_SETTINGS.get(account.get("name", ""), {}),
        }
        if account.get("account_mode") == "portfolio":  # Binance Portfolio Margin: read through papi
            entry["portfolio_margin"] = True
        if account.get("wallet_address"):  # Hyperliquid: read with the address alone
            os.environ[f"{prefix}_WALLET"] = account["wallet_address"]
            entry["wallet_address_env"] = f"{prefix}_WALLET"
            accounts.append(entry)
            continue
        os.environ[f"{prefix}_KEY"] = account["api_key"]
        os.environ[f"{prefix}_SECRET"] = account["secret"]
        entry.update(key_env=f"{prefix}_KEY", secret_env=f"{prefix}_SECRET")
        if account.get("passphrase"):
            os.environ[f"{prefix}_PASSPHRASE"] = account["passphrase"]
            entry["passphrase_env"] = f"{prefix}_PASSPHRASE"
        accounts.append(entry)
    return parse_config({"poll_interval_seconds": interval, "database_url": database_url, "accounts": accounts})


def start_simulator(scenario: dict[str, Any], port: int = 0) -> tuple[ExchangeSimulator, str]:
    simulator = ExchangeSimulator(scenario)
    return simulator, simulator.start(port=port)


DEMO_SECRETS = DEMO_DIR / "secrets.toml"


def write_demo_secrets(settings: Config) -> Path:
    """The demo's made-up simulator keys, by variable name, in `.marginwatch-demo/secrets.toml`
    (owner-only): `marginwatch snapshot --account` in another terminal reads them for the
    demo's config (`demo_secrets`), as a real deployment reads `.streamlit/secrets.toml`."""
    lines = []
    for account in settings.accounts:
        for field in ("key_env", "secret_env", "passphrase_env", "wallet_address_env"):
            variable = getattr(account, field)
            if variable and variable in os.environ:
                lines.append(f"{variable} = {json.dumps(os.environ[variable])}")
    DEMO_DIR.mkdir(mode=0o700, exist_ok=True)
    descriptor = os.open(DEMO_SECRETS, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as out:
        out.write("# marginwatch demo: the exchange simulator's made-up keys (not real ones)\n")
        out.write("\n".join(lines) + "\n")
    return DEMO_SECRETS


def demo_secrets(config_file: Path, account: AccountConfig) -> dict[str, Any]:
    """The demo's keys, for an account of the demo's own config that points at a simulator
    on this machine; nothing for any other config or account (a real key never comes from
    here)."""
    if config_file.resolve() != DEMO_PATH.resolve() or not DEMO_SECRETS.exists():
        return {}
    host = urlsplit(account.base_url or "").hostname
    if host not in ("127.0.0.1", "localhost", "::1"):
        return {}
    return load_secrets_file(DEMO_SECRETS)
