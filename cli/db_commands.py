"""`marginwatch db ...`: schema migrations (Alembic)."""

from __future__ import annotations

import typer

from cli.common import ConfigOption, load_or_fail, prepare_store

db_app = typer.Typer(help="Database schema (Alembic migrations).", no_args_is_help=True)


@db_app.command("upgrade")
def db_upgrade(config: ConfigOption = None, revision: str = "head") -> None:
    """Create or migrate the schema to `revision`."""
    prepare_store(load_or_fail(config), revision)


@db_app.command("downgrade")
def db_downgrade(config: ConfigOption = None, revision: str = "base") -> None:
    """Migrate the schema down to `revision` (base: drop every table)."""
    prepare_store(load_or_fail(config), revision, down=True)
