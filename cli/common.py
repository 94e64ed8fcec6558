"""What every `marginwatch` command shares: how bad input ends, the --config option, the
config and the store."""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from config.secrets import secrets_file_warning
from config.settings import Config, ConfigError, config_path, exposure_warnings, load_config
from margin.stress import DEFAULT_SHOCKS

if TYPE_CHECKING:  # SQLAlchemy is slow to import: only the commands that open the store pay for it
    from sqlalchemy.orm import Session, sessionmaker

MAX_SHOCK = 100.0  # +10,000 %: a price beyond it is no stress test, and may leave the floats


def fail(message: str) -> NoReturn:
    """One line on stderr for each line of `message` (one a problem), exit 2: how every
    bad input ends."""
    for line in message.splitlines() or [""]:
        print(f"marginwatch: {line}", file=sys.stderr)
    raise typer.Exit(2)


def parse_shocks(text: str | None) -> tuple[float, ...]:
    if text is None:
        return DEFAULT_SHOCKS
    try:
        shocks = tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError:
        fail(f"--shocks: expected comma-separated fractions like -0.2,-0.1,0.1; got {text!r}")
    if not shocks or any(not math.isfinite(s) or not -1 < s <= MAX_SHOCK for s in shocks):
        fail(f"--shocks: every shock must be a fraction above -1 and at most {MAX_SHOCK:g} (e.g. -0.2); got {text!r}")
    return shocks


ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", help="marginwatch.toml (default: $MARGINWATCH_CONFIG, then ./marginwatch.toml)."),
]


def load_or_fail(path: Path | None, *, polling: bool = False) -> Config:
    """The validated config, or every problem on its own line and exit 2. With `polling`,
    the accounts are also checked against the venues (exchange ids, credentials named)."""
    check = None
    if polling:
        from connectors.venues import account_problems  # imports ccxt: only to poll

        check = account_problems
    chosen = config_path(path)
    try:
        config = load_config(chosen, check)
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"marginwatch: {problem}", file=sys.stderr)
        raise typer.Exit(2) from None
    warnings = exposure_warnings(chosen, config)
    if polling:  # the credentials are about to be read, from the environment or this file
        warnings += [w for w in [secrets_file_warning()] if w]
    for warning in warnings:
        print(f"marginwatch: warning: {warning}", file=sys.stderr)
    return config


def store_problem(exc: BaseException) -> str:
    """One line saying why the database could not be used (the driver's own first line,
    never the URL's password nor the SQL statement)."""
    cause = getattr(exc, "orig", None) or exc
    lines = str(cause).strip().splitlines()
    return f"{type(cause).__name__}: {lines[0] if lines else 'no detail'}"


def prepare_store(settings: Config, revision: str | None = "head", *, down: bool = False) -> None:
    """Create or migrate the schema; a database that cannot be opened is one line, exit 2."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import SQLAlchemyError

    from store.db import downgrade, upgrade

    try:
        if down:
            downgrade(settings.database_url, revision or "base")
        else:
            upgrade(settings.database_url, revision or "head")
    except (SQLAlchemyError, ImportError, OSError) as exc:
        shown = make_url(settings.database_url).render_as_string(hide_password=True)
        fail(f"database_url: cannot use {shown} ({store_problem(exc)})")


def optional_config(path: Path | None) -> Config | None:
    """The config named by --config (which must then load), else the default one if it
    exists (MARGINWATCH_CONFIG, then ./marginwatch.toml), else None."""
    if path is None and not config_path(None).exists():
        return None
    return load_or_fail(path)


def open_store(settings: Config) -> sessionmaker[Session]:
    """The configured store, migrated to the current schema."""
    from store.db import make_engine, session_factory

    prepare_store(settings)
    return session_factory(make_engine(settings.database_url))
