"""The snapshot format: validation names the bad field by its path; the JSON Schema and
the parser agree."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import jsonschema
import pytest

from margin.snapshot import SnapshotError, parse_snapshot
from margin.tiers import normalise_tiers, tier_for
from tests.helpers import FIXTURES, run_cli

ROOT = Path(__file__).parent.parent
SCHEMA = json.loads((ROOT / "docs" / "snapshot.schema.json").read_text())
CASES = json.loads((FIXTURES / "margin" / "cases.json").read_text())
DEMO = json.loads((ROOT / "examples" / "demo-snapshot.json").read_text())


def _with(doc: dict, path: tuple, value: object) -> dict:
    doc = copy.deepcopy(doc)
    target = doc
    for key in path[:-1]:
        target = target[key]
    if value is KeyError:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return doc


@pytest.mark.parametrize("doc", [c["snapshot"] for c in CASES] + [DEMO])
def test_schema_accepts_every_valid_snapshot(doc: dict) -> None:
    jsonschema.validate(doc, SCHEMA)
    parse_snapshot(doc)


BAD = [
    (("positions", 2, "entry_price"), -5, "positions[2].entry_price"),
    (("positions", 0, "side"), "flat", "positions[0].side"),
    (("positions", 1, "margin_mode"), "portfolio", "positions[1].margin_mode"),
    (("positions", 0, "mark_price"), KeyError, "positions[0].mark_price"),
    (("positions", 0, "contracts"), "3", "positions[0].contracts"),
    (("positions", 0, "contracts"), 0, "positions[0].contracts"),
    (("positions", 2, "isolated_margin"), None, "positions[2].isolated_margin"),
    (
        ("positions", 0, "tiers", 1, "maintenance_margin_rate"),
        KeyError,
        "positions[0].tiers[1].maintenance_margin_rate",
    ),
    (("positions", 0, "tiers", 0, "min_notional"), -1, "positions[0].tiers[0].min_notional"),
    (("wallet_balance",), -1.0, "wallet_balance"),
    (("wallet_balance",), True, "wallet_balance"),
    (("exchange",), KeyError, "exchange"),
    (("positions", 1, "mark"), 3.0, "positions[1].mark"),
    (("taker_fee",), 1.5, "taker_fee"),
    (("positions", 0, "tiers", 3, "maintenance_amount"), -1.0, "positions[0].tiers[3].maintenance_amount"),
    (("positions", 1, "tiers", 0, "max_notional"), 0, "positions[1].tiers[0].max_notional"),
]


@pytest.mark.parametrize(("path", "value", "named"), BAD, ids=[b[2] for b in BAD])
def test_parser_and_schema_reject_bad_field(path: tuple, value: object, named: str) -> None:
    doc = _with(DEMO, path, value)
    with pytest.raises(SnapshotError) as caught:
        parse_snapshot(doc)
    assert caught.value.path == named
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(doc, SCHEMA)


def test_tiers_and_flat_rate_are_exclusive() -> None:
    doc = _with(DEMO, ("positions", 0, "maintenance_margin_rate"), 0.01)
    with pytest.raises(SnapshotError, match="either tiers or maintenance_margin_rate"):
        parse_snapshot(doc)


def test_missing_maintenance_amount_is_derived_from_the_table() -> None:
    # Binance BTCUSDT brackets: the published cum column is 0, 50, 1300, 46300, 546300.
    tiers = normalise_tiers(
        [
            {"min_notional": 0, "max_notional": 50_000, "maintenance_margin_rate": 0.004},
            {"min_notional": 50_000, "max_notional": 250_000, "maintenance_margin_rate": 0.005},
            {"min_notional": 250_000, "max_notional": 3e6, "maintenance_margin_rate": 0.01},
            {"min_notional": 3e6, "max_notional": 2e7, "maintenance_margin_rate": 0.025},
            {"min_notional": 2e7, "max_notional": 4e7, "maintenance_margin_rate": 0.05},
        ]
    )
    assert [t.maintenance_amount for t in tiers] == pytest.approx([0, 50, 1300, 46300, 546300])
    # continuous across a boundary: just below and at 250,000
    below, at = tier_for(tiers, 249_999.99), tier_for(tiers, 250_000)
    assert 249_999.99 * below.maintenance_margin_rate - below.maintenance_amount == pytest.approx(
        250_000 * at.maintenance_margin_rate - at.maintenance_amount, abs=1e-3
    )


def test_hyperliquid_rate_comes_from_max_leverage() -> None:
    doc = {
        "exchange": "hyperliquid",
        "account": "a",
        "collateral": "USDC",
        "wallet_balance": 100,
        "positions": [
            {
                "symbol": "BTC/USDC:USDC",
                "side": "long",
                "contracts": 1,
                "contract_size": 1,
                "entry_price": 100,
                "mark_price": 100,
                "margin_mode": "cross",
                "tiers": [{"min_notional": 0, "max_notional": None, "max_leverage": 40}],
            }
        ],
    }
    assert parse_snapshot(doc).positions[0].tiers[0].maintenance_margin_rate == 1 / 80
    doc["exchange"] = "binanceusdm"  # other venues publish the rate: it must be given
    with pytest.raises(SnapshotError, match=r"tiers\[0\]\.maintenance_margin_rate"):
        parse_snapshot(doc)


def test_positions_of_one_symbol_share_a_mark() -> None:
    doc = copy.deepcopy(DEMO)
    twin = copy.deepcopy(doc["positions"][0])
    twin["side"] = "short"
    twin["mark_price"] = doc["positions"][0]["mark_price"] + 1
    doc["positions"].append(twin)
    with pytest.raises(SnapshotError) as caught:
        parse_snapshot(doc)
    assert caught.value.path == "positions[3].mark_price"


# Rules across two fields, which JSON Schema cannot state (its description says so): the
# parser refuses them with the field's path; the schema lets them through.
PARSER_ONLY = [
    # max_notional at or below its own min_notional
    (("positions", 0, "tiers", 1, "max_notional"), 50_000, "positions[0].tiers[1].max_notional"),
    (("positions", 0, "tiers", 1, "max_notional"), 40_000, "positions[0].tiers[1].max_notional"),
    # a tier reaching into the next one: 0-60,000 over 50,000-250,000
    (("positions", 0, "tiers", 0, "max_notional"), 60_000, "positions[0].tiers[0].max_notional"),
    (("positions", 2, "tiers", 7, "min_notional"), 4_000_000, "positions[2].tiers[5].max_notional"),
]


@pytest.mark.parametrize(("path", "value", "named"), PARSER_ONLY, ids=[f"{p[-1]}={v}" for p, v, _ in PARSER_ONLY])
def test_parser_refuses_tiers_that_overlap_or_end_before_they_start(path: tuple, value: object, named: str) -> None:
    doc = _with(DEMO, path, value)
    with pytest.raises(SnapshotError) as caught:
        parse_snapshot(doc)
    assert caught.value.path == named
    jsonschema.validate(doc, SCHEMA)


def test_flat_rate_amount_must_not_be_negative() -> None:
    doc = _with(CASES[0]["snapshot"], ("positions", 0, "maintenance_amount"), -5.0)
    doc["positions"][0].pop("tiers", None)
    doc["positions"][0]["maintenance_margin_rate"] = 0.004
    with pytest.raises(SnapshotError) as caught:
        parse_snapshot(doc)
    assert caught.value.path == "positions[0].maintenance_amount"


# --- the bounds (issue 16): the reader and the schema reject the same numbers -------------------

OUT_OF_BOUNDS = [
    (("wallet_balance",), 10**400, "wallet_balance"),
    (("wallet_balance",), 5e-324, "wallet_balance"),
    (("positions", 0, "mark_price"), 1e308, "positions[0].mark_price"),
    (("positions", 0, "entry_price"), 1e-13, "positions[0].entry_price"),
    (("positions", 0, "contracts"), 1e16, "positions[0].contracts"),
    (("positions", 0, "contract_size"), 1e10, "positions[0].contract_size"),
    (("positions", 0, "leverage"), 1e5, "positions[0].leverage"),
    (("positions", 0, "volatility"), 11.0, "positions[0].volatility"),
    (("positions", 0, "volatility"), 1e-9, "positions[0].volatility"),
    (("positions", 0, "exchange_liquidation_price"), 1e13, "positions[0].exchange_liquidation_price"),
    (("positions", 0, "amount_step"), 1e-20, "positions[0].amount_step"),
    (("positions", 0, "tiers", 1, "max_notional"), 1e31, "positions[0].tiers[1].max_notional"),
    (("positions", 0, "tiers", 1, "max_leverage"), 0.5, "positions[0].tiers[1].max_leverage"),
    (("positions", 0, "tiers", 1, "maintenance_amount"), -1e16, "positions[0].tiers[1].maintenance_amount"),
    (("positions", 2, "isolated_margin"), 1e16, "positions[2].isolated_margin"),
]


@pytest.mark.parametrize(
    ("path", "value", "named"), OUT_OF_BOUNDS, ids=[f"{b[2]}-{i}" for i, b in enumerate(OUT_OF_BOUNDS)]
)
def test_reader_and_schema_reject_out_of_bound_numbers(tmp_path: Path, path: tuple, value: object, named: str) -> None:
    from cli.inputs import InputError, load_snapshot

    doc = _with(DEMO, path, value)
    file = tmp_path / "snapshot.json"
    file.write_text(json.dumps(doc))
    with pytest.raises(InputError, match=re.escape(f"{file}: {named}: must be")):
        load_snapshot(file)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(doc, SCHEMA)


def test_a_gap_between_tiers_is_held_by_the_tier_below() -> None:
    # whole-number bounds (0-50,000 then 50,001-...): accepted; 50,000.5 takes the first
    doc = _with(DEMO, ("positions", 0, "tiers", 1, "min_notional"), 50_001)
    jsonschema.validate(doc, SCHEMA)
    tiers = parse_snapshot(doc).positions[0].tiers
    assert tier_for(tiers, 50_000.5).maintenance_margin_rate == 0.004
    assert tier_for(tiers, 50_001).maintenance_margin_rate == 0.005


def test_risk_exits_2_with_one_line_naming_the_overlapping_tier(write_json) -> None:
    path = write_json(_with(DEMO, ("positions", 0, "tiers", 0, "max_notional"), 60_000))
    code, out, err = run_cli("risk", str(path))
    assert code == 2
    assert out == ""
    [line] = err.strip().splitlines()
    assert "positions[0].tiers[0].max_notional" in line and "overlaps" in line


def _reader_refuses(doc: dict, tmp_path: Path) -> bool:
    from cli.inputs import InputError, load_snapshot

    file = tmp_path / "snapshot.json"
    file.write_text(json.dumps(doc))
    try:
        load_snapshot(file)
    except InputError:
        return True
    return False


def _schema_refuses(doc: dict) -> bool:
    try:
        jsonschema.validate(doc, SCHEMA)
    except jsonschema.ValidationError:
        return True
    return False


def _bounded_fields() -> list[tuple[str, str]]:
    from margin.snapshot import SNAPSHOT_BOUNDS

    return [(level, key) for level, table in SNAPSHOT_BOUNDS.items() for key in table]


@pytest.mark.parametrize(("level", "key"), _bounded_fields())
def test_the_schema_holds_the_readers_bounds(tmp_path: Path, level: str, key: str) -> None:
    """Just past each bound both refuse; at the bound (and at 0 where 0 means none) the
    schema accepts what the reader accepts."""
    from margin.snapshot import SNAPSHOT_BOUNDS

    where = {"account": (), "position": ("positions", 2), "tier": ("positions", 0, "tiers", 0)}[level]
    lowest, highest = SNAPSHOT_BOUNDS[level][key]
    beyond = [highest * 10] + ([lowest / 10] if lowest > 0 else [])
    for value in beyond:
        doc = _with(DEMO, (*where, key), value)
        assert _reader_refuses(doc, tmp_path) and _schema_refuses(doc), (key, value)
    for value in (highest, lowest):
        doc = _with(DEMO, (*where, key), value)
        if not _reader_refuses(doc, tmp_path):  # a tier table's order, or a sign, may still refuse it
            assert not _schema_refuses(doc), (key, value)
