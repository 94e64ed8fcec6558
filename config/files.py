"""Writing a config file (the demo and the tests hand the dashboard and the poller one)."""

from __future__ import annotations

import os
from pathlib import Path

import tomli_w

from config.settings import Config


def _absolute_sqlite(url: str) -> str:
    """A relative SQLite path made absolute: the reader may run in another directory."""
    scheme, sep, rest = url.partition(":///")
    database, query, params = rest.partition("?")
    if not sep or not scheme.startswith("sqlite") or database in ("", ":memory:") or database.startswith("/"):
        return url
    return f"{scheme}:///{Path(database).resolve()}{query}{params}"


def write_config(config: Config, path: Path) -> Path:
    """`config` as a TOML file (names of credential variables only, as in any config),
    readable by its owner alone."""
    doc = config.model_dump(mode="json", by_alias=True, exclude_defaults=True, exclude_none=True)
    doc["database_url"] = _absolute_sqlite(config.database_url)
    text = tomli_w.dumps(doc)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.chmod(path, 0o600)  # an existing file keeps its mode through O_CREAT
    return path
