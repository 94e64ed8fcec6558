"""Shared set-up for the alert scenarios: one Binance cross account on the simulator whose
health follows the mark price, a poller with alerts to a loopback SMTP server."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from margin.snapshot import parse_snapshot
from margin.stress import price_for_health

SYMBOL = "BTC/USDT:USDT"
ENTRY = 90_000.0


def scenario() -> dict[str, Any]:
    """One cross long, 1 BTC at 90,000 with 12,000 USDT: health ~2 at 86,000."""
    demo = json.loads((Path(__file__).parent / "fixtures" / "simulator" / "scenario.json").read_text())
    return {
        "seed": 1,
        "random_walk": {"enabled": False},
        "markets": {"binanceusdm": [m for m in demo["markets"]["binanceusdm"] if m["symbol"] == SYMBOL]},
        "accounts": [{
            "venue": "binanceusdm", "name": "main", "api_key": "alert-key", "secret": "alert-secret",
            "passphrase": None, "permissions": {"trade": False, "withdraw": False}, "collateral": "USDT",
            "wallet_balance": 12_000.0,
            "positions": [{"symbol": SYMBOL, "side": "long", "contracts": 1.0, "entry_price": ENTRY,
                           "margin_mode": "cross", "isolated_margin": None, "leverage": 20}],
        }],
    }


def mark_for_health(document: dict[str, Any], health: float) -> float:
    """The BTC mark at which the account's cross pool has `health`."""
    price = price_for_health(parse_snapshot(document), SYMBOL, health)
    assert price is not None
    return price


def config_doc(base_url: str, database_url: str, smtp_port: int, interval: float = 1.0) -> dict[str, Any]:
    os.environ["MW_ALERT_KEY"], os.environ["MW_ALERT_SECRET"] = "alert-key", "alert-secret"
    return {
        "poll_interval_seconds": interval,
        "database_url": database_url,
        "alerts": {"retry_base_seconds": 0.2, "retry_cap_seconds": 0.5,
                   "email": {"host": "127.0.0.1", "port": smtp_port, "security": "none",
                             "from": "marginwatch@example.org", "to": ["trader@example.org"],
                             "timeout_seconds": 2}},
        "accounts": [{"name": "main", "exchange": "binanceusdm", "key_env": "MW_ALERT_KEY",
                      "secret_env": "MW_ALERT_SECRET", "base_url": base_url, "timeout_seconds": 3}],
    }


def toml(doc: dict[str, Any]) -> str:
    """Enough TOML for these configs (scalars, string lists, tables, arrays of tables)."""
    def value(v: Any) -> str:
        return json.dumps(v)

    lines: list[str] = []
    tables: list[tuple[str, dict]] = []
    arrays: list[tuple[str, list]] = []

    def emit(prefix: str, table: dict[str, Any]) -> None:
        for k, v in table.items():
            if isinstance(v, dict):
                tables.append((f"{prefix}{k}", v))
            elif isinstance(v, list) and v and isinstance(v[0], dict):
                arrays.append((f"{prefix}{k}", v))
            else:
                lines.append(f"{k} = {value(v)}")

    emit("", doc)
    while tables or arrays:
        if tables:
            name, table = tables.pop(0)
            lines.append(f"[{name}]")
            emit(f"{name}.", table)
        else:
            name, items = arrays.pop(0)
            for item in items:
                lines.append(f"[[{name}]]")
                emit(f"{name}.", item)
    return "\n".join(lines) + "\n"
