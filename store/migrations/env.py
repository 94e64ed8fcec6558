"""Alembic environment: runs migrations against the URL set by store.db.alembic_config."""

from __future__ import annotations

from typing import Any

from alembic import context
from sqlalchemy import Connection, Engine, event

from store.db import make_engine
from store.schema import Base

config = context.config
target_metadata = Base.metadata


def run_migrations_offline() -> None:
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def _transactional_sqlite(engine: Engine) -> None:
    """SQLite can roll DDL back, but Python's sqlite3 opens a transaction only before DML:
    CREATE and ALTER ran in autocommit, so a process killed in the middle of an upgrade
    left half a revision applied with the version not advanced, and every later start
    failed ("table already exists"). Here the driver leaves transactions to us and BEGIN
    is emitted with SQLAlchemy's: an upgrade is one transaction, applied whole or not at all."""

    @event.listens_for(engine, "connect")
    def _driver_autocommit(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None

    @event.listens_for(engine, "begin")
    def _begin(connection: Connection) -> None:
        connection.exec_driver_sql("BEGIN")


def run_migrations_online() -> None:
    engine = make_engine(config.get_main_option("sqlalchemy.url") or "")
    sqlite = engine.dialect.name == "sqlite"
    if sqlite:
        _transactional_sqlite(engine)
    with engine.connect() as connection:
        # batch mode: SQLite cannot ALTER most things in place
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=True,
            transactional_ddl=True if sqlite else None,
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
