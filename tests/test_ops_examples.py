"""What a fund loads from examples/ (docs/deploy.md): the Prometheus rules (promtool's
checks and unit tests), the scrape config, the Alertmanager route (pages on critical
only), the Grafana dashboard (importable, every name one the poller exports) and the
systemd units (systemd-analyze verify, no warnings; hardened). The rules and the
dashboard also run against a real Prometheus in tests/test_prometheus.py."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from readmodels.exporter import MetricsExporter
from store.db import make_engine, session_factory
from tests.helpers import require_system_part
from tests.prometheus_server import tool

ROOT = Path(__file__).resolve().parents[1]
PROMETHEUS = ROOT / "examples" / "prometheus"
DASHBOARD = ROOT / "examples" / "grafana" / "marginwatch.json"
UNITS = sorted((ROOT / "examples" / "systemd").glob("*.service"))


def run(*args: str, cwd: Path = PROMETHEUS) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=60)


def exported_names(tmp_path: Path) -> set[str]:
    """Every series name the poller's exporter can serve (a counter's with _total, a
    histogram's _bucket, _sum and _count)."""
    exporter = MetricsExporter(session_factory(make_engine(f"sqlite:///{tmp_path / 'm.db'}")), 90, {}, 30)
    try:
        names = set()
        for metric in exporter.registry.collect():
            suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count")}.get(metric.type, ("",))
            names |= {metric.name + suffix for suffix in suffixes}
        return names
    finally:
        exporter.close()


def test_rules_pass_promtool() -> None:
    promtool = tool("promtool")
    checked = run(promtool, "check", "rules", "marginwatch-rules.yml")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = run(promtool, "test", "rules", "marginwatch-rules.test.yml")
    assert tested.returncode == 0 and "SUCCESS" in tested.stdout, tested.stdout + tested.stderr


def test_every_alert_has_a_unit_test_that_fires_it() -> None:
    rules = yaml.safe_load((PROMETHEUS / "marginwatch-rules.yml").read_text())
    alerts = {r["alert"] for g in rules["groups"] for r in g["rules"] if "alert" in r}
    tests = yaml.safe_load((PROMETHEUS / "marginwatch-rules.test.yml").read_text())
    fired = {c["alertname"] for t in tests["tests"] for c in t.get("alert_rule_test", []) if c["exp_alerts"]}
    assert alerts == fired
    assert all(r["labels"]["severity"] in ("critical", "warning") for g in rules["groups"] for r in g["rules"])


def test_a_broken_expectation_fails_promtool(tmp_path: Path) -> None:
    """The unit tests can fail: one expected value changed and promtool says where."""
    shutil.copy(PROMETHEUS / "marginwatch-rules.yml", tmp_path)
    text = (PROMETHEUS / "marginwatch-rules.test.yml").read_text()
    assert text.count("60.71%") == 1
    (tmp_path / "t.yml").write_text(text.replace("60.71%", "61%"))
    failed = run(tool("promtool"), "test", "rules", "t.yml", cwd=tmp_path)
    assert failed.returncode == 1 and "MarginwatchAccountCritical" in failed.stdout + failed.stderr


def test_scrape_config_passes_promtool() -> None:
    checked = run(tool("promtool"), "check", "config", "prometheus.yml")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    # the "poller stopped" rule looks for this job's up series
    assert [job["job_name"] for job in config["scrape_configs"]] == ["marginwatch"]
    assert config["rule_files"] == ["marginwatch-rules.yml"]


def test_alertmanager_pages_on_critical_only() -> None:
    amtool = tool("amtool")
    checked = run(amtool, "check-config", "alertmanager.yml")
    assert checked.returncode == 0, checked.stdout + checked.stderr

    def receivers(*labels: str) -> set[str]:
        done = run(amtool, "config", "routes", "test", "--config.file=alertmanager.yml", *labels)
        assert done.returncode == 0, done.stdout + done.stderr
        return set(done.stdout.strip().split(","))

    assert receivers("severity=critical", "alertname=MarginwatchAccountCritical", "account=a") == {"pager", "team-chat"}
    assert receivers("severity=critical", "alertname=MarginwatchPollerStopped") == {"pager", "team-chat"}
    for alert in ("MarginwatchAccountWarning", "MarginwatchAccountStale", "MarginwatchAlertDeliveriesFailed"):
        assert receivers("severity=warning", f"alertname={alert}") == {"team-chat"}


def test_rules_and_dashboard_use_only_exported_names(tmp_path: Path) -> None:
    exported = exported_names(tmp_path)
    used = set(re.findall(r"marginwatch_[a-z0-9_]+", (PROMETHEUS / "marginwatch-rules.yml").read_text()))
    used |= set(re.findall(r"marginwatch_[a-z0-9_]+", DASHBOARD.read_text()))
    assert used and used <= exported, used - exported


