"""Hostile input files: clear one-line errors, no crash, no hang."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from config.settings import ConfigError, load_config
from tests.helpers import run_cli


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda d: d, "not a regular file"),  # a directory
        (lambda d: Path("/dev/zero"), "not a regular file"),  # endless device
        (lambda d: _sparse(d / "huge.json", 64 * 1024 * 1024), "too large"),  # 64 MB
        (lambda d: _write(d / "nan.json", '{"wallet_balance": Infinity}'), "Infinity is not a number"),
        (lambda d: _write(d / "deep.json", "[" * 200_000 + "]" * 200_000), "nested too deeply"),
        (lambda d: _write(d / "bin.json", b"\xff\xfe\x00garbage"), "cannot read as UTF-8"),
        (lambda d: _loop(d / "loop.json"), "cannot read"),
    ],
)
def test_hostile_snapshot_files(tmp_path: Path, make, expected: str) -> None:
    code, out, err = run_cli("risk", str(make(tmp_path)))
    assert code == 2 and out == "" and expected in err and err.count("\n") == 1, err


def _write(path: Path, content: str | bytes) -> Path:
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    return path


def _sparse(path: Path, size: int) -> Path:
    with path.open("wb") as f:
        f.truncate(size)
    return path


def _loop(path: Path) -> Path:
    os.symlink(path, path)  # a link to itself
    return path


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("poll_interval_seconds = inf\n", "poll_interval_seconds"),
        ("target_health = nan\n", "target_health"),
        ("[[accounts]]\n" + "x = [" * 5000 + "]" * 5000 + "\n", "not valid TOML"),
        ("database_url = 42\n", "database_url"),
        (
            '[[accounts]]\nname = "../../etc"\nexchange = "binanceusdm"\nkey_env = "K"\nsecret_env = "S"\n',
            "accounts[0].name",
        ),
    ],
)
def test_hostile_config_files(tmp_path: Path, content: str, expected: str) -> None:
    path = tmp_path / "marginwatch.toml"
    path.write_text(content)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert any(expected in p for p in caught.value.problems), caught.value.problems


def test_huge_config_is_refused_without_reading_it(tmp_path: Path) -> None:
    path = _sparse(tmp_path / "marginwatch.toml", 256 * 1024 * 1024)
    with pytest.raises(ConfigError, match="larger than"):
        load_config(path)


# --- issue 16: files that hang, numbers that overflow, URLs that crash -------------------------

CLI = Path(sys.executable).with_name("marginwatch")
DEMO = json.loads((Path(__file__).parent.parent / "examples" / "demo-snapshot.json").read_text())


def _run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """The real CLI in its own process: a hang would be a timeout here, not a stuck suite."""
    command = [str(CLI)] if CLI.exists() else [sys.executable, "-c", "from cli.main import app; app()"]
    return subprocess.run([*command, *args], capture_output=True, text=True, timeout=60, cwd=cwd, check=False)


def _one_line_exit_2(result: subprocess.CompletedProcess[str] | tuple[int, str, str], expected: str) -> None:
    code, out, err = (
        (result.returncode, result.stdout, result.stderr) if isinstance(result, subprocess.CompletedProcess) else result
    )
    assert code == 2, err
    assert out == "" and err.count("\n") == 1 and expected in err, err
    assert "Traceback" not in err


def _fifo(path: Path) -> Path:
    os.mkfifo(path)  # nobody ever writes: opening it for reading would wait forever
    return path


def _snapshot(tmp: Path, **changes: object) -> Path:
    doc = copy.deepcopy(DEMO)
    for dotted, value in changes.items():
        target: Any = doc
        *parents, last = dotted.split("__")
        for part in parents:
            target = target[int(part)] if part.isdigit() else target[part]
        target[int(last) if last.isdigit() else last] = value
    path = tmp / "snapshot.json"
    path.write_text(json.dumps(doc))
    return path


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda d: _fifo(d / "fifo.json"), "not a regular file (a FIFO)"),
        (
            lambda d: _snapshot(d, wallet_balance=10**400),
            "wallet_balance: must be <= 1e+15, got an integer of 401 digits",
        ),
        (lambda d: _snapshot(d, positions__0__mark_price=1e308), "positions[0].mark_price: must be <= 1e+12"),
        (lambda d: _snapshot(d, positions__0__contracts=1e-300), "positions[0].contracts: must be >= 1e-12"),
        (lambda d: _snapshot(d, positions__1__leverage=1e9), "positions[1].leverage: must be <= 10000"),
        (lambda d: _write(d / "inf.json", json.dumps(DEMO).replace("42000.0", "1e400")), "must be a finite"),
        (lambda d: _write(d / "huge-int.json", '{"wallet_balance": 1' + "0" * 5000 + "}"), "not valid JSON"),
    ],
    ids=["fifo", "int-10**400", "mark-1e308", "contracts-1e-300", "leverage-1e9", "float-1e400", "int-5000-digits"],
)
def test_hostile_snapshot_files_one_line_exit_2(tmp_path: Path, make, expected: str) -> None:
    path = make(tmp_path)
    # a FIFO in its own process (a hang would be a timeout there); the others in this one
    result = _run("risk", str(path)) if path.is_fifo() else run_cli("risk", str(path))
    _one_line_exit_2(result, expected)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "not a regular file (a FIFO)"),
        ("[alerts]\nrepeat_warning_minutes = 1e300\n", "alerts.repeat_warning_minutes: Input should be less than"),
        ("[alerts]\nrepeat_critical_minutes = 1e300\n", "alerts.repeat_critical_minutes"),
        ("[alerts]\ndelivery_lease_seconds = 1e300\n", "alerts.delivery_lease_seconds"),
        ("retention_days = 1e300\n", "retention_days"),
        ("poll_interval_seconds = 1e300\n", "poll_interval_seconds"),
        ("stale_after_seconds = 1e300\n", "stale_after_seconds"),
        (
            '[[accounts]]\nname = "a"\nexchange = "binanceusdm"\n'
            "[accounts.alerts.rules]\nrepeat_warning_minutes = 1e300\n",
            "alerts.rules.repeat_warning_minutes",
        ),
        ('database_url = "nonsense"\n', "database_url: not a database URL"),
        ('database_url = "mysql://u:p@h/db"\n', "database_url: unsupported database 'mysql'"),
        ('database_url = "sqlite:////nonexistent/folder/x.db"\n', "database_url: cannot use sqlite:////nonexistent"),
        ('database_url = "postgresql://mw:hunter2@127.0.0.1:1/db"\n', "database_url: cannot use postgresql://mw:***@"),
    ],
    ids=[
        "fifo",
        "repeat-warning",
        "repeat-critical",
        "lease",
        "retention",
        "interval",
        "stale",
        "account-rules",
        "url-garbage",
        "url-mysql",
        "url-no-folder",
        "url-refused",
    ],
)
def test_hostile_config_files_one_line_exit_2(tmp_path: Path, content: str | None, expected: str) -> None:
    config = tmp_path / "marginwatch.toml"
    if content is None:
        result: Any = _run("status", "--config", str(_fifo(config)))
    else:
        config.write_text(content)
        config.chmod(0o600)  # else a password in database_url adds a warning line (tested below)
        result = run_cli("status", "--config", str(config))
    _one_line_exit_2(result, expected)
    assert "hunter2" not in str(result)  # a database password is never printed


def test_a_config_or_secrets_file_readable_by_others_is_warned_about(tmp_path: Path) -> None:
    config = tmp_path / "marginwatch.toml"
    config.write_text('database_url = "postgresql://mw:hunter2@127.0.0.1:1/db"\n')
    config.chmod(0o644)
    _, _, err = run_cli("status", "--config", str(config))
    assert f"warning: {config} holds secrets and can be read by anyone (mode 0644): chmod 600" in err
    config.chmod(0o600)
    assert "warning" not in run_cli("status", "--config", str(config))[2]
    config.write_text(f'database_url = "sqlite:///{tmp_path / "x.db"}"\n')  # no secret in it: no warning
    config.chmod(0o644)
    assert "warning" not in run_cli("status", "--config", str(config))[2]
    (tmp_path / ".streamlit").mkdir()
    secrets = tmp_path / ".streamlit" / "secrets.toml"
    secrets.write_text('K = "v"\n')
    secrets.chmod(0o640)
    from config.secrets import secrets_file_warning

    assert "can be read by its group (mode 0640)" in (secrets_file_warning(secrets) or "")
    secrets.chmod(0o600)
    assert secrets_file_warning(secrets) is None


def test_dev_zero_as_config_is_refused_at_once() -> None:
    _one_line_exit_2(_run("status", "--config", "/dev/zero"), "not a regular file (a character device)")


def test_a_secrets_file_that_is_a_fifo_or_too_large_is_refused(tmp_path: Path) -> None:
    from config.secrets import load_secrets_file

    fifo = _fifo(tmp_path / "secrets.toml")
    script = f"import pathlib, config.secrets as s; s.load_secrets_file(pathlib.Path({str(fifo)!r}))"
    result = subprocess.run(  # in its own process: a regression would hang there, not the suite
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).parent.parent,
        check=False,
    )
    assert result.returncode == 1 and "not a regular file (a FIFO)" in result.stderr
    big = _sparse(tmp_path / "big.toml", 8 * 1024 * 1024)
    with pytest.raises(ConfigError, match="too large"):
        load_secrets_file(big)


def test_hostile_symbols_and_names_leave_risk_running(tmp_path: Path) -> None:
    """Rich markup in every text field of a snapshot (exchange-controlled): printed as is."""
    hostile = "[/x][link=https://evil.example]y[/link][bold]"
    doc = copy.deepcopy(DEMO)
    doc["account"], doc["collateral"] = hostile, hostile
    for i, position in enumerate(doc["positions"]):
        position["symbol"] = f"{hostile}{i}"
    path = tmp_path / "hostile.json"
    path.write_text(json.dumps(doc))
    code, out, err = run_cli("risk", str(path), "--shocks=-0.5,-0.9")  # liquidates: symbols in the stress table too
    assert code == 0, err
    assert "[/x]" in out and "evil.example" in out


ZERO_IS_NONE = ("volatility", "exchange_liquidation_price")


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_the_engine_stays_finite_anywhere_within_the_bounds(data: st.DataObject) -> None:
    """Every number at its bound, or anywhere between: the report is finite JSON."""
    from margin.report import risk_report
    from margin.snapshot import SNAPSHOT_BOUNDS, parse_snapshot

    def number(low: float, high: float) -> float:
        if low > 0:
            return data.draw(st.sampled_from([low, high]) | st.floats(low, high).filter(lambda v: v > 0))
        return data.draw(
            st.sampled_from([low, high, 0.0]) | st.floats(low, high).filter(lambda v: v == 0 or abs(v) >= 1e-12)
        )

    bounds = SNAPSHOT_BOUNDS["position"]
    positions = []
    for i in range(data.draw(st.integers(1, 3))):
        mode = data.draw(st.sampled_from(["cross", "isolated"]))
        position = {
            "symbol": f"S{i}",
            "side": data.draw(st.sampled_from(["long", "short"])),
            "margin_mode": mode,
            "maintenance_margin_rate": data.draw(st.sampled_from([0.0, 0.004, 0.5, 0.999999])),
            **{k: number(*bounds[k]) for k in ("contracts", "contract_size", "entry_price", "mark_price")},
            **{k: number(*bounds[k]) for k in ("leverage", "amount_step")},
            # 0 means "none" for these two
            **{k: data.draw(st.just(0.0)) if data.draw(st.booleans()) else number(*bounds[k]) for k in ZERO_IS_NONE},
            "maintenance_amount": number(*bounds["maintenance_amount"]),
        }
        if mode == "isolated":
            position["isolated_margin"] = number(*bounds["isolated_margin"])
        positions.append(position)
    doc = {
        "exchange": data.draw(st.sampled_from(["binanceusdm", "bybit", "okx", "gate", "hyperliquid", "other"])),
        "account": "a",
        "collateral": "USDT",
        "wallet_balance": number(*SNAPSHOT_BOUNDS["account"]["wallet_balance"]),
        "taker_fee": data.draw(st.sampled_from([0.0, 0.0005, 0.999])),
        "positions": positions,
    }
    snapshot = parse_snapshot(doc)  # everything drawn is within the bounds
    report = risk_report(snapshot, data.draw(st.sampled_from([1.01, 1.5, 1000.0])), (-0.99, -0.5, 0.5, 100.0))
    json.dumps(report, allow_nan=False)  # raises on inf or NaN anywhere
