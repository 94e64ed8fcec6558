"""Reading user-supplied files safely: one clear line for every kind of bad input."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from config.reading import UnreadableFile, read_regular_file
from margin.snapshot import Snapshot, SnapshotError, parse_snapshot

# A snapshot of a large account is a few hundred kB; anything far beyond is not one.
MAX_SNAPSHOT_BYTES = 20 * 1024 * 1024

# The range of every number a snapshot may hold (docs/snapshot-format.md, "Bounds"), as
# (lowest, highest), inclusive. Wide enough for any real account (a price of 1e-12 to
# 1e12, a wallet of a quadrillion), narrow enough that nothing the engine computes from
# them (notional, PnL, a liquidation price, a distance in sigma) leaves the finite floats.
# The parser (margin.snapshot) checks the signs and rates; these are the magnitudes.
MONEY = 1e15
PRICE = (1e-12, 1e12)
# Every number is 0 or at least this in size (fields with a larger floor say so): a
# denormal like 5e-324 as a wallet or a maintenance amount made an infinite margin ratio.
TINY = 1e-12
SNAPSHOT_BOUNDS: dict[str, dict[str, tuple[float, float]]] = {
    "account": {
        "wallet_balance": (0.0, MONEY),
    },
    "position": {
        "contracts": (1e-12, 1e15),
        "contract_size": (1e-12, 1e9),
        "entry_price": PRICE,
        "mark_price": PRICE,
        "isolated_margin": (0.0, MONEY),
        "leverage": (0.01, 1e4),
        "maintenance_amount": (0.0, MONEY),  # never negative (the parser refuses it)
        # 0 means "none" for these two (the parser allows it); a positive value must not be
        # a denormal: 1e-313 as a volatility made a distance of infinite sigmas
        "exchange_liquidation_price": PRICE,
        "volatility": (1e-6, 10.0),  # daily standard deviation: from 0.0001 % to 1,000 % a day
        "amount_step": (1e-12, 1e15),
    },
    "tier": {
        "min_notional": (0.0, 1e30),
        "max_notional": (TINY, 1e30),  # above its min_notional, so never 0
        "maintenance_amount": (0.0, MONEY),
        "max_leverage": (1.0, 1e4),
    },
}


class InputError(ValueError):
    """Bad input: the message names the file and what is wrong, in one line."""


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not a number in JSON")


def load_json(path: Path, max_bytes: int = MAX_SNAPSHOT_BYTES) -> Any:
    """Decode a JSON file, refusing anything but a regular file, huge files, NaN/Infinity
    and pathological nesting."""
    try:
        data = read_regular_file(path, max_bytes)
    except UnreadableFile as exc:
        raise InputError(f"{path}: {exc}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: cannot read as UTF-8 text ({exc})") from None
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
    except ValueError as exc:  # NaN/Infinity, or an integer of more than 4,300 digits
        raise InputError(f"{path}: not valid JSON ({exc})") from None
    except RecursionError:
        raise InputError(f"{path}: JSON nested too deeply") from None


def _shown(value: int | float) -> str:
    if isinstance(value, int) and abs(value) >= 10**20:
        return f"an integer of {len(str(abs(value)))} digits"
    return f"{value!r}"


def _check(doc: Mapping[str, Any], bounds: Mapping[str, tuple[float, float]], path: str) -> None:
    for key, (lowest, highest) in bounds.items():
        value = doc.get(key)
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue  # a missing field or a wrong type is the parser's to name
        where = f"{path}.{key}" if path else key
        if isinstance(value, float) and not math.isfinite(value):
            raise SnapshotError(where, f"must be a finite number, got {value!r}")
        # Python compares an int of any size with a float exactly: no float(10**400)
        if value > highest:
            raise SnapshotError(where, f"must be <= {highest:g}, got {_shown(value)}")
        if value < lowest and not (lowest > 0 and value <= 0):  # zero and below: the parser's
            raise SnapshotError(where, f"must be >= {lowest:g}, got {_shown(value)}")
        if value != 0 and abs(value) < TINY:
            raise SnapshotError(where, f"must be 0 or at least {TINY:g} in size, got {_shown(value)}")


def check_bounds(doc: Any) -> None:
    """Raise SnapshotError (naming the field by its path) for a number out of SNAPSHOT_BOUNDS."""
    if not isinstance(doc, Mapping):
        return
    _check(doc, SNAPSHOT_BOUNDS["account"], "")
    positions = doc.get("positions")
    if not isinstance(positions, Sequence) or isinstance(positions, str | bytes):
        return
    for i, position in enumerate(positions):
        if not isinstance(position, Mapping):
            continue
        _check(position, SNAPSHOT_BOUNDS["position"], f"positions[{i}]")
        tiers = position.get("tiers")
        if isinstance(tiers, Sequence) and not isinstance(tiers, str | bytes):
            for j, tier in enumerate(tiers):
                if isinstance(tier, Mapping):
                    _check(tier, SNAPSHOT_BOUNDS["tier"], f"positions[{i}].tiers[{j}]")


def load_snapshot(path: Path) -> Snapshot:
    """Read and validate a snapshot file; InputError names the file and the field."""
    doc = load_json(path)
    try:
        check_bounds(doc)
        return parse_snapshot(doc)
    except SnapshotError as exc:
        raise InputError(f"{path}: {exc}") from None
    except RecursionError:
        raise InputError(f"{path}: JSON nested too deeply") from None