def test_dashboard_is_importable() -> None:
    """The classic JSON model as Grafana's "Export for sharing externally" writes it: one
    Prometheus input that every panel, query and variable names; unique ids and query ids;
    panels inside the 24-column grid and not overlapping."""
    doc = json.loads(DASHBOARD.read_text())
    assert [i["name"] for i in doc["__inputs"]] == ["DS_PROMETHEUS"]
    assert doc["__inputs"][0]["type"] == "datasource" and doc["__inputs"][0]["pluginId"] == "prometheus"
    source = {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}
    panels = doc["panels"]
    assert len({p["id"] for p in panels}) == len(panels)
    cells: set[tuple[int, int]] = set()
    for panel in panels:
        assert panel["datasource"] == source, panel["title"]
        assert panel["targets"] and len({t["refId"] for t in panel["targets"]}) == len(panel["targets"])
        assert all(t["datasource"] == source and t["expr"] for t in panel["targets"]), panel["title"]
        box = panel["gridPos"]
        assert box["x"] >= 0 and box["w"] > 0 and box["x"] + box["w"] <= 24, panel["title"]
        mine = {(x, y) for x in range(box["x"], box["x"] + box["w"]) for y in range(box["y"], box["y"] + box["h"])}
        assert not mine & cells, f"{panel['title']} overlaps another panel"
        cells |= mine
    assert all(v["datasource"] == source for v in doc["templating"]["list"])
    titles = {p["title"] for p in panels}
    assert {"Accounts, worst first", "Data age", "Alert delivery queue", "Equity and maintenance margin"} <= titles


# --- systemd --------------------------------------------------------------------------------


def systemd_analyze() -> str:
    path = shutil.which("systemd-analyze")
    require_system_part(
        None if path else "systemd-analyze not found",
        "systemd-analyze (Debian package systemd)",
        "apt-get install systemd (as .ci/run does)",
    )
    assert path is not None
    return path


def runnable_copies(tmp_path: Path) -> list[Path]:
    """The units with their /opt/marginwatch virtualenv commands pointed at this one's:
    verify checks that ExecStart's program exists."""
    venv_bin = str(Path(sys.executable).parent)
    copies = []
    for unit in UNITS:
        copy = tmp_path / unit.name
        copy.write_text(unit.read_text().replace("/opt/marginwatch/.venv/bin", venv_bin))
        copies.append(copy)
    return copies


def test_systemd_units_verify_without_a_word(tmp_path: Path) -> None:
    analyze = systemd_analyze()
    assert [u.name for u in UNITS] == [
        "marginwatch-dashboard.service",
        "marginwatch-poller.service",
        "marginwatch-watchdog.service",
    ]
    copies = runnable_copies(tmp_path)
    done = run(analyze, "verify", "--man=no", *map(str, copies), cwd=tmp_path)
    # systemd 252 only warns (exit 0) on unknown keys and bad values: any output fails
    assert done.returncode == 0 and done.stdout + done.stderr == "", done.stdout + done.stderr
    # ...and this machine's systemd-analyze does say so for a misspelt key
    typo = tmp_path / "typo.service"
    typo.write_text(copies[1].read_text().replace("NoNewPrivileges=yes", "NoNewPrivilege=yes"))
    assert "Unknown key" in run(analyze, "verify", "--man=no", str(typo), cwd=tmp_path).stderr


def test_systemd_units_are_hardened(tmp_path: Path) -> None:
    analyze = systemd_analyze()
    for unit in runnable_copies(tmp_path):
        text = unit.read_text()
        for directive in (
            "User=marginwatch",
            "ProtectSystem=strict",
            "ProtectHome=yes",
            "PrivateTmp=yes",
            "NoNewPrivileges=yes",
            "UMask=0077",
            "CapabilityBoundingSet=\n",
        ):
            assert directive in text, f"{unit.name}: {directive.strip()}"
        assert re.search(r"^Restart=(on-failure|always)$", text, re.MULTILINE), unit.name
        # exposure 2.0 or less on systemd's 0-10 scale (the threshold is in tenths)
        done = run(analyze, "security", "--offline=yes", "--threshold=20", str(unit), cwd=tmp_path)
        assert done.returncode == 0, done.stdout[-1500:] + done.stderr
    poller = (ROOT / "examples" / "systemd" / "marginwatch-poller.service").read_text()
    assert "EnvironmentFile=/etc/marginwatch/secrets.env" in poller
    dashboard = (ROOT / "examples" / "systemd" / "marginwatch-dashboard.service").read_text()
    assert "EnvironmentFile" not in dashboard  # it never calls an exchange: no keys
    assert "--server.address 127.0.0.1" in dashboard


@pytest.mark.parametrize("unit", [u.name for u in UNITS])
def test_units_run_commands_that_exist(unit: str) -> None:
    """Each unit's marginwatch subcommand is one the CLI has (`poll`, `watchdog`); the
    dashboard's unit runs Streamlit on app/main.py."""
    text = (ROOT / "examples" / "systemd" / unit).read_text()
    match = re.search(r"^ExecStart=/opt/marginwatch/\.venv/bin/marginwatch (\w+)", text, re.MULTILINE)
    if match is None:
        assert "-m streamlit run /opt/marginwatch/app/main.py" in text
        return
    from cli.main import app

    commands = {c.name or c.callback.__name__ for c in app.registered_commands}
    assert match.group(1) in commands
