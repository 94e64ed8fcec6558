"""The published and peer-tested cases (tests/fixtures/margin/cases.json), each run through
the CLI's JSON output."""

from __future__ import annotations

import json

import pytest

from margin.rules import venue_rule
from tests.helpers import FIXTURES, get_path, run_cli

CASES = json.loads((FIXTURES / "margin" / "cases.json").read_text())

# Cases whose number follows a Bybit rule Bybit has since replaced: maintenance on the entry
# value and no estimated fee to close ("Liquidation Price (USDT Contract)", and freqtrade's
# Bybit formula entry x (1 -/+ 1/leverage +/- MMR) from the older Zendesk page). Since
# 2 Sep 2025 Bybit values isolated maintenance at mark and adds the fee to close ("The New
# Margin Calculation: Adjustments and Implications", revision 2025-09-18; margin/rules.py).
# The fixture keeps their numbers unchanged (tests/fixtures/README.md); they are checked
# against Bybit's current rule on the same inputs instead.
SUPERSEDED_BYBIT = {
    "bybit_usdt_isolated_example1_long",
    "freqtrade_generic_bybit_long_16",
    "freqtrade_generic_bybit_long_18",
    "freqtrade_generic_bybit_short_20",
    "freqtrade_generic_bybit_short_22",
}
CURRENT = [c for c in CASES if c["id"] not in SUPERSEDED_BYBIT]
SUPERSEDED = [c for c in CASES if c["id"] in SUPERSEDED_BYBIT]


def test_every_case_is_present() -> None:
    assert len(CASES) == 21
    assert {c["snapshot"]["exchange"] for c in CASES} == {"binanceusdm", "gate", "okx", "bybit", "hyperliquid"}
    assert len(SUPERSEDED) == len(SUPERSEDED_BYBIT)


def _report(case: dict, write_json) -> dict:
    path = write_json(case["snapshot"])
    args = ["risk", str(path), "--format", "json"]
    if "target_health" in case:
        args += ["--target-health", str(case["target_health"])]
    code, out, err = run_cli(*args)
    assert code == 0, err
    return json.loads(out)


@pytest.mark.parametrize("case", CURRENT, ids=[c["id"] for c in CURRENT])
def test_case_through_cli_json(case: dict, write_json) -> None:
    report = _report(case, write_json)
    for field, expected in case["expect"].items():
        got = get_path(report, field)
        tolerance = case["tolerance"]
        if "abs" in tolerance:
            assert got == pytest.approx(expected, abs=tolerance["abs"]), field
        else:
            assert got == pytest.approx(expected, rel=tolerance["rel"]), field


@pytest.mark.parametrize("case", SUPERSEDED, ids=[c["id"] for c in SUPERSEDED])
def test_superseded_bybit_case_follows_bybits_current_rule(case: dict, write_json) -> None:
    """The same isolated position under the rule Bybit publishes now: margin + side x size x
    (P - entry) = size x P x MMR - deduction + fee to close, the fee = size x entry x
    (1 - side / leverage) x taker fee (Bybit "The New Margin Calculation", Position MM)."""
    report = _report(case, write_json)
    [pos] = case["snapshot"]["positions"]
    side = 1 if pos["side"] == "long" else -1
    size = pos["contracts"] * pos["contract_size"]
    entry, margin, rate = pos["entry_price"], pos["isolated_margin"], pos["maintenance_margin_rate"]
    taker = case["snapshot"].get("taker_fee") or venue_rule("bybit").default_taker_fee
    fee_to_close = size * entry * (1 - side / pos["leverage"]) * taker
    expected = (size * entry - side * margin - side * pos["maintenance_amount"] + side * fee_to_close) / (
        size * (1 - side * rate)
    )
    [(field, published)] = case["expect"].items()
    got = get_path(report, field)
    if expected <= 0:
        assert got is None  # a 1x long: no positive price liquidates it
    else:
        assert got == pytest.approx(expected, rel=1e-9)
    assert got != pytest.approx(published, rel=1e-6)  # the old number is indeed superseded
