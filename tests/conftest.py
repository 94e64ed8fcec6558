"""Shared test helpers."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from monitor.cli import app

FIXTURES = Path(__file__).parent / "fixtures"


def get_path(doc: Any, path: str) -> Any:
    """Follow a path like `positions[1].liquidation_price` into a decoded JSON document."""
    for part in re.findall(r"[^.\[\]]+|\[\d+\]", path):
        doc = doc[int(part[1:-1])] if part.startswith("[") else doc[part]
    return doc


def run_cli(*args: str) -> tuple[int, str, str]:
    """Run the real `marginwatch` CLI in-process; returns (exit code, stdout, stderr)."""
    result = CliRunner().invoke(app, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def write_json(tmp_path: Path):
    def write(doc: Any, name: str = "snapshot.json") -> Path:
        path = tmp_path / name
        path.write_text(json.dumps(doc))
        return path

    return write
