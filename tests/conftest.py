"""Shared test helpers."""

from __future__ import annotations

import json
import os
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from monitor.cli import app

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

        with psycopg.connect(POSTGRES_ADMIN_URL.replace("postgresql+psycopg", "postgresql"),
                             connect_timeout=3):
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
    require_system_part(_postgres_available(), "PostgreSQL",
                        "start a PostgreSQL server on 127.0.0.1:5432 with trust auth and a 'test' "
                        "database, or set MARGINWATCH_TEST_POSTGRES to a server URL")
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
