"""Multi-collateral accounts in the snapshot format (issue 13): the parser and the JSON
Schema agree on what they accept, and a bad field is named by its path."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import jsonschema
import pytest

from margin.snapshot import SnapshotError, parse_snapshot

ROOT = Path(__file__).parent.parent
SCHEMA = json.loads((ROOT / "docs" / "snapshot.schema.json").read_text())
UTA = json.loads((ROOT / "examples" / "uta-snapshot.json").read_text())
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


def test_a_multi_asset_account_is_read_whole() -> None:
    jsonschema.validate(UTA, SCHEMA)
    snap = parse_snapshot(UTA)
    assert snap.account_mode == "multi_asset" and snap.multi_collateral
    assert snap.valuation_currency == "USD"
    assert snap.wallet_balance == 0.0  # omitted: the assets carry the money
    btc = snap.assets[1]
    assert btc.price_symbol == "BTC/USDT:USDT"
    assert [(b.low, b.high, b.ratio, b.unit) for b in btc.bands] == [
        (0.0, 1.0, 0.95, "amount"),
        (1.0, 10.0, 0.9, "amount"),
        (10.0, math.inf, 0.0, "amount"),
    ]
    assert snap.assets[2].amount == -2000.0 and snap.assets[2].borrow_maintenance_rate == 0.01
    assert snap.positions[0].settle == "USDT"


def test_a_document_without_a_mode_is_single_asset_as_before() -> None:
    snap = parse_snapshot(DEMO)
    assert snap.account_mode == "single_asset" and not snap.multi_collateral and snap.assets == ()


def test_bands_in_value_are_read() -> None:
    doc = _with(
        UTA,
        ("assets", 1, "collateral_tiers"),
        [
            {"min_value": 0, "max_value": 100000, "ratio": 0.95},
            {"min_value": 100000, "ratio": 0.8},
        ],
    )
    jsonschema.validate(doc, SCHEMA)
    bands = parse_snapshot(doc).assets[1].bands
    assert [(b.low, b.high, b.ratio, b.unit) for b in bands] == [
        (0, 100000, 0.95, "value"),
        (100000, math.inf, 0.8, "value"),
    ]


BAD = [
    (("account_mode",), "unified", "account_mode"),
    (("assets",), KeyError, "assets"),
    (("assets",), [], "assets"),
    (("assets", 0, "price"), 0, "assets[0].price"),
    (("assets", 0, "amount"), "1", "assets[0].amount"),
    (("assets", 0, "collateral_ratio"), 1.2, "assets[0].collateral_ratio"),
    (("assets", 0, "collateral_ratio"), KeyError, "assets[0].collateral_ratio"),
    (("assets", 0, "haircut"), 0.5, "assets[0].haircut"),
    (("assets", 1, "collateral_tiers", 0, "min_amount"), 0.5, "assets[1].collateral_tiers[0].min_amount"),
    (("assets", 1, "collateral_tiers", 1, "ratio"), -0.1, "assets[1].collateral_tiers[1].ratio"),
    (("assets", 2, "borrowed"), -5, "assets[2].borrowed"),
    (("positions", 0, "settle"), "DAI", "positions[0].settle"),
    (("open_order_loss",), -1, "open_order_loss"),
    (("open_order_loss",), 1e16, "open_order_loss"),
    (("assets", 0, "amount"), -1e16, "assets[0].amount"),
    (("assets", 0, "amount"), 5e-324, "assets[0].amount"),
    (("assets", 1, "price"), 1e13, "assets[1].price"),
    (("assets", 1, "collateral_tiers", 1, "min_amount"), 1e31, "assets[1].collateral_tiers[1].min_amount"),
]


@pytest.mark.parametrize(("path", "value", "named"), BAD, ids=[b[2] + str(i) for i, b in enumerate(BAD)])
def test_parser_and_schema_reject_a_bad_multi_collateral_field(path: tuple, value: object, named: str) -> None:
    doc = _with(UTA, path, value)
    with pytest.raises(SnapshotError) as caught:
        parse_snapshot(doc)
    assert caught.value.path == named
    # the schema cannot look up the account's assets or compare bands: the parser does
    if named not in {"positions[0].settle", "assets[1].collateral_tiers[0].min_amount"}:
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(doc, SCHEMA)


def test_assets_in_a_single_asset_account_are_refused_not_ignored() -> None:
    doc = _with(DEMO, ("assets",), UTA["assets"])
    with pytest.raises(SnapshotError, match="only for account_mode multi_asset or portfolio") as caught:
        parse_snapshot(doc)
    assert caught.value.path == "assets"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(doc, SCHEMA)


def test_overlapping_bands_and_mixed_units_are_named() -> None:
    overlap = _with(UTA, ("assets", 1, "collateral_tiers", 0, "max_amount"), 5)
    with pytest.raises(SnapshotError, match="overlaps") as caught:
        parse_snapshot(overlap)
    assert caught.value.path == "assets[1].collateral_tiers[0].max_amount"
    mixed = _with(UTA, ("assets", 1, "collateral_tiers", 1), {"min_value": 1, "ratio": 0.9})
    with pytest.raises(SnapshotError, match="bands are in amount") as caught:
        parse_snapshot(mixed)
    assert caught.value.path == "assets[1].collateral_tiers[1].min_value"


def test_the_same_asset_twice_is_named() -> None:
    doc = _with(UTA, ("assets", 2, "asset"), "BTC")
    with pytest.raises(SnapshotError, match="already assets\\[1\\]") as caught:
        parse_snapshot(doc)
    assert caught.value.path == "assets[2].asset"
