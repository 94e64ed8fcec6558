"""The database engine: a SQLite file (WAL, busy timeout) by default, any PostgreSQL URL
for a shared deployment; schema changes through Alembic (store/migrations)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import NullPool

MIGRATIONS = Path(__file__).parent / "migrations"
SQLITE_BUSY_TIMEOUT_MS = 15_000


def normalise_url(url: str) -> str:
    """postgresql:// and postgres:// use psycopg 3 (the driver we install)."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def _sqlite_pragmas(busy_timeout_ms: int) -> Callable[[Any, Any], None]:
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        # WAL lets the dashboard's readers run while the poller writes; the busy timeout
        # makes a second writer wait instead of failing with "database is locked".
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    return on_connect


def create_private_sqlite_file(url: str) -> None:
    """Create a SQLite URL's database file readable by its owner only, before SQLite does
    (it would use 0644 less the umask). SQLite gives the WAL and shared-memory files the
    mode of the database, so they are private too. An existing file keeps its mode."""
    parsed = make_url(url)
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or not database or database == ":memory:" or database.startswith("file:"):
        return
    try:
        fd = os.open(database, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    except OSError:
        return  # a folder that does not exist: SQLite says so itself, with its own error
    os.close(fd)


def _json(value: Any) -> str:
    """JSON columns as strict JSON (no NaN: webhooks send the payload as it is stored);
    a time or a decimal as its text."""
    return json.dumps(value, allow_nan=False, default=str)


def make_engine(url: str, busy_timeout_seconds: float | None = None, **kwargs: Any) -> Engine:
    """`busy_timeout_seconds` (SQLite): how long a write waits for another writer."""
    url = normalise_url(url)
    kwargs.setdefault("json_serializer", _json)
    if make_url(url).get_backend_name() == "sqlite":
        busy_ms = SQLITE_BUSY_TIMEOUT_MS if busy_timeout_seconds is None else round(busy_timeout_seconds * 1000)
        engine = create_engine(
            url,
            connect_args={"timeout": busy_ms / 1000, "check_same_thread": False},
            **kwargs,
        )
        # the file is made private at the moment SQLite would create it (its first
        # connection), so it never exists without what a connection then writes sooner
        event.listen(engine, "do_connect", lambda *_: create_private_sqlite_file(url))
        event.listen(engine, "connect", _sqlite_pragmas(busy_ms))
        return engine
    return create_engine(url, pool_pre_ping=True, **kwargs)


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def alembic_config(url: str) -> AlembicConfig:
    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", normalise_url(url).replace("%", "%%"))
    return config


# PostgreSQL advisory lock key held while migrating: several pollers starting at once on
# one database migrate it one after another (the later ones find nothing to do)
MIGRATION_LOCK_KEY = 0x6D77_6D69  # "mwmi"


def upgrade(url: str, revision: str = "head") -> None:
    """Bring the schema to `revision` (creates it on an empty database)."""
    if make_url(normalise_url(url)).get_backend_name() != "postgresql":
        command.upgrade(alembic_config(url), revision)
        return
    engine = create_engine(normalise_url(url), poolclass=NullPool)
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql(f"SELECT pg_advisory_lock({MIGRATION_LOCK_KEY})")
            try:
                command.upgrade(alembic_config(url), revision)
            finally:
                conn.exec_driver_sql(f"SELECT pg_advisory_unlock({MIGRATION_LOCK_KEY})")
    finally:
        engine.dispose()


def downgrade(url: str, revision: str = "base") -> None:
    command.downgrade(alembic_config(url), revision)
