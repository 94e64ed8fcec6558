"""Start the dashboard as its own process (for `marginwatch demo` and the browser test):
app/server.py, Streamlit with marginwatch's edge, never the bare page script."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import tomllib
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

from config.reading import UnreadableFile, read_regular_file
from config.settings import ENV_VAR, MAX_CONFIG_BYTES

ROOT = Path(__file__).resolve().parents[1]
SERVER = ROOT / "app" / "server.py"  # app/main.py behind marginwatch's edge (the login, closed surfaces)
DEMO_PREFIX = "MARGINWATCH_DEMO_"  # cli.demo's credential variables


def dashboard_command(port: int) -> list[str]:
    # -P: the working directory stays off sys.path, so no file there can shadow a module
    return [
        sys.executable,
        "-P",
        "-m",
        "streamlit",
        "run",
        str(SERVER),
        "--server.port",
        str(port),
        "--server.address",
        "127.0.0.1",
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
        "--client.toolbarMode",
        "minimal",
        # an error is a short message on the page, its details in the server log only
        "--client.showErrorDetails",
        "none",
        "--server.enableStaticServing",
        "false",
    ]


def credential_variables(config_path: Path) -> set[str]:
    """The environment variables `config_path` names as holding secrets (every `*_env` key,
    exchange keys, SMTP login and webhook URLs), read even from a config that does not
    validate otherwise."""
    try:
        doc = tomllib.loads(read_regular_file(Path(config_path), MAX_CONFIG_BYTES).decode("utf-8"))
    except (UnreadableFile, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return set()
    names: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if isinstance(key, str) and key.endswith("_env") and isinstance(value, str):
                    names.add(value)
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(doc)
    return names


def dashboard_environment(config_path: Path, base: Mapping[str, str]) -> dict[str, str]:
    """`base` without any credential: the dashboard reads the store, never an exchange, so
    it gets none of the variables the config names, nor the demo's made-up keys."""
    drop = credential_variables(config_path)
    environment = {name: value for name, value in base.items() if name not in drop and not name.startswith(DEMO_PREFIX)}
    environment[ENV_VAR] = str(Path(config_path).resolve())
    return environment


def start_dashboard(
    config_path: Path,
    port: int,
    *,
    cwd: Path = ROOT,
    env: Mapping[str, str] | None = None,
    stdout: IO[bytes] | int | None = None,
    stderr: IO[bytes] | int | None = None,
) -> subprocess.Popen[bytes]:
    """`streamlit run app/server.py` on 127.0.0.1:`port`, reading `config_path`, without the
    credentials the config names in its environment. Streamlit reads
    .streamlit/secrets.toml (the login) from `cwd`: the project root by default."""
    environment = dashboard_environment(config_path, os.environ if env is None else env)
    return subprocess.Popen(  # noqa: S603 - our own command line
        dashboard_command(port),
        cwd=cwd,
        env=environment,
        stdout=stdout,
        stderr=stderr,
    )


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
