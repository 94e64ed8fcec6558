"""A bad snapshot is told whole: every problem, each naming its field by its path, in the
order a reader meets them; the bounds hold wherever a snapshot is parsed (the poller's
documents too), and an integer too large for a float is named, never an OverflowError."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from margin.snapshot import MAX_LISTED, SnapshotError, parse_snapshot
from tests.helpers import run_cli

ROOT = Path(__file__).parent.parent
DEMO = json.loads((ROOT / "examples" / "demo-snapshot.json").read_text())


def _bad_demo() -> dict:
    doc = copy.deepcopy(DEMO)
    doc["wallet_balance"] = 10**400  # beyond every float
    doc["colour"] = "red"
    doc["positions"][0]["contracts"] = -3
    doc["positions"][0]["tiers"][1]["maintenance_margin_rate"] = "0.5 %"
    doc["positions"][0]["volatility"] = 1e-9  # below the bounds (0 would mean none)
    doc["positions"][1] = "ETH long"
    doc["positions"][2]["entry_price"] = "91000"
    doc["positions"][2]["side"] = "flat"
    return doc


EXPECTED = [
    ("colour", "unknown field"),
    ("wallet_balance", "must be <= 1e+15, got an integer of 401 digits"),
    ("positions[0].contracts", "must be > 0, got -3"),
    ("positions[0].tiers[1].maintenance_margin_rate", "must be a number, got a string '0.5 %'"),
    ("positions[0].volatility", "must be >= 1e-06, got 1e-09"),
    ("positions[1]", "a position must be a JSON object, got a string"),
    ("positions[2].side", "must be one of long, short; got 'flat'"),
    ("positions[2].entry_price", "must be a number, got a string '91000'"),
]


def test_every_problem_is_listed_with_its_path_in_reading_order() -> None:
    with pytest.raises(SnapshotError) as caught:
        parse_snapshot(_bad_demo())
    problems = caught.value.problems
    assert [p.path for p in problems] == [path for path, _ in EXPECTED]
    for problem, (path, text) in zip(problems, EXPECTED, strict=True):
        assert str(problem).startswith(f"{path}: "), problem
        assert text.split(", got")[0] in problem.message, (problem, text)
    assert str(caught.value).startswith(f"{len(EXPECTED)} problems: colour: unknown field; wallet_balance: ")
    assert caught.value.path == "colour"  # the first, for callers that name one field


def test_one_problem_is_raised_as_itself() -> None:
    doc = copy.deepcopy(DEMO)
    doc["positions"][2]["entry_price"] = -5
    with pytest.raises(SnapshotError) as caught:
        parse_snapshot(doc)
    assert str(caught.value) == "positions[2].entry_price: must be > 0, got -5"
    assert caught.value.problems == (caught.value,)


@pytest.mark.parametrize(
    ("path", "value", "named"),
    [
        (("wallet_balance",), 10**400, "wallet_balance: must be <= 1e+15, got an integer of 401 digits"),
        (("taker_fee",), 10**400, "taker_fee: must be < 1, got an integer of 401 digits"),
        (("positions", 0, "mark_price"), -(10**400), "positions[0].mark_price: must be > 0, got an integer of 401"),
        (("positions", 0, "leverage"), 10**5, "positions[0].leverage: must be <= 10000, got 100000"),
        (("positions", 0, "tiers", 0, "max_leverage"), 0.5, "positions[0].tiers[0].max_leverage: must be >= 1"),
    ],
)
def test_the_parser_itself_holds_the_bounds(path: tuple, value: object, named: str) -> None:
    """What the poller parses (no file reader in front of it) meets the same bounds."""
    doc = copy.deepcopy(DEMO)
    target = doc
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    with pytest.raises(SnapshotError, match="^" + named.replace("+", r"\+").replace("[", r"\[").replace("]", r"\]")):
        parse_snapshot(doc)


def test_a_bad_field_beside_a_bad_tier_table_is_still_named() -> None:
    doc = copy.deepcopy(DEMO)
    doc["positions"][0]["tiers"] = "tiered"
    doc["positions"][0]["amount_step"] = 0  # read after the tiers
    with pytest.raises(SnapshotError) as caught:
        parse_snapshot(doc)
    assert [p.path for p in caught.value.problems] == ["positions[0].tiers", "positions[0].amount_step"]


def test_risk_prints_one_line_a_problem(tmp_path: Path) -> None:
    file = tmp_path / "snapshot.json"
    file.write_text(json.dumps(_bad_demo()))
    code, out, err = run_cli("risk", str(file))
    assert code == 2
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == len(EXPECTED)
    for line, (path, _) in zip(lines, EXPECTED, strict=True):
        assert line.startswith(f"marginwatch: {file}: {path}: "), line


def test_a_document_of_thousands_of_problems_is_told_briefly(tmp_path: Path) -> None:
    """Each problem is noted once per path (no quadratic search), and the message and the
    CLI list the first MAX_LISTED and how many more."""
    doc = copy.deepcopy(DEMO)
    doc["positions"] = [{**doc["positions"][0], "contracts": -1}] * 20_000
    with pytest.raises(SnapshotError) as caught:
        parse_snapshot(doc)
    assert len(caught.value.problems) == 20_000
    assert str(caught.value).endswith(f"and {20_000 - MAX_LISTED} more")
    doc["positions"] = doc["positions"][:2_000]  # a file within the reader's size limit
    file = tmp_path / "snapshot.json"
    file.write_text(json.dumps(doc))
    code, _, err = run_cli("risk", str(file))
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == MAX_LISTED + 1
    assert lines[-1] == f"marginwatch: {file}: and {2_000 - MAX_LISTED} more problems"
