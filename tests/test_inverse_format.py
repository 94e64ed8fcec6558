"""Coin-margined (inverse) positions in the snapshot format (issue 14): the parser and the
JSON Schema accept them, and refuse what does not make sense, naming the field."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import jsonschema
import pytest

from margin.snapshot import SnapshotError, parse_snapshot

ROOT = Path(__file__).parent.parent
SCHEMA = json.loads((ROOT / "docs" / "snapshot.schema.json").read_text())

COINM = {
    "exchange": "binancecoinm",
    "account": "hedge",
    "collateral": "BTC",
    "wallet_balance": 1.5,
    "positions": [
        {
            "symbol": "BTC/USD:BTC",
            "contract_type": "inverse",
            "settle": "BTC",
            "side": "short",
            "contracts": 300,
            "contract_size": 100,
            "entry_price": 60000,
            "mark_price": 58000,
            "margin_mode": "cross",
            "tiers": [
                {"min_notional": 0, "max_notional": 5, "maintenance_margin_rate": 0.004},
                {"min_notional": 5, "max_notional": 10, "maintenance_margin_rate": 0.005},
            ],
        },
        {
            "symbol": "BTC/USD:BTC-261225",
            "contract_type": "inverse",
            "settle": "BTC",
            "side": "long",
            "contracts": 50,
            "contract_size": 100,
            "entry_price": 59000,
            "mark_price": 59500,
            "margin_mode": "isolated",
            "isolated_margin": 0.02,
            "maintenance_margin_rate": 0.005,
        },
    ],
}


def test_the_documented_example_parses_and_validates() -> None:
    jsonschema.validate(COINM, SCHEMA)
    snap = parse_snapshot(COINM)
    first = snap.positions[0]
    assert first.inverse and first.contract_type == "inverse" and first.settle == "BTC"
    assert first.size == 30_000.0  # USD: contracts x contract size
    assert snap.positions[1].inverse


def test_a_linear_position_is_linear_by_default_and_may_say_so() -> None:
    doc = {
        "exchange": "binanceusdm",
        "account": "a",
        "collateral": "USDT",
        "wallet_balance": 100.0,
        "positions": [
            {
                "symbol": "BTC/USDT:USDT",
                "side": "long",
                "contracts": 1,
                "contract_size": 1,
                "entry_price": 100,
                "mark_price": 100,
                "margin_mode": "cross",
                "maintenance_margin_rate": 0.01,
            }
        ],
    }
    assert not parse_snapshot(doc).positions[0].inverse
    doc["positions"][0]["contract_type"] = "linear"
    jsonschema.validate(doc, SCHEMA)
    assert parse_snapshot(doc).positions[0].contract_type == "linear"


def _with(change: dict, index: int = 0) -> dict:
    doc = copy.deepcopy(COINM)
    for key, value in change.items():
        if value is KeyError:
            del doc["positions"][index][key]
        else:
            doc["positions"][index][key] = value
    return doc


@pytest.mark.parametrize(
    ("change", "named", "schema_refuses"),
    [
        ({"contract_type": "quanto"}, "positions[0].contract_type", True),
        ({"settle": KeyError}, "positions[0].settle", True),
        ({"settle": ""}, "positions[0].settle", True),
        ({"settle": "ETH"}, "positions[0].settle", False),  # JSON Schema cannot compare two fields
    ],
)
def test_bad_inverse_fields_are_named(change: dict, named: str, schema_refuses: bool) -> None:
    doc = _with(change)
    with pytest.raises(SnapshotError) as caught:
        parse_snapshot(doc)
    assert caught.value.path == named
    if schema_refuses:
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(doc, SCHEMA)


def test_linear_and_inverse_positions_are_not_mixed_in_one_snapshot() -> None:
    doc = _with({"contract_type": "linear", "settle": KeyError}, index=1)
    with pytest.raises(SnapshotError, match="linear or inverse positions, not both") as caught:
        parse_snapshot(doc)
    assert caught.value.path == "positions[1].contract_type"


def test_the_coinm_example_validates() -> None:
    doc = json.loads((ROOT / "examples" / "coinm-snapshot.json").read_text())
    jsonschema.validate(doc, SCHEMA)
    assert all(p.inverse for p in parse_snapshot(doc).positions)
