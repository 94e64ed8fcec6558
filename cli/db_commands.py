"""`marginwatch db ...`: schema migrations (Alembic)."""

from __future__ import annotations

import typer

from cli.common import ConfigOption, load_or_fail

db_app = typer.Typer(help="Database schema (Alembic migrations).", no_args_is_help=True)


@db_app.command("upgrade")
def db_upgrade(config: ConfigOption = None, revision: str = "head") -> None:
    """Create or migrate the schema to `revision`."""
    from store.db import upgrade

    upgrade(load_or_fail(config).database_url, revision)


@db_app.command("downgrade")
def db_downgrade(config: ConfigOption = None, revision: str = "base") -> None:
    """Migrate the schema down to `revision` (base: drop every table)."""
    from store.db import downgrade

    downgrade(load_or_fail(config).database_url, revision)
