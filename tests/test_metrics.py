"""The metrics endpoint of `marginwatch poll` and `marginwatch demo` (docs/deploy.md): the
fixed names with their types, exposition that promtool accepts, the config keys, a port
already taken, and the figures aged at each scrape (a stopped poller never reads fresh).
Through a real Prometheus: tests/test_prometheus.py."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from config.settings import ConfigError, parse_config
from readmodels.accounts import AccountView
from readmodels.exporter import MetricsExporter
from readmodels.metrics import aged
from store.db import make_engine, session_factory, upgrade
from tests.alert_scenario import scenario, write_toml
from tests.helpers import free_port, run_cli, running_simulator
from tests.prometheus_server import tool, wait_until

ROOT = Path(__file__).resolve().parents[1]
MARGINWATCH = str(Path(sys.executable).parent / "marginwatch")

# issue 21: the names rules and dashboards rely on, with their Prometheus types
FIXED = {
    "marginwatch_account_health": "gauge",
    "marginwatch_account_level": "gauge",
    "marginwatch_account_liquidation_distance_ratio": "gauge",
    "marginwatch_account_liquidation_distance_sigma": "gauge",
    "marginwatch_account_touch_probability_24h": "gauge",
    "marginwatch_account_equity": "gauge",
    "marginwatch_account_maintenance_margin": "gauge",
    "marginwatch_account_topup_to_target": "gauge",
    "marginwatch_account_data_age_seconds": "gauge",
    "marginwatch_account_poll_errors_total": "counter",
    "marginwatch_position_liquidation_distance_ratio": "gauge",
    "marginwatch_poll_cycle_seconds": "histogram",
    "marginwatch_last_cycle_timestamp_seconds": "gauge",
    "marginwatch_alert_deliveries_pending": "gauge",
    "marginwatch_alert_deliveries_failed_total": "counter",
}


def types(exposition: str) -> dict[str, str]:
    """name -> type from the `# TYPE` lines (a counter's name with its _total, as scraped)."""
    found = {}
    for name, kind in re.findall(r"^# TYPE (\S+) (\S+)$", exposition, re.MULTILINE):
        found[name + "_total" if kind == "counter" and not name.endswith("_total") else name] = kind
    return found


def scrape(port: int) -> str:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
            return reply.read().decode()
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return ""


def value(exposition: str, series: str) -> float | None:
    match = re.search(rf"^{re.escape(series)} (\S+)$", exposition, re.MULTILINE)
    return float(match.group(1)) if match else None


def lint(exposition: str) -> None:
    """`promtool check metrics`: no problems (exit 0, nothing said)."""
    done = subprocess.run([tool("promtool"), "check", "metrics"], input=exposition, capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout + done.stderr == "", done.stdout + done.stderr


@dataclass
class Command:
    process: subprocess.Popen[bytes]
    port: int
    log: Path

    def wait_for(self, condition: Callable[[str], bool], what: str) -> str:
        """The first exposition that meets `condition` (the process must stay up meanwhile)."""

        def check() -> str | None:
            assert self.process.poll() is None, f"exited {self.process.returncode}: {self.log.read_text()[-2000:]}"
            text = scrape(self.port)
            return text if text and condition(text) else None

        return wait_until(check, what, timeout=90)

    def stop(self) -> None:
        """SIGTERM: the command ends cleanly and its metrics port closes."""
        self.process.send_signal(signal.SIGTERM)
        assert self.process.wait(60) == 0, self.log.read_text()[-2000:]
        with pytest.raises(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=2):
            pass


@pytest.fixture(scope="module")
def commands(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Command]]:
    """`marginwatch poll` (one account on the simulator) and `marginwatch demo`, each with
    --metrics-port, started together: their start-ups overlap."""
    tmp = tmp_path_factory.mktemp("commands")
    with running_simulator(scenario()) as sim:
        config = write_toml(
            {
                "poll_interval_seconds": 1.0,
                "database_url": f"sqlite:///{tmp / 'marginwatch.db'}",
                "accounts": [
                    {
                        "name": "main",
                        "exchange": "binanceusdm",
                        "key_env": "MW_METRICS_KEY",
                        "secret_env": "MW_METRICS_SECRET",
                        "base_url": sim.base_url,
                    }
                ],
                "alerts": {"email": {"host": "127.0.0.1", "port": free_port(), "to": ["risk@example.org"]}},
            },
            tmp / "marginwatch.toml",
        )
        env = {**os.environ, "MW_METRICS_KEY": "alert-key", "MW_METRICS_SECRET": "alert-secret"}
        started = {}
        for name, args, cwd in (
            ("poll", ["poll", "--config", str(config)], tmp),
            ("demo", ["demo", "--no-dashboard", "--interval", "1"], tmp / "demo"),
        ):
            cwd.mkdir(exist_ok=True)
            port, log = free_port(), tmp / f"{name}.log"
            process = subprocess.Popen(
                [MARGINWATCH, *args, "--metrics-port", str(port)],
                cwd=cwd,
                env=env,
                stdout=log.open("wb"),
                stderr=subprocess.STDOUT,
            )
            started[name] = Command(process, port, log)
        try:
            yield started
        finally:
            for command in started.values():
                if command.process.poll() is None:
                    command.process.kill()
                    command.process.wait(30)


def test_poll_serves_the_fixed_names(commands: dict[str, Command]) -> None:
    """`marginwatch poll --metrics-port`: every fixed name with its type, real figures once
    a cycle is stored, exposition promtool accepts; SIGTERM ends it and the port closes."""
    poll = commands["poll"]
    level = 'marginwatch_account_level{account="main",exchange="binanceusdm"}'
    text = poll.wait_for(lambda t: value(t, level) == 0, "the account's level after a cycle")
    poll.stop()
    assert "metrics: http://127.0.0.1:" in poll.log.read_text()
    assert FIXED.items() <= types(text).items(), set(FIXED.items()) - set(types(text).items())
    assert value(text, "marginwatch_poll_cycle_seconds_count") >= 1
    assert value(text, 'marginwatch_account_equity{account="main",exchange="binanceusdm"}') > 0
    assert value(text, 'marginwatch_account_poll_errors_total{account="main",exchange="binanceusdm"}') == 0
    # the configured channel, counted from 0 before any delivery
    assert value(text, 'marginwatch_alert_deliveries_failed_total{channel="email"}') == 0
    assert value(text, "marginwatch_poll_interval_seconds") == 1
    assert "_created" not in text
    lint(text)


def test_demo_serves_metrics(commands: dict[str, Command]) -> None:
    """`marginwatch demo --metrics-port`: the demo's critical account at level 2, once polled
    (before its first poll an account has no fresh data: stale, 3)."""
    demo = commands["demo"]
    critical = 'marginwatch_account_level{account="okx-near-liquidation",exchange="okx"}'
    text = demo.wait_for(lambda t: value(t, critical) not in (None, 3.0), "the critical account polled")
    demo.stop()
    assert value(text, critical) == 2
    assert value(text, 'marginwatch_account_level{account="binance-withdraw-key",exchange="binanceusdm"}') == 4
    lint(text)


def test_config_keys() -> None:
    base = {"accounts": []}
    config = parse_config({**base, "metrics_port": 9799})
    assert (config.metrics_port, config.metrics_host) == (9799, "127.0.0.1")
    assert parse_config(base).metrics_port is None  # off unless set
    for key, bad in (("metrics_port", 70000), ("metrics_port", -1), ("metrics_host", "0.0.0.0; rm -rf /")):
        with pytest.raises(ConfigError) as caught:
            parse_config({**base, key: bad}, "m.toml")
        assert caught.value.problems[0].startswith(f"m.toml: {key}: "), caught.value.problems


def test_a_port_taken_is_one_clear_line(tmp_path: Path) -> None:
    config = write_toml({"database_url": f"sqlite:///{tmp_path / 'm.db'}", "accounts": []}, tmp_path / "m.toml")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, _, err = run_cli("poll", "--config", str(config), "--metrics-port", str(port))
    assert code == 2
    assert err.startswith(f"marginwatch: metrics: cannot listen on 127.0.0.1:{port} (")


def _view(**changes: object) -> AccountView:
    view = AccountView(
        account_id=1,
        name="main",
        exchange="okx",
        collateral="USDT",
        state="active",
        state_reason=None,
        stale=False,
        age_seconds=5.0,
        last_error=None,
        health=1.2,
        worst_health=1.2,
        equity=700.0,
        maintenance_margin=580.0,
        margin_ratio=0.83,
        topup_to_target=150.0,
        nearest_distance=0.02,
        positions=1,
        snapshot_id=7,
        key_status="read-only",
        risk_level=2,
    )
    return replace(view, **changes)


def test_figures_age_at_each_scrape() -> None:
    """A read of the store ages until the next one: a poller that stopped reads stale."""
    read = datetime(2026, 1, 1, tzinfo=UTC)
    assert aged(_view(), read, read + timedelta(seconds=10), 30).level == "critical"
    later = aged(_view(), read, read + timedelta(seconds=26), 30)
    assert later.age_seconds == 31 and later.level == "stale"
    assert aged(_view(state="refused"), read, read + timedelta(hours=1), 30).level == "not watched"
    never = _view(age_seconds=None, stale=True)
    assert aged(never, read, read + timedelta(hours=1), 30) == never
    # a clock stepping back never makes data younger than it was read
    assert aged(_view(), read, read - timedelta(seconds=60), 30).age_seconds == 5


def test_a_failed_store_read_is_counted_and_keeps_the_last_figures(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"sqlite:///{tmp_path / 'm.db'}"
    upgrade(url)
    engine = make_engine(url)
    exporter = MetricsExporter(session_factory(engine), 90, {}, 30, ["email"])
    try:
        exporter.refresh_later().result(30)
        first = exporter.figures.state
        assert first is not None and first.deliveries_failed == {"email": 0}
        with engine.begin() as connection:  # the schema goes from under the reader
            connection.execute(text("ALTER TABLE accounts RENAME TO accounts_gone"))
        exporter.refresh_later().result(30)
        assert exporter.figures.state is first
        assert exporter.registry.get_sample_value("marginwatch_metrics_refresh_failures_total") == 1
        assert "metrics: cannot read the store (OperationalError" in caplog.text
    finally:
        exporter.close()
