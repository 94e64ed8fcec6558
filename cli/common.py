"""What every `marginwatch` command shares: how bad input ends, the --config option, the
config and the store."""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from config.settings import Config, ConfigError, config_path, load_config
from margin.stress import DEFAULT_SHOCKS

if TYPE_CHECKING:  # SQLAlchemy is slow to import: only the commands that open the store pay for it
    from sqlalchemy.orm import Session, sessionmaker


def fail(message: str) -> NoReturn:
    """One line on stderr, exit 2: how every bad input ends."""
    print(f"marginwatch: {message}", file=sys.stderr)
    raise typer.Exit(2)


def parse_shocks(text: str | None) -> tuple[float, ...]:
    if text is None:
        return DEFAULT_SHOCKS
    try:
        shocks = tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError:
        fail(f"--shocks: expected comma-separated fractions like -0.2,-0.1,0.1; got {text!r}")
    if not shocks or any(not math.isfinite(s) or s <= -1 for s in shocks):
        fail(f"--shocks: every shock must be a fraction above -1 (e.g. -0.2); got {text!r}")
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
    try:
        return load_config(config_path(path), check)
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"marginwatch: {problem}", file=sys.stderr)
        raise typer.Exit(2) from None


def optional_config(path: Path | None) -> Config | None:
    """The config named by --config (which must then load), else the default one if it
    exists (MARGINWATCH_CONFIG, then ./marginwatch.toml), else None."""
    if path is None and not config_path(None).exists():
        return None
    return load_or_fail(path)


def open_store(settings: Config) -> sessionmaker[Session]:
    """The configured store, migrated to the current schema."""
    from store.db import make_engine, session_factory, upgrade

    upgrade(settings.database_url)
    return session_factory(make_engine(settings.database_url))
