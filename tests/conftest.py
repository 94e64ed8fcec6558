"""Shared test helpers."""

from __future__ import annotations

import copy
import email
import email.policy
import json
import os
import re
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from cli.main import app

FIXTURES = Path(__file__).parent / "fixtures"


def get_path(doc: Any, path: str) -> Any:
    """Follow a path like `positions[1].liquidation_price` into a decoded JSON document."""
    for part in re.findall(r"[^.\[\]]+|\[\d+\]", path):
        doc = doc[int(part[1:-1])] if part.startswith("[") else doc[part]
    return doc


def run_cli(*args: str) -> tuple[int, str, str]:
    """Run the real `marginwatch` CLI in-process; returns (exit code, stdout, stderr)."""
    result = CliRunner().invoke(app, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def write_json(tmp_path: Path):
    def write(doc: Any, name: str = "snapshot.json") -> Path:
        path = tmp_path / name
        path.write_text(json.dumps(doc))
        return path

    return write


# --- databases: SQLite files, and the machine's PostgreSQL ----------------------------------

POSTGRES_ADMIN_URL = os.environ.get("MARGINWATCH_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


def _postgres_available() -> str | None:
    try:
        import psycopg

        with psycopg.connect(POSTGRES_ADMIN_URL.replace("postgresql+psycopg", "postgresql"), connect_timeout=3):
            return None
    except Exception as exc:
        return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def require_system_part(missing: str | None, what: str, how: str) -> None:
    """Skip on a user's machine without `what`; under CI=true it must be there."""
    if missing is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"{what} is required in CI but unavailable: {missing}")
    pytest.skip(f"{what} unavailable ({missing}); to run this test: {how}")


@pytest.fixture(scope="session")
def postgres_server() -> str:
    require_system_part(
        _postgres_available(),
        "PostgreSQL",
        "start a PostgreSQL server on 127.0.0.1:5432 with trust auth and a 'test' "
        "database, or set MARGINWATCH_TEST_POSTGRES to a server URL",
    )
    return POSTGRES_ADMIN_URL


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    import psycopg

    name = f"mw_test_{uuid.uuid4().hex[:12]}"
    admin = postgres_server.replace("postgresql+psycopg", "postgresql")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = admin.rsplit("/", 1)[0] + f"/{name}"
    yield url
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each store test runs on a SQLite file and on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'marginwatch.db'}"
    return request.getfixturevalue("postgres_url")


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


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    server = SmtpServer(free_port())
    server.start()
    yield server
    server.stop()


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


@pytest.fixture
def fresh_sim(sim: Any) -> Iterator[Any]:
    """A module's shared simulator back at its scenario (no faults) around each test."""
    sim.reset()
    yield sim
    sim.reset()
