"""Hostile input files: clear one-line errors, no crash, no hang."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from config.settings import ConfigError, load_config
from tests.conftest import run_cli


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
