"""The snapshot format: one account at one moment, as the margin engine reads it.

The format is a public interface (see docs/snapshot-format.md and
docs/snapshot.schema.json). Units: prices in quote currency per base unit, sizes in base
units (size = contracts x contract_size), money in the collateral currency, rates as
fractions (0.004 = 0.4 %). An inverse (coin-margined) position's contract_size is in quote
currency (100 USD a contract on Binance COIN-M BTCUSD), so its size is in quote currency
too, and the collateral is its base coin (`settle`); see margin.inverse.

`parse_snapshot` turns a decoded JSON document into frozen dataclasses, or raises
`SnapshotError` naming the first bad field by its path (``positions[2].entry_price``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any, Literal

from margin.tiers import Tier, never_negative, normalise_tiers

Side = Literal["long", "short"]
MarginMode = Literal["cross", "isolated"]
ContractType = Literal["linear", "inverse"]

_SNAPSHOT_KEYS = {
    "exchange",
    "account",
    "collateral",
    "wallet_balance",
    "taker_fee",
    "positions",
    "info",
    "timestamp",
}
_POSITION_KEYS = {
    "symbol",
    "side",
    "contracts",
    "contract_size",
    "entry_price",
    "mark_price",
    "margin_mode",
    "isolated_margin",
    "leverage",
    "tiers",
    "maintenance_margin_rate",
    "maintenance_amount",
    "exchange_liquidation_price",
    "volatility",
    "amount_step",
    "contract_type",
    "settle",
    "info",
}
_TIER_KEYS = {
    "min_notional",
    "max_notional",
    "maintenance_margin_rate",
    "maintenance_amount",
    "max_leverage",
    "info",
}


class SnapshotError(ValueError):
    """A snapshot document that does not follow the format; `path` names the field."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}" if path else message)
        self.path = path
        self.message = message


@dataclass(frozen=True)
class Position:
    """One position. `contracts` x `contract_size` = size (> 0): in base units for a linear
    contract, in quote currency for an inverse one (`contract_type` "inverse", settled in
    the coin `settle`; its notional, PnL and margin are in that coin, see margin.inverse)."""

    symbol: str
    side: Side
    contracts: float
    contract_size: float
    entry_price: float
    mark_price: float
    margin_mode: MarginMode
    tiers: tuple[Tier, ...]
    isolated_margin: float | None = None
    leverage: float | None = None
    exchange_liquidation_price: float | None = None
    volatility: float | None = None
    amount_step: float | None = None
    contract_type: ContractType = "linear"
    settle: str | None = None

    @property
    def inverse(self) -> bool:
        """True for a coin-margined (inverse) contract."""
        return self.contract_type == "inverse"

    @property
    def size(self) -> float:
        """Size: base units (linear), quote currency (inverse)."""
        return self.contracts * self.contract_size

    @property
    def sign(self) -> int:
        """+1 for long, -1 for short."""
        return 1 if self.side == "long" else -1


@dataclass(frozen=True)
class Snapshot:
    """One account at one moment. `wallet_balance` is the cross wallet (isolated margins are
    held by their positions)."""

    exchange: str
    account: str
    collateral: str
    wallet_balance: float
    positions: tuple[Position, ...] = field(default_factory=tuple)
    taker_fee: float | None = None
    timestamp: str | None = None


def parse_snapshot(doc: Any) -> Snapshot:
    """Validate a decoded JSON document and return the Snapshot it describes."""
    _require_mapping(doc, "", "the snapshot")
    _reject_unknown(doc, _SNAPSHOT_KEYS, "")
    # Fields are checked in the order the format lists them, so the first error is the
    # first one a reader of the document meets.
    exchange = _string(doc, "exchange", "")
    account = _string(doc, "account", "")
    collateral = _string(doc, "collateral", "")
    wallet_balance = _number(doc, "wallet_balance", "", minimum=0.0)
    fee = _optional_number(doc, "taker_fee", "", minimum=0.0, below=1.0)
    timestamp = None if doc.get("timestamp") is None else _string(doc, "timestamp", "")
    positions_doc = doc.get("positions")
    if positions_doc is None:
        raise SnapshotError("positions", "missing (use [] for an account with no position)")
    if not isinstance(positions_doc, Sequence) or isinstance(positions_doc, str | bytes):
        raise SnapshotError("positions", f"must be a list, got {_kind(positions_doc)}")
    positions = tuple(_position(p, f"positions[{i}]", exchange) for i, p in enumerate(positions_doc))
    _check_one_mark_per_symbol(positions)
    _check_settlement(positions, collateral)
    return Snapshot(
        exchange=exchange,
        account=account,
        collateral=collateral,
        wallet_balance=wallet_balance,
        positions=positions,
        taker_fee=fee,
        timestamp=timestamp,
    )


def _check_one_mark_per_symbol(positions: tuple[Position, ...]) -> None:
    """Positions of one symbol (hedge legs, or cross beside isolated) share one mark."""
    first: dict[str, int] = {}
    for i, pos in enumerate(positions):
        j = first.setdefault(pos.symbol, i)
        if positions[j].mark_price != pos.mark_price:
            raise SnapshotError(
                f"positions[{i}].mark_price",
                f"{pos.mark_price:g} differs from positions[{j}].mark_price "
                f"{positions[j].mark_price:g} for the same symbol {pos.symbol}",
            )


