"""The snapshot format: one account at one moment, as the margin engine reads it.

The format is a public interface (see docs/snapshot-format.md and
docs/snapshot.schema.json). Units: prices in quote currency per base unit, sizes in base
units (size = contracts x contract_size), money in the collateral currency, rates as
fractions (0.004 = 0.4 %). An inverse (coin-margined) position's contract_size is in quote
currency (100 USD a contract on Binance COIN-M BTCUSD), so its size is in quote currency
too, and the collateral is its base coin (`settle`); see margin.inverse.

`parse_snapshot` turns a decoded JSON document into frozen dataclasses, or raises one
`SnapshotError` listing every problem it found, each naming its field by its path
(``positions[2].entry_price``), in the order a reader of the document meets them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any, Literal, TypeVar

from margin.assets import ACCOUNT_MODES, Asset, parse_assets
from margin.tiers import Tier, never_negative, normalise_tiers

Side = Literal["long", "short"]
MarginMode = Literal["cross", "isolated"]
ContractType = Literal["linear", "inverse"]
T = TypeVar("T")

_SNAPSHOT_KEYS = {
    "exchange",
    "account",
    "collateral",
    "wallet_balance",
    "taker_fee",
    "positions",
    "info",
    "timestamp",
    # multi-collateral accounts (margin.assets)
    "account_mode",
    "valuation_currency",
    "assets",
    "open_order_loss",
    "exchange_native_ratio",
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


# The range of every number a snapshot may hold (docs/snapshot-format.md, "Bounds"), as
# (lowest, highest), inclusive. Wide enough for any real account (a price of 1e-12 to
# 1e12, a wallet of a quadrillion), narrow enough that nothing the engine computes from
# them (notional, PnL, a liquidation price, a distance in sigma) leaves the finite floats.
# The signs and rates are checked field by field below; these are the magnitudes.
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
        "maintenance_amount": (0.0, MONEY),  # never negative (refused as a sign first)
        # 0 means "none" for these two; a positive value must not be a denormal: 1e-313 as
        # a volatility made a distance of infinite sigmas
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


# A message lists this many problems at the most (a hostile document may hold millions).
MAX_LISTED = 50


class SnapshotError(ValueError):
    """A snapshot document that does not follow the format. `problems`: every problem
    found, each a SnapshotError of its own whose `path` names the field; for one problem
    that is the error itself. `path` is the first problem's; for several, `message` lists
    them ("; " between them, the first MAX_LISTED and how many more)."""

    def __init__(self, path: str, message: str, problems: Sequence[SnapshotError] = ()) -> None:
        if len(problems) > 1:
            listed = [str(p) for p in problems[:MAX_LISTED]]
            if len(problems) > MAX_LISTED:
                listed.append(f"and {len(problems) - MAX_LISTED} more")
            path, message = problems[0].path, "; ".join(listed)
            super().__init__(f"{len(problems)} problems: {message}")
        else:
            super().__init__(f"{path}: {message}" if path else message)
        self.path: str = path
        self.message: str = message
        self.problems: tuple[SnapshotError, ...] = tuple(problems) if len(problems) > 1 else (self,)


# The problems of the document parse_snapshot is reading, by path in the order found
# (None: not collecting, raise).
_found: ContextVar[dict[str, SnapshotError] | None] = ContextVar("snapshot_problems", default=None)


def _keep(problem: SnapshotError) -> None:
    """Note a problem and go on reading, or raise it when nothing collects. A field already
    named keeps its first problem (a bad value is not also out of range)."""
    found = _found.get()
    if found is None:
        raise problem
    found.setdefault(problem.path, problem)


def _count() -> int:
    found = _found.get()
    return 0 if found is None else len(found)


@contextmanager
def _collecting() -> Iterator[dict[str, SnapshotError]]:
    found: dict[str, SnapshotError] = {}
    token = _found.set(found)
    try:
        yield found
    finally:
        _found.reset(token)


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
    # the currency its PnL settles in; None: the account's collateral (an inverse position
    # names its coin)
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
    # multi-collateral accounts (margin.assets, margin.collateral): money in
    # `valuation_currency`; single_asset accounts leave these at their defaults
    account_mode: str = "single_asset"
    valuation_currency: str = "USD"
    assets: tuple[Asset, ...] = ()
    open_order_loss: float = 0.0
    exchange_native_ratio: float | None = None

    @property
    def multi_collateral(self) -> bool:
        """True for multi_asset and portfolio accounts."""
        return self.account_mode != "single_asset"


def parse_snapshot(doc: Any) -> Snapshot:
    """Validate a decoded JSON document and return the Snapshot it describes; SnapshotError
    lists every problem (`problems`), not only the first."""
    with _collecting() as found:
        snapshot = _snapshot(doc)
    problems = list(found.values())
    if problems:
        raise SnapshotError("", "", problems) if len(problems) > 1 else problems[0]
    return snapshot


def _snapshot(doc: Any) -> Snapshot:
    _require_mapping(doc, "", "the snapshot")
    _reject_unknown(doc, _SNAPSHOT_KEYS, "")
    # Fields are checked in the order the format lists them, so the problems are listed in
    # the order a reader of the document meets them. A bad field reads as a stand-in value
    # (nan, "") so that the rest is checked too; checks across fields skip stand-ins.
    exchange = _string(doc, "exchange", "")
    account = _string(doc, "account", "")
    mode = "single_asset" if doc.get("account_mode") is None else _choice(doc, "account_mode", "", ACCOUNT_MODES)
    collateral = _string(doc, "collateral", "")
    if mode == "single_asset":
        wallet_balance = _number(doc, "wallet_balance", "", minimum=0.0)
    else:
        # the assets carry the money: a wallet_balance given is checked but not read (the
        # engine reads Snapshot.wallet_balance as a change to the collateral asset, 0 here)
        _optional_number(doc, "wallet_balance", "", minimum=0.0)
        wallet_balance = 0.0
    fee = _optional_number(doc, "taker_fee", "", minimum=0.0, below=1.0)
    timestamp = None if doc.get("timestamp") is None else _string(doc, "timestamp", "")
    positions_doc = doc.get("positions")
    positions: tuple[Position, ...] = ()
    if positions_doc is None:
        _keep(SnapshotError("positions", "missing (use [] for an account with no position)"))
    elif not isinstance(positions_doc, Sequence) or isinstance(positions_doc, str | bytes):
        _keep(SnapshotError("positions", f"must be a list, got {_kind(positions_doc)}"))
    else:
        read = (_each(_position, p, f"positions[{i}]", exchange) for i, p in enumerate(positions_doc))
        positions = tuple(p for p in read if p is not None)
    _check_one_mark_per_symbol(positions)
    valuation = "USD" if doc.get("valuation_currency") is None else _string(doc, "valuation_currency", "")
    assets = parse_assets(doc, mode)
    _check_settle_currencies(positions, assets, collateral, valuation, mode)
    _check_settlement(positions, collateral, mode)
    return Snapshot(
        exchange=exchange,
        account=account,
        collateral=collateral,
        wallet_balance=wallet_balance,
        positions=positions,
        taker_fee=fee,
        timestamp=timestamp,
        account_mode=mode,
        valuation_currency=valuation,
        assets=assets,
        open_order_loss=min(_optional_number(doc, "open_order_loss", "", minimum=0.0) or 0.0, _max_money(doc)),
        exchange_native_ratio=_optional_number(doc, "exchange_native_ratio", "", minimum=0.0),
    )


def _max_money(doc: Mapping[str, Any]) -> float:
    """open_order_loss is money: refused past 1e15, as the schema says."""
    value = doc.get("open_order_loss")
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 1e15:
        raise SnapshotError("open_order_loss", f"must be <= 1e+15, got {value!r}")
    return 1e15


def _check_settle_currencies(
    positions: tuple[Position, ...], assets: tuple[Asset, ...], collateral: str, valuation: str, mode: str
) -> None:
    """In a multi-collateral account every position settles in an asset the account lists
    (or in the valuation currency itself), so its PnL and maintenance can be valued."""
    if mode == "single_asset":
        return
    known = {a.asset for a in assets} | {valuation}
    for i, pos in enumerate(positions):
        settle = pos.settle or collateral
        if settle not in known:
            where = f"positions[{i}].settle" if pos.settle else "collateral"
            raise SnapshotError(where, f"{settle!r} is neither an asset of the account nor {valuation!r}")


def _check_one_mark_per_symbol(positions: tuple[Position, ...]) -> None:
    """Positions of one symbol (hedge legs, or cross beside isolated) share one mark."""
    first: dict[str, int] = {}
    for i, pos in enumerate(positions):
        if math.isnan(pos.mark_price):  # a bad mark, already named
            continue
        j = first.setdefault(pos.symbol, i)
        if positions[j].mark_price != pos.mark_price:
            _keep(
                SnapshotError(
                    f"positions[{i}].mark_price",
                    f"{pos.mark_price:g} differs from positions[{j}].mark_price "
                    f"{positions[j].mark_price:g} for the same symbol {pos.symbol}",
                )
            )


def _check_settlement(positions: tuple[Position, ...], collateral: str, mode: str) -> None:
    """An inverse position settles in the account's collateral coin, and a single-asset
    account holds either linear or inverse positions: their money is in different
    currencies (USDT and BTC), so one wallet cannot margin both. Inverse positions in a
    multi-collateral account are not read yet (issue 14 covers single-asset coin wallets)."""
    kinds: dict[str, int] = {}
    for i, pos in enumerate(positions):
        kinds.setdefault(pos.contract_type, i)
        if pos.inverse and mode != "single_asset":
            _keep(
                SnapshotError(
                    f"positions[{i}].contract_type",
                    "inverse positions are read in single_asset accounts only (one snapshot per coin)",
                )
            )
            continue
        if pos.inverse and pos.settle != collateral:
            _keep(
                SnapshotError(
                    f"positions[{i}].settle",
                    f"an inverse position settles in the collateral {collateral}, got {pos.settle}",
                )
            )
        other = "linear" if pos.inverse else "inverse"
        if other in kinds and mode == "single_asset":
            _keep(
                SnapshotError(
                    f"positions[{i}].contract_type",
                    f"{pos.contract_type} beside the {other} positions[{kinds[other]}]: a single-asset "
                    f"snapshot holds linear or inverse positions, not both (one snapshot per collateral)",
                )
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
        _keep(SnapshotError(f"{path}.settle", "required for an inverse position (the coin it settles in)"))
    isolated_margin = _optional_number(doc, "isolated_margin", path, minimum=0.0)
    if mode == "isolated" and isolated_margin is None:
        _keep(SnapshotError(f"{path}.isolated_margin", "required for an isolated position"))
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
    # checked with tiers too (then unused), so that no number in the document goes unread
    flat_amount = _optional_number(doc, "maintenance_amount", path, minimum=0.0) or 0.0
    if tiers_doc is not None and flat_rate is not None:
        return _no_table(f"{path}.tiers", "give either tiers or maintenance_margin_rate, not both")
    if tiers_doc is None:
        if flat_rate is None:
            return _no_table(f"{path}.maintenance_margin_rate", "missing (give tiers or a flat rate)")
        return (Tier(0.0, math.inf, flat_rate, flat_amount, None),)
    if not isinstance(tiers_doc, Sequence) or isinstance(tiers_doc, str | bytes):
        return _no_table(f"{path}.tiers", f"must be a list, got {_kind(tiers_doc)}")
    if not tiers_doc:
        return _no_table(f"{path}.tiers", "must hold at least one tier")
    before = _count()
    read = [_each(_tier, t, f"{path}.tiers[{i}]", exchange) for i, t in enumerate(tiers_doc)]
    raw = [t for t in read if t is not None]
    if _count() > before:  # a bad tier, already named: the table as a whole is not judged
        return ()
    _check_no_overlap(raw, f"{path}.tiers")
    try:
        return normalise_tiers(raw)
    except ValueError as exc:
        return _no_table(f"{path}.tiers", str(exc))


def _no_table(where: str, message: str) -> tuple[Tier, ...]:
    """No tier table (a stand-in) after noting why: the position's other fields are read on."""
    _keep(SnapshotError(where, message))
    return ()


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
            _keep(SnapshotError(f"{path}.maintenance_margin_rate", "missing"))
    min_notional = _number(doc, "min_notional", path, minimum=0.0)
    max_notional = _optional_number(doc, "max_notional", path, minimum=0.0)
    if max_notional is not None and max_notional <= min_notional:  # False for a stand-in (nan)
        _keep(
            SnapshotError(f"{path}.max_notional", f"must be above min_notional {min_notional:g}, got {max_notional:g}")
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
            _keep(
                SnapshotError(
                    f"{path}[{lower}].max_notional",
                    f"{ceiling:g} overlaps tiers[{upper}], which starts at {floor:g}",
                )
            )


# --- field readers: each names the path of what it rejects -------------------------------


def _each(read: Callable[..., T], doc: Any, path: str, *args: Any) -> T | None:
    """One list item read by `read`: None after a problem that stops the item (it is not
    an object, or its parts cannot be judged together), noted; the next item is read."""
    try:
        return read(doc, path, *args)
    except SnapshotError as problem:
        _keep(problem)
        return None


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "a boolean", str: "a string", dict: "an object", list: "a list"}.get(
        type(value), type(value).__name__
    )


