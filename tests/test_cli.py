"""The `marginwatch risk` command: bad input is one line and exit 2; good input reads well."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import run_cli

ROOT = Path(__file__).parent.parent
DEMO = ROOT / "examples" / "demo-snapshot.json"


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("not json at all", "not valid JSON (line 1, column 1"),
        ('{"a": NaN}', "NaN is not a number"),
        ("[]", "the snapshot must be a JSON object"),
        ('{"exchange": "binanceusdm", "collateral": "USDT", "wallet_balance": 1, "positions": []}', "account: missing"),
        ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, content: str, expected: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    code, out, err = run_cli("risk", str(path))
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1 and expected in err and str(path) in err
    assert "Traceback" not in err


def test_bad_field_is_named_by_its_path(write_json) -> None:
    doc = json.loads(DEMO.read_text())
    doc["positions"][2]["entry_price"] = -1
    code, _, err = run_cli("risk", str(write_json(doc)))
    assert code == 2
    assert "positions[2].entry_price: must be > 0, got -1" in err


def test_missing_file_and_bad_options(tmp_path: Path) -> None:
    code, _, err = run_cli("risk", str(tmp_path / "nope.json"))
    assert code == 2 and "cannot read" in err
    code, _, err = run_cli("risk", str(DEMO), "--shocks", "-0.2,abc")
    assert code == 2 and "--shocks" in err
    code, _, err = run_cli("risk", str(DEMO), "--target-health", "-1")
    assert code == 2 and "--target-health" in err


def test_json_output_fields() -> None:
    code, out, _ = run_cli("risk", str(DEMO), "--format", "json", "--shocks", "-0.2,-0.1,0.1")
    assert code == 0
    report = json.loads(out)
    account = report["account"]
    assert account["equity"] == pytest.approx(
        account["wallet_balance"] + sum(p["unrealized_pnl"] for p in report["positions"] if p["margin_mode"] == "cross")
    )
    assert account["deficit"] == max(0.0, account["maintenance_margin"] - account["equity"])
    assert account["worst_health"] == min(
        [account["health"]] + [p["health"] for p in report["positions"] if p["health"] is not None]
    )
    assert [s["shock"] for s in report["stress"]["scenarios"]] == [-0.2, -0.1, 0.1]
    for field in (
        "symbol",
        "side",
        "notional",
        "unrealized_pnl",
        "maintenance_margin",
        "liquidation_price",
        "liquidation_price_down",
        "liquidation_price_up",
        "liquidation_side",
        "distance_to_liquidation",
        "distance_sigma",
        "touch_probability_24h",
        "level",
        "exchange_liquidation_price",
        "disagrees_with_exchange",
        "health",
    ):
        assert all(field in p for p in report["positions"]), field
    for p in report["positions"]:  # the nearest of the two sides is the headline (issue 11)
        assert p["liquidation_side"] in ("down", "up")
        assert p["liquidation_price"] == p[f"liquidation_price_{p['liquidation_side']}"]
        assert p["liquidation_price_down"] is None or p["liquidation_price_down"] < p["mark_price"]
        assert p["liquidation_price_up"] is None or p["liquidation_price_up"] > p["mark_price"]
        assert p["distance_sigma"] > 0 and 0 < p["touch_probability_24h"] < 1
        assert p["level"] in ("ok", "warning", "critical")
    assert {p["liquidation_side"] for p in report["positions"]} == {"down", "up"}  # the ETH short: up
    # the account's level and chance are its worst: the isolated LTC's 47 % chance in 24 h
    assert account["level"] == "critical"
    assert account["touch_probability_24h"] == max(p["touch_probability_24h"] for p in report["positions"])
    summary = report["deleverage_summary"]  # nothing to cut at the default target: after = now
    assert summary["nearest_distance_after"] == pytest.approx(
        min(p["distance_to_liquidation"] for p in report["positions"])
    )
    assert summary["touch_probability_24h_after"] == pytest.approx(account["touch_probability_24h"])
    assert report["positions"][2]["health"] is not None  # the isolated one
    assert report["positions"][0]["health"] is None


def test_table_output_shows_the_account() -> None:
    code, out, _ = run_cli("risk", str(DEMO), "--target-health", "10")
    assert code == 0
    assert "binanceusdm / demo" in out
    assert "BTC/USDT long" in out
    assert "Deleverage plan" in out and "reduce" in out
    assert "Stress test" in out


@pytest.mark.skipif(
    shutil.which("marginwatch", path=os.path.dirname(sys.executable)) is None,
    reason="the console script is installed by `make test`",
)
def test_console_script_runs() -> None:
    exe = shutil.which("marginwatch", path=os.path.dirname(sys.executable))
    done = subprocess.run(
        [exe, "risk", str(DEMO), "--format", "json"], capture_output=True, text=True, check=False, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["account_name"] == "demo"


@pytest.mark.parametrize("target", ["1", "0.9", "nan"])
def test_a_target_health_at_or_below_liquidation_is_refused(target: str) -> None:
    code, out, err = run_cli("risk", str(DEMO), "--target-health", target)
    assert code == 2 and out == ""
    assert "--target-health: must be a number > 1" in err


def test_risk_takes_the_accounts_target_and_thresholds_from_the_config(tmp_path: Path, monkeypatch) -> None:
    """One target health everywhere: the account's own target in the config (matched by the
    snapshot's account name), and its alert thresholds for the risk level."""
    monkeypatch.chdir(tmp_path)  # no ./marginwatch.toml here: only --config counts
    monkeypatch.delenv("MARGINWATCH_CONFIG", raising=False)
    account = json.loads(DEMO.read_text())["account"]
    config = tmp_path / "mw.toml"
    config.write_text(
        f"target_health = 1.8\n[alerts]\ntouch_critical_above = 0.9\ntouch_warning_above = 0.3\n"
        f'[[accounts]]\nname = "{account}"\nexchange = "binanceusdm"\nkey_env = "K"\nsecret_env = "S"\n'
        f"target_health = 3.0\n"
    )
    code, out, _ = run_cli("risk", str(DEMO), "--format", "json")
    assert code == 0 and json.loads(out)["target_health"] == 1.5  # no config: the default
    default_level = json.loads(out)["account"]["level"]
    code, out, _ = run_cli("risk", str(DEMO), "--format", "json", "--config", str(config))
    report = json.loads(out)
    assert report["target_health"] == 3.0
    assert report["limits"]["critical_chance"] == 0.9
    # the demo's 46 % chance is critical under the defaults, a warning under these thresholds
    assert (default_level, report["account"]["level"]) == ("critical", "warning")
    code, out, _ = run_cli("risk", str(DEMO), "--format", "json", "--config", str(config), "--target-health", "2")
    assert json.loads(out)["target_health"] == 2.0  # the command line wins


@pytest.mark.parametrize(
    "args",
    [["risk", str(DEMO)], ["--help"], ["status", "--config", "/nonexistent/marginwatch.toml"]],
    ids=["risk", "help", "config-error"],
)
def test_quick_commands_import_neither_ccxt_nor_sqlalchemy_nor_streamlit(args: list[str]) -> None:
    """`risk` on a file, `--help` and a config error start fast: the heavy libraries are
    imported only by the commands that need them (python -X importtime lists every import)."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "cli.main", *args], capture_output=True, text=True, cwd=ROOT
    )
    assert done.returncode in (0, 2), done.stderr[-2000:]
    imported = {line.split("|")[-1].strip().split(".")[0] for line in done.stderr.splitlines() if "|" in line}
    assert not imported & {"ccxt", "sqlalchemy", "streamlit"}
