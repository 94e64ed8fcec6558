"""Helpers the tests share: import them from here (conftest.py holds only fixtures)."""

from __future__ import annotations

import copy
import email
import email.policy
import os
import re
import socket
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from cli.main import app

FIXTURES = Path(__file__).parent / "fixtures"
# The simulator's accounts in tests/fixtures/simulator/scenario.json, with their keys as
# ccxt takes them (okx's passphrase is ccxt's `password`).
SIM_KEYS: dict[str, dict[str, str]] = {
    "binanceusdm": {"apiKey": "bn-key", "secret": "bn-secret"},
    "bybit": {"apiKey": "by-key", "secret": "by-secret"},
    "okx": {"apiKey": "ok-key", "secret": "ok-secret", "password": "ok-pass"},
}


def get_path(doc: Any, path: str) -> Any:
    """Follow a path like `positions[1].liquidation_price` into a decoded JSON document."""
    for part in re.findall(r"[^.\[\]]+|\[\d+\]", path):
        doc = doc[int(part[1:-1])] if part.startswith("[") else doc[part]
    return doc


def run_cli(*args: str) -> tuple[int, str, str]:
    """Run the real `marginwatch` CLI in-process; returns (exit code, stdout, stderr)."""
    result = CliRunner().invoke(app, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def keyed_account(
    env: pytest.MonkeyPatch,
    prefix: str,
    key: str,
    secret: str,
    passphrase: str | None = None,
    **entry: Any,
) -> dict[str, Any]:
    """A config's account entry (`entry`: name, exchange, base_url, ...) whose credentials
    are set in the environment through `env` (monkeypatch: undone after the test) as
    PREFIX_KEY, PREFIX_SECRET and, with a passphrase, PREFIX_PASS."""
    env.setenv(f"{prefix}_KEY", key)
    env.setenv(f"{prefix}_SECRET", secret)
    account = {**entry, "key_env": f"{prefix}_KEY", "secret_env": f"{prefix}_SECRET"}
    if passphrase:
        env.setenv(f"{prefix}_PASS", passphrase)
        account["passphrase_env"] = f"{prefix}_PASS"
    return account


def require_system_part(missing: str | None, what: str, how: str) -> None:
    """Skip on a user's machine without `what`; under CI=true it must be there."""
    if missing is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"{what} is required in CI but unavailable: {missing}")
    pytest.skip(f"{what} unavailable ({missing}); to run this test: {how}")


# --- a real SMTP server on loopback (aiosmtpd) -----------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Inbox:
    """What a loopback SMTP server received; `refuse_next` answers 451 (greylisting)."""

    def __init__(self) -> None:
        self.messages: list[email.message.EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self.refuse_next = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.refuse_next > 0:
            self.refuse_next -= 1
            return "451 4.7.1 Greylisted, try again later"
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        self.messages.append(email.message_from_bytes(envelope.content, policy=email.policy.default))
        return "250 OK"


class SmtpServer:
    def __init__(self, port: int) -> None:
        self.port = port
        self.inbox = Inbox()
        self.running = False

    def start(self) -> None:
        from aiosmtpd.controller import Controller

        # a Controller cannot be restarted: each start is a new server on the same port
        self.controller = Controller(self.inbox, hostname="127.0.0.1", port=self.port)
        self.controller.start()
        self.running = True

    def stop(self) -> None:
        if self.running:
            self.controller.stop()
            self.running = False


# --- the exchange simulator ---------------------------------------------------------------


@contextmanager
def running_simulator(scenario: dict[str, Any]) -> Iterator[Any]:
    """The exchange simulator serving (a copy of) `scenario` on 127.0.0.1 while in use."""
    from simulator import ExchangeSimulator

    simulator = ExchangeSimulator(copy.deepcopy(scenario))
    simulator.start()
    try:
        yield simulator
    finally:
        simulator.stop()


# --- a poller in its own process, and its SQLite store read directly ------------------------


def start_poller(config_path: Path, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "cli.main", "poll", "--config", str(config_path)],
        env={**os.environ},
        stdout=subprocess.DEVNULL,
        stderr=log.open("wb"),
    )


def rows(db: Path, query: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(db, timeout=30) as conn:
        return conn.execute(query).fetchall()


def scalar_alert_prices(snap: Any, index: int, limits: Any) -> dict[str, float | None]:
    """The scalar engine's watch prices of position `index` (margin.alert_prices.from_prices,
    its symbol in its pool): `warning_price_down` … `critical_price_up`, None where none."""
    from margin.alert_prices import from_prices
    from margin.liquidation import all_liquidations
    from margin.pools import pool_of

    found = from_prices(
        snap,
        limits,
        all_liquidations(snap),
        all_liquidations(snap, limits.warning_health),
        all_liquidations(snap, limits.critical_health),
    )
    [mine] = [a for a in found if a.symbol == snap.positions[index].symbol and a.pool == pool_of(snap, index).key]
    return {
        f"{level}_price_{side}": value
        for level in ("warning", "critical")
        for side, value in zip(("down", "up"), mine.level_prices(level), strict=True)
    }


def assert_same_price(got: float, expected: float | None, mark: float) -> None:
    """A vectorised price (nan: none) against the scalar engine's (None: none), to 1e-9; a
    price of ~0 or ~inf (1e-12 or 1e12 x the mark) stands for none on either side."""
    import math

    if expected is None:
        assert math.isnan(got) or got <= 1e-12 * mark or got >= 1e12 * mark
    elif math.isnan(got):
        assert expected <= 1e-12 * mark or expected >= 1e12 * mark
    else:
        assert got == pytest.approx(expected, rel=1e-9, abs=1e-12)
