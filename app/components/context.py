"""The config and the store the dashboard reads: loaded once per file version and cached
across sessions. The app never migrates: a missing schema gets a message saying what to
run."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import streamlit as st
from sqlalchemy import Engine, inspect
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from app.components.safe import md
from config.settings import AccountConfig, AlertRules, Config, ConfigError, config_path, load_config
from store.db import make_engine, normalise_url, session_factory
from store.schema import Base

log = logging.getLogger(__name__)
SETUP_HINT = "run `marginwatch db upgrade` (or `marginwatch poll`, which creates it) first"


@dataclass(frozen=True)
class DashboardContext:
    config: Config
    config_file: Path
    engine: Engine
    sessions: sessionmaker[Session]

    def account_config(self, name: str) -> AccountConfig | None:
        return next((a for a in self.config.accounts if a.name == name), None)

    def rules(self, name: str) -> AlertRules:
        """The alert thresholds of a stored account (the defaults when not configured)."""
        return self.config.rules_named(name)

    def target_health(self, name: str) -> float:
        return self.config.target_for(name)


@st.cache_resource(show_spinner=False)
def _config(path: str, _version: tuple[int, int]) -> Config:
    return load_config(Path(path))


@st.cache_resource(show_spinner=False)
def _engine(url: str) -> Engine:
    # one pool per database for every session of the app
    return make_engine(url)


def _missing_tables(engine: Engine) -> list[str]:
    present = set(inspect(engine).get_table_names())
    return sorted(set(Base.metadata.tables) - present)


def context_or_stop() -> DashboardContext:
    """The DashboardContext, or a clear message on the page and st.stop()."""
    path = config_path(None)
    try:
        stat = path.stat()
    except OSError:
        st.error(f"No config file at {md(path)}: set MARGINWATCH_CONFIG to your marginwatch.toml.")
        st.stop()
    try:
        config = _config(str(path.resolve()), (stat.st_mtime_ns, stat.st_size))
    except ConfigError as exc:
        st.error("The config file cannot be used:\n\n" + "\n".join(f"- {md(p)}" for p in exc.problems))
        st.stop()
    url = normalise_url(config.database_url)
    parsed = make_url(url)
    if (
        parsed.get_backend_name() == "sqlite"
        and parsed.database not in (None, "", ":memory:")
        and not Path(parsed.database).exists()
    ):
        # connecting would create an empty file: say what to do instead
        st.error(f"No database at {md(parsed.database)}: {SETUP_HINT}.")
        st.stop()
    engine = _engine(url)
    try:
        missing = _missing_tables(engine)
    except Exception as exc:  # unreachable server, bad credentials: say so, keep going on rerun
        first = (str(exc).splitlines() or [""])[0]
        log.warning("the dashboard cannot read the database: %s: %s", type(exc).__name__, first)
        st.error(f"Cannot read the database ({md(type(exc).__name__)}: {md(first)}).")
        st.stop()
    if missing:
        st.error(f"The database has no marginwatch schema (missing: {md(', '.join(missing))}): {SETUP_HINT}.")
        st.stop()
    return DashboardContext(config, path, engine, session_factory(engine))