def _check_settlement(positions: tuple[Position, ...], collateral: str) -> None:
    """An inverse position settles in the account's collateral coin, and a single-asset
    account holds either linear or inverse positions: their money is in different
    currencies (USDT and BTC), so one wallet cannot margin both."""
    kinds: dict[str, int] = {}
    for i, pos in enumerate(positions):
        kinds.setdefault(pos.contract_type, i)
        if pos.inverse and pos.settle != collateral:
            raise SnapshotError(
                f"positions[{i}].settle",
                f"an inverse position settles in the collateral {collateral}, got {pos.settle}",
            )
        other = "linear" if pos.inverse else "inverse"
        if other in kinds:
            raise SnapshotError(
                f"positions[{i}].contract_type",
                f"{pos.contract_type} beside the {other} positions[{kinds[other]}]: a single-asset "
                f"snapshot holds linear or inverse positions, not both (one snapshot per collateral)",
            )


def _position(doc: Any, path: str, exchange: str) -> Position:
    _require_mapping(doc, path, "a position")
    _reject_unknown(doc, _POSITION_KEYS, path)
    symbol = _string(doc, "symbol", path)
    side = _choice(doc, "side", path, ("long", "short"))
    contracts = _number(doc, "contracts", path, positive=True)
    contract_size = _number(doc, "contract_size", path, positive=True)
    entry_price = _number(doc, "entry_price", path, positive=True)
    mark_price = _number(doc, "mark_price", path, positive=True)
    mode = _choice(doc, "margin_mode", path, ("cross", "isolated"))
    contract_type = (
        "linear" if doc.get("contract_type") is None else _choice(doc, "contract_type", path, ("linear", "inverse"))
    )
    settle = None if doc.get("settle") is None else _string(doc, "settle", path)
    if contract_type == "inverse" and settle is None:
        raise SnapshotError(f"{path}.settle", "required for an inverse position (the coin it settles in)")
    isolated_margin = _optional_number(doc, "isolated_margin", path, minimum=0.0)
    if mode == "isolated" and isolated_margin is None:
        raise SnapshotError(f"{path}.isolated_margin", "required for an isolated position")
    return Position(
        symbol=symbol,
        side=side,  # type: ignore[arg-type]
        contracts=contracts,
        contract_size=contract_size,
        entry_price=entry_price,
        mark_price=mark_price,
        margin_mode=mode,  # type: ignore[arg-type]
        isolated_margin=isolated_margin,
        leverage=_optional_number(doc, "leverage", path, positive=True),
        tiers=_tiers(doc, path, exchange, mode),
        exchange_liquidation_price=_optional_number(doc, "exchange_liquidation_price", path, minimum=0.0),
        volatility=_optional_number(doc, "volatility", path, minimum=0.0),
        amount_step=_optional_number(doc, "amount_step", path, positive=True),
        contract_type=contract_type,  # type: ignore[arg-type]
        settle=settle,
    )


def _tiers(doc: Mapping[str, Any], path: str, exchange: str, mode: str) -> tuple[Tier, ...]:
    """The position's tier table. Where the venue subtracts maintenance amounts, a segment
    where an amount exceeds rate x notional charges 0 instead of a negative margin
    (margin.tiers.never_negative): rate 0.01 with amount 50 charges nothing below a
    notional of 5,000."""
    from margin.rules import venue_rule

    tiers = _table(doc, path, exchange)
    if venue_rule(exchange).mode(mode).uses_maintenance_amount:
        return never_negative(tiers)
    return tiers


def _table(doc: Mapping[str, Any], path: str, exchange: str) -> tuple[Tier, ...]:
    tiers_doc = doc.get("tiers")
    flat_rate = _optional_number(doc, "maintenance_margin_rate", path, minimum=0.0, below=1.0)
    if tiers_doc is not None and flat_rate is not None:
        raise SnapshotError(f"{path}.tiers", "give either tiers or maintenance_margin_rate, not both")
    if tiers_doc is None:
        if flat_rate is None:
            raise SnapshotError(f"{path}.maintenance_margin_rate", "missing (give tiers or a flat rate)")
        amount = _optional_number(doc, "maintenance_amount", path, minimum=0.0) or 0.0
        return (Tier(0.0, math.inf, flat_rate, amount, None),)
    if not isinstance(tiers_doc, Sequence) or isinstance(tiers_doc, str | bytes):
        raise SnapshotError(f"{path}.tiers", f"must be a list, got {_kind(tiers_doc)}")
    if not tiers_doc:
        raise SnapshotError(f"{path}.tiers", "must hold at least one tier")
    raw = [_tier(t, f"{path}.tiers[{i}]", exchange) for i, t in enumerate(tiers_doc)]
    _check_no_overlap(raw, f"{path}.tiers")
    try:
        return normalise_tiers(raw)
    except ValueError as exc:
        raise SnapshotError(f"{path}.tiers", str(exc)) from None


