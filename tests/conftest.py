"""Fixtures shared by the tests; the helpers they use are in tests/helpers.py."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import SmtpServer, free_port, require_system_part
from tests.receivers import Receiver


@pytest.fixture(scope="module")
def module_env() -> Iterator[pytest.MonkeyPatch]:
    """monkeypatch for a module-scoped fixture: what it sets is undone after the module."""
    with pytest.MonkeyPatch.context() as env:
        yield env


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


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    server = SmtpServer(free_port())
    server.start()
    yield server
    server.stop()


# --- the exchange simulator ---------------------------------------------------------------


@pytest.fixture
def fresh_sim(sim: Any) -> Iterator[Any]:
    """A module's shared simulator back at its scenario (no faults) around each test."""
    sim.reset()
    yield sim
    sim.reset()


# --- a webhook and heartbeat receiver on loopback (tests/receivers.py) ---------------------


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    endpoint = Receiver().start()
    yield endpoint
    endpoint.stop()
