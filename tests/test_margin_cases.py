"""The published and peer-tested cases (tests/fixtures/margin/cases.json), each run through
the CLI's JSON output."""

from __future__ import annotations

import json

import pytest

from tests.conftest import FIXTURES, get_path, run_cli

CASES = json.loads((FIXTURES / "margin" / "cases.json").read_text())


def test_every_case_is_present() -> None:
    assert len(CASES) == 21
    assert {c["snapshot"]["exchange"] for c in CASES} == {"binanceusdm", "gate", "okx", "bybit", "hyperliquid"}


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_case_through_cli_json(case: dict, write_json) -> None:
    path = write_json(case["snapshot"])
    args = ["risk", str(path), "--format", "json"]
    if "target_health" in case:
        args += ["--target-health", str(case["target_health"])]
    code, out, err = run_cli(*args)
    assert code == 0, err
    report = json.loads(out)
    for field, expected in case["expect"].items():
        got = get_path(report, field)
        tolerance = case["tolerance"]
        if "abs" in tolerance:
            assert got == pytest.approx(expected, abs=tolerance["abs"]), field
        else:
            assert got == pytest.approx(expected, rel=tolerance["rel"]), field