def _tier(doc: Any, path: str, exchange: str) -> dict[str, float | None]:
    from margin.rules import venue_rule  # the venue decides whether a rate may be derived

    _require_mapping(doc, path, "a tier")
    _reject_unknown(doc, _TIER_KEYS, path)
    max_leverage = _optional_number(doc, "max_leverage", path, positive=True)
    rate = _optional_number(doc, "maintenance_margin_rate", path, minimum=0.0, below=1.0)
    if rate is None:
        if max_leverage is not None and venue_rule(exchange).rate_from_max_leverage:
            rate = 1.0 / (2.0 * max_leverage)
        else:
            raise SnapshotError(f"{path}.maintenance_margin_rate", "missing")
    min_notional = _number(doc, "min_notional", path, minimum=0.0)
    max_notional = _optional_number(doc, "max_notional", path, minimum=0.0)
    if max_notional is not None and max_notional <= min_notional:
        raise SnapshotError(
            f"{path}.max_notional", f"must be above min_notional {min_notional:g}, got {max_notional:g}"
        )
    return {
        "min_notional": min_notional,
        "max_notional": max_notional,  # None: up to the next tier's floor (or without end)
        "maintenance_margin_rate": rate,
        "maintenance_amount": _optional_number(doc, "maintenance_amount", path, minimum=0.0),
        "max_leverage": max_leverage,
    }


def _check_no_overlap(raw: list[dict[str, float | None]], path: str) -> None:
    """No notional may fall in two tiers: each tier's max_notional, where given, is at most
    the next floor (a tier without one runs up to the next floor). A gap (max_notional below
    the next floor) is accepted: the engine reads only the floors, so the tier below a gap
    holds it, and tables written with whole-number bounds (0-50,000, 50,001-...) are read as
    the venue means them."""
    order = sorted(range(len(raw)), key=lambda i: float(raw[i]["min_notional"] or 0.0))
    for lower, upper in pairwise(order):
        ceiling, floor = raw[lower]["max_notional"], raw[upper]["min_notional"]
        if ceiling is not None and floor is not None and ceiling > floor:
            raise SnapshotError(
                f"{path}[{lower}].max_notional",
                f"{ceiling:g} overlaps tiers[{upper}], which starts at {floor:g}",
            )


# --- field readers: each names the path of what it rejects -------------------------------


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "a boolean", str: "a string", dict: "an object", list: "a list"}.get(
        type(value), type(value).__name__
    )


def _require_mapping(doc: Any, path: str, what: str) -> None:
    if not isinstance(doc, Mapping):
        raise SnapshotError(path, f"{what} must be a JSON object, got {_kind(doc)}")


def _reject_unknown(doc: Mapping[str, Any], known: set[str], path: str) -> None:
    for key in doc:
        if key not in known:
            where = f"{path}.{key}" if path else str(key)
            raise SnapshotError(where, "unknown field")


def _field_path(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _string(doc: Mapping[str, Any], key: str, path: str) -> str:
    value = doc.get(key)
    if value is None:
        raise SnapshotError(_field_path(path, key), "missing")
    if not isinstance(value, str) or not value.strip():
        raise SnapshotError(_field_path(path, key), f"must be a non-empty string, got {value!r}")
    return value


def _choice(doc: Mapping[str, Any], key: str, path: str, allowed: tuple[str, ...]) -> str:
    value = doc.get(key)
    if value is None:
        raise SnapshotError(_field_path(path, key), "missing")
    if value not in allowed:
        raise SnapshotError(_field_path(path, key), f"must be one of {', '.join(allowed)}; got {value!r}")
    return str(value)


def _number(
    doc: Mapping[str, Any],
    key: str,
    path: str,
    *,
    positive: bool = False,
    minimum: float | None = None,
    below: float | None = None,
) -> float:
    if doc.get(key) is None:
        raise SnapshotError(_field_path(path, key), "missing")
    return _checked(doc[key], _field_path(path, key), positive, minimum, below)


def _optional_number(
    doc: Mapping[str, Any],
    key: str,
    path: str,
    *,
    positive: bool = False,
    minimum: float | None = None,
    below: float | None = None,
) -> float | None:
    if doc.get(key) is None:
        return None
    return _checked(doc[key], _field_path(path, key), positive, minimum, below)


def _checked(value: Any, where: str, positive: bool, minimum: float | None, below: float | None) -> float:
    # bool is an int subclass in Python; `true` is not a number in this format.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SnapshotError(where, f"must be a number, got {_kind(value)} {value!r}")
    number = float(value)
    if not math.isfinite(number):
        raise SnapshotError(where, f"must be a finite number, got {value!r}")
    if positive and number <= 0:
        raise SnapshotError(where, f"must be > 0, got {value!r}")
    if minimum is not None and number < minimum:
        raise SnapshotError(where, f"must be >= {minimum:g}, got {value!r}")
    if below is not None and number >= below:
        raise SnapshotError(where, f"must be < {below:g}, got {value!r}")
    return number
