"""Start the dashboard as its own process (for `marginwatch demo` and the browser test),
and write the config file it reads."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

from sqlalchemy.engine import make_url

from monitor.config import ENV_VAR, Config

ROOT = Path(__file__).resolve().parents[1]
MAIN = ROOT / "app" / "main.py"


def dashboard_command(port: int) -> list[str]:
    # -P: the working directory stays off sys.path, so no file there can shadow a module
    return [sys.executable, "-P", "-m", "streamlit", "run", str(MAIN), "--server.port", str(port),
            "--server.address", "127.0.0.1", "--server.headless", "true",
            "--browser.gatherUsageStats", "false", "--client.toolbarMode", "minimal"]


def start_dashboard(config_path: Path, port: int, *, cwd: Path = ROOT, env: Mapping[str, str] | None = None,
                    stdout: IO[bytes] | int | None = None,
                    stderr: IO[bytes] | int | None = None) -> subprocess.Popen[bytes]:
    """`streamlit run app/main.py` on 127.0.0.1:`port`, reading `config_path`. Streamlit
    reads .streamlit/secrets.toml (the login) from `cwd`: the project root by default."""
    environment = dict(os.environ if env is None else env)
    environment[ENV_VAR] = str(Path(config_path).resolve())
    return subprocess.Popen(dashboard_command(port), cwd=cwd, env=environment,  # noqa: S603
                            stdout=stdout, stderr=stderr)


def wait_until_up(url: str, timeout: float = 30.0, process: subprocess.Popen[bytes] | None = None) -> None:
    """Return once `url`'s health endpoint answers; TimeoutError otherwise (RuntimeError
    early if `process` exits first)."""
    health = url.rstrip("/") + "/_stcore/health"
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the dashboard exited with status {process.returncode}")
        try:
            with urllib.request.urlopen(health, timeout=2) as reply:  # noqa: S310 - our own http URL
                if reply.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError) as exc:
            last = str(exc)
        time.sleep(0.2)
    raise TimeoutError(f"the dashboard at {url} did not come up in {timeout:g} s ({last})")


def write_config(config: Config, path: Path) -> Path:
    """`config` as a TOML file the dashboard can read (names of credential variables only,
    as in any config). A relative SQLite path is made absolute: the dashboard runs in the
    project root, not necessarily where the caller does."""
    doc = config.model_dump(mode="json", by_alias=True, exclude_defaults=True)
    url = make_url(config.database_url)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        doc["database_url"] = url.set(database=str(Path(url.database).resolve())).render_as_string(
            hide_password=False)
    path.write_text("".join(_toml(doc, "")), encoding="utf-8")
    return path


def _toml(doc: dict[str, Any], prefix: str) -> list[str]:
    """Scalars, then sub-tables, then arrays of tables: the order TOML needs."""
    lines = [f"{key} = {_value(value)}\n" for key, value in doc.items()
             if value is not None and not isinstance(value, dict) and not _tables(value)]
    for key, value in doc.items():
        name = f"{prefix}.{key}" if prefix else key
        if isinstance(value, dict):
            lines += [f"\n[{name}]\n", *_toml(value, name)]
        elif _tables(value):
            for item in value:
                lines += [f"\n[[{name}]]\n", *_toml(item, name)]
    return lines


def _tables(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a valid TOML basic string
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    return repr(value)