def _shown(value: Any) -> str:
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**20:
        return f"an integer of {len(str(abs(value)))} digits"
    return f"{value!r}"


def _require_mapping(doc: Any, path: str, what: str) -> None:
    if not isinstance(doc, Mapping):
        raise SnapshotError(path, f"{what} must be a JSON object, got {_kind(doc)}")


def _reject_unknown(doc: Mapping[str, Any], known: set[str], path: str) -> None:
    for key in doc:
        if key not in known:
            where = f"{path}.{key}" if path else str(key)
            _keep(SnapshotError(where, "unknown field"))


def _field_path(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _string(doc: Mapping[str, Any], key: str, path: str) -> str:
    value = doc.get(key)
    if value is None:
        _keep(SnapshotError(_field_path(path, key), "missing"))
        return ""
    if not isinstance(value, str) or not value.strip():
        _keep(SnapshotError(_field_path(path, key), f"must be a non-empty string, got {_shown(value)}"))
        return ""
    return value


def _choice(doc: Mapping[str, Any], key: str, path: str, allowed: tuple[str, ...]) -> str:
    value = doc.get(key)
    if value is None:
        _keep(SnapshotError(_field_path(path, key), "missing"))
        return ""
    if value not in allowed:
        _keep(SnapshotError(_field_path(path, key), f"must be one of {', '.join(allowed)}; got {_shown(value)}"))
        return ""
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
        _keep(SnapshotError(_field_path(path, key), "missing"))
        return math.nan
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


# By field name: a name in two levels (maintenance_amount) has the same bounds in both.
_BOUNDS_BY_NAME = {name: bounds for table in SNAPSHOT_BOUNDS.values() for name, bounds in table.items()}
assert all(  # noqa: S101 - a table edited out of step fails at import, not in a poll
    _BOUNDS_BY_NAME[name] == bounds for table in SNAPSHOT_BOUNDS.values() for name, bounds in table.items()
)


def _bounds(where: str) -> tuple[float, float] | None:
    """The SNAPSHOT_BOUNDS of the field at path `where` (None: the field has none)."""
    return _BOUNDS_BY_NAME.get(where.rpartition(".")[2])


def _checked(value: Any, where: str, positive: bool, minimum: float | None, below: float | None) -> float:
    """`value` as a float, or math.nan (a stand-in) after noting its problem. Every
    comparison is made before float(): Python compares an int of any size with a float
    exactly, so an integer too large for a float is named, not an OverflowError."""
    # bool is an int subclass in Python; `true` is not a number in this format.
    if isinstance(value, bool) or not isinstance(value, int | float):
        return _bad(where, f"must be a number, got {_kind(value)} {_shown(value)}")
    if isinstance(value, float) and not math.isfinite(value):
        return _bad(where, f"must be a finite number, got {value!r}")
    if positive and value <= 0:
        return _bad(where, f"must be > 0, got {_shown(value)}")
    if minimum is not None and value < minimum:
        return _bad(where, f"must be >= {minimum:g}, got {_shown(value)}")
    if below is not None and value >= below:
        return _bad(where, f"must be < {below:g}, got {_shown(value)}")
    bounds = _bounds(where)
    if bounds is not None:
        lowest, highest = bounds
        if value > highest:
            return _bad(where, f"must be <= {highest:g}, got {_shown(value)}")
        if value < lowest and not (lowest > 0 and value <= 0):  # 0 where the sign allowed it: "none"
            return _bad(where, f"must be >= {lowest:g}, got {_shown(value)}")
        if value != 0 and abs(value) < TINY:
            return _bad(where, f"must be 0 or at least {TINY:g} in size, got {_shown(value)}")
    try:
        return float(value)
    except OverflowError:  # a field without bounds given an integer beyond the floats
        return _bad(where, f"must be a finite number, got {_shown(value)}")


def _bad(where: str, message: str) -> float:
    _keep(SnapshotError(where, message))
    return math.nan
