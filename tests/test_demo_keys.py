"""`marginwatch snapshot --account` on the running demo's accounts (issue 17's newcomer
path): the demo leaves its made-up simulator keys in `.marginwatch-demo/secrets.toml`
(owner-only), read for the demo's own config and accounts on this machine only."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

from cli.demo import demo_scenario
from tests.helpers import running_simulator

SETUP = """
import sys
from cli.demo import DEMO_DIR, demo_config, demo_scenario, write_demo_secrets
from config.files import write_config
settings = demo_config(demo_scenario(), sys.argv[1], "sqlite:///" + sys.argv[2])
DEMO_DIR.mkdir(mode=0o700)
write_config(settings, DEMO_DIR / "marginwatch.toml")
write_demo_secrets(settings)
"""


def _run(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MARGINWATCH_DEMO_")}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[1])
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def test_snapshot_reads_the_demo_s_keys_for_the_demo_s_config_only(tmp_path: Path) -> None:
    with running_simulator(demo_scenario()) as sim:
        done = _run(tmp_path, "-c", SETUP, sim.base_url, str(tmp_path / "demo.db"))
        assert done.returncode == 0, done.stderr
        secrets = tmp_path / ".marginwatch-demo" / "secrets.toml"
        assert stat.S_IMODE(secrets.stat().st_mode) == 0o600
        # found by itself from the demo's folder, as the README says
        got = _run(tmp_path, "-m", "cli.main", "snapshot", "--account", "binance-main")
        assert got.returncode == 0, got.stderr
        doc = json.loads(got.stdout)
        assert doc["exchange"] == "binanceusdm" and doc["positions"]
        # the same config anywhere else reads no demo key
        elsewhere = tmp_path / "copy.toml"
        shutil.copy(tmp_path / ".marginwatch-demo" / "marginwatch.toml", elsewhere)
        refused = _run(tmp_path, "-m", "cli.main", "snapshot", "--account", "binance-main", "--config", str(elsewhere))
        assert refused.returncode == 2
        assert "credential variable(s) not set" in refused.stderr
        assert "demo-secret" not in refused.stderr + refused.stdout
