"""A real Prometheus (Debian's `prometheus` package) for the tests: started on 127.0.0.1
with its own data directory, queried through its HTTP API, waited on by condition."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.helpers import free_port, require_system_part

PACKAGES = {"prometheus": "prometheus", "promtool": "prometheus", "amtool": "prometheus-alertmanager"}


def tool(name: str) -> str:
    """The path of a Prometheus tool; skips (fails under CI=true) when it is not installed."""
    path = shutil.which(name) or (f"/usr/bin/{name}" if Path(f"/usr/bin/{name}").exists() else None)
    package = PACKAGES[name]
    require_system_part(
        None if path else f"{name} not found",
        f"{name} (Debian package {package})",
        f"apt-get install --no-install-recommends {package} (as .ci/run does)",
    )
    assert path is not None
    return path


def wait_until(condition: Callable[[], Any], what: str, timeout: float = 60.0, every: float = 0.25) -> Any:
    """`condition()`'s first truthy value; AssertionError naming `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = condition()
        if last:
            return last
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what} (last: {last!r})")


def sample_value(sample: dict[str, Any]) -> float:
    return float(sample["value"][1])


def finite(samples: list[dict[str, Any]]) -> bool:
    return any(math.isfinite(sample_value(s)) for s in samples)


class Prometheus:
    """`prometheus` with `config` (YAML text) written in `workdir`, beside `files` (name ->
    text: the rule files it names)."""

    def __init__(self, workdir: Path, config: str, files: dict[str, str] | None = None) -> None:
        self.binary = tool("prometheus")
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        for name, text in (files or {}).items():
            (workdir / name).write_text(text)
        self.config_file = workdir / "prometheus.yml"
        self.config_file.write_text(config)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = workdir / "prometheus.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [
                    self.binary,
                    f"--config.file={self.config_file}",
                    f"--storage.tsdb.path={self.workdir / 'data'}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        wait_until(self._ready, "Prometheus to be ready", timeout=30)

    def _ready(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"prometheus exited with {self.process.returncode}:\n{self.log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as reply:  # noqa: S310 - loopback
                return reply.status == 200
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return False

    def api(self, path: str, **params: str) -> Any:
        """GET /api/v1/`path`: its `data`; AssertionError with Prometheus's reason otherwise."""
        query = urllib.parse.urlencode(params)
        try:
            with urllib.request.urlopen(f"{self.url}/api/v1/{path}?{query}", timeout=10) as reply:  # noqa: S310
                body = json.load(reply)
        except urllib.error.HTTPError as exc:
            body = json.loads(exc.read() or b"{}")
        assert body.get("status") == "success", f"{path} {params}: {body}"
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        """An instant query: its samples (`metric` labels, `value` [time, "text"])."""
        data = self.api("query", query=expr)
        assert data["resultType"] == "vector", (expr, data)
        return data["result"]

    def wait_for(self, expr: str, what: str, timeout: float = 60.0) -> list[dict[str, Any]]:
        """The samples of `expr` once there are any."""
        return wait_until(lambda: self.query(expr), what, timeout)

    def firing(self, alertname: str) -> list[dict[str, Any]]:
        return [
            a for a in self.api("alerts")["alerts"] if a["labels"]["alertname"] == alertname and a["state"] == "firing"
        ]

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
