"""Multi-collateral accounts in the snapshot format: the account mode and its assets.

An account in `multi_asset` mode (Binance USD-M Multi-Assets, Bybit UTA cross, OKX
multi-currency) or `portfolio` mode (Binance Portfolio Margin) holds several collateral
assets in one cross pool, each valued at its price times a haircut (collateral value ratio,
collateral rate, discount rate). This module holds the format's part for them
(docs/snapshot-format.md, "Multi-collateral accounts"); margin.collateral values them.

Units: `amount` and `borrowed` in asset units (a negative amount is borrowed); `price` is
one unit in the account's valuation currency; ratios are fractions of value (0.95 = 95 %).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any, Literal

AccountMode = Literal["single_asset", "multi_asset", "portfolio"]
ACCOUNT_MODES: tuple[str, ...] = ("single_asset", "multi_asset", "portfolio")

# The magnitudes the schema states (docs/snapshot.schema.json, like cli.inputs' bounds): the
# engine's products of them (amount x price, up to 1e27) stay finite.
MONEY = 1e15
PRICE = (1e-12, 1e12)
TINY = 1e-12

_ASSET_KEYS = {
    "asset",
    "amount",
    "price",
    "collateral_ratio",
    "collateral_tiers",
    "price_symbol",
    "borrowed",
    "borrow_maintenance_rate",
    "info",
}
_BAND_KEYS = {"min_amount", "max_amount", "min_value", "max_value", "ratio", "info"}


@dataclass(frozen=True)
class CollateralBand:
    """One band of a tiered haircut: the part of the holding between `low` and `high`
    (asset units when `unit` is "amount", valuation currency when "value") counts at
    `ratio`. `high` is math.inf for the last band."""

    low: float
    high: float
    ratio: float
    unit: Literal["amount", "value"] = "amount"


@dataclass(frozen=True)
class Asset:
    """One collateral asset of a multi-collateral account. `bands` is the tiered haircut
    (a flat `collateral_ratio` is one band from 0 without end). `price_symbol` is the market
    whose mark moves this asset's price; `borrowed` a loan held beside the balance."""

    asset: str
    amount: float
    price: float
    bands: tuple[CollateralBand, ...]
    price_symbol: str | None = None
    borrowed: float = 0.0
    borrow_maintenance_rate: float = 0.0

    @property
    def flat_ratio(self) -> float | None:
        """The ratio when the haircut is flat (one band), else None."""
        return self.bands[0].ratio if len(self.bands) == 1 else None


def parse_assets(doc: Mapping[str, Any], mode: str) -> tuple[Asset, ...]:
    """The account's `assets`: required (non-empty) unless the mode is single_asset, where
    it is refused rather than silently ignored."""
    from margin.snapshot import SnapshotError, _kind

    assets_doc = doc.get("assets")
    if mode == "single_asset":
        if assets_doc is not None:
            raise SnapshotError("assets", "only for account_mode multi_asset or portfolio")
        return ()
    if assets_doc is None:
        raise SnapshotError("assets", f"required when account_mode is {mode}")
    if not isinstance(assets_doc, Sequence) or isinstance(assets_doc, str | bytes):
        raise SnapshotError("assets", f"must be a list, got {_kind(assets_doc)}")
    if not assets_doc:
        raise SnapshotError("assets", "must hold at least one asset")
    assets = tuple(_asset(a, f"assets[{i}]") for i, a in enumerate(assets_doc))
    seen: dict[str, int] = {}
    for i, a in enumerate(assets):
        if a.asset in seen:
            raise SnapshotError(f"assets[{i}].asset", f"{a.asset!r} is already assets[{seen[a.asset]}]")
        seen[a.asset] = i
    return assets


def _asset(doc: Any, path: str) -> Asset:
    from margin.snapshot import SnapshotError, _number, _optional_number, _reject_unknown, _require_mapping, _string

    _require_mapping(doc, path, "an asset")
    _reject_unknown(doc, _ASSET_KEYS, path)
    name = _string(doc, "asset", path)
    amount = _bounded(_number(doc, "amount", path), f"{path}.amount", MONEY)
    price = _number(doc, "price", path, positive=True)
    if not PRICE[0] <= price <= PRICE[1]:
        raise SnapshotError(f"{path}.price", f"must be from {PRICE[0]:g} to {PRICE[1]:g}, got {price!r}")
    ratio = _optional_number(doc, "collateral_ratio", path, minimum=0.0)
    if ratio is not None and ratio > 1.0:
        raise SnapshotError(f"{path}.collateral_ratio", f"must be <= 1, got {ratio!r}")
    tiers_doc = doc.get("collateral_tiers")
    if ratio is not None and tiers_doc is not None:
        raise SnapshotError(f"{path}.collateral_tiers", "give either collateral_ratio or collateral_tiers, not both")
    if ratio is None and tiers_doc is None:
        raise SnapshotError(f"{path}.collateral_ratio", "missing (give collateral_ratio or collateral_tiers)")
    bands = (CollateralBand(0.0, math.inf, ratio),) if ratio is not None else _bands(tiers_doc, path)
    symbol = None if doc.get("price_symbol") is None else _string(doc, "price_symbol", path)
    return Asset(
        asset=name,
        amount=amount,
        price=price,
        bands=bands,
        price_symbol=symbol,
        borrowed=_bounded(_optional_number(doc, "borrowed", path, minimum=0.0) or 0.0, f"{path}.borrowed", MONEY),
        borrow_maintenance_rate=_optional_number(doc, "borrow_maintenance_rate", path, minimum=0.0, below=1.0) or 0.0,
    )


def _bounded(value: float, where: str, highest: float) -> float:
    from margin.snapshot import SnapshotError

    if abs(value) > highest:
        raise SnapshotError(where, f"must be at most {highest:g} in size, got {value!r}")
    if value != 0 and abs(value) < TINY:
        raise SnapshotError(where, f"must be 0 or at least {TINY:g} in size, got {value!r}")
    return value


def _bands(tiers_doc: Any, path: str) -> tuple[CollateralBand, ...]:
    """Bands in asset units (`min_amount`/`max_amount`) or in value (`min_value`/
    `max_value`), one unit per table; the first starts at 0, none overlap, a gap is held by
    the band below it (like maintenance tiers)."""
    from margin.snapshot import SnapshotError, _kind, _number, _optional_number, _reject_unknown, _require_mapping

    where = f"{path}.collateral_tiers"
    if not isinstance(tiers_doc, Sequence) or isinstance(tiers_doc, str | bytes):
        raise SnapshotError(where, f"must be a list, got {_kind(tiers_doc)}")
    if not tiers_doc:
        raise SnapshotError(where, "must hold at least one band")
    rows: list[tuple[float, float | None, float, str, int]] = []
    unit = None
    for i, band in enumerate(tiers_doc):
        bpath = f"{where}[{i}]"
        _require_mapping(band, bpath, "a collateral band")
        _reject_unknown(band, _BAND_KEYS, bpath)
        this = "value" if "min_value" in band or "max_value" in band else "amount"
        if this == "value" and ("min_amount" in band or "max_amount" in band):
            raise SnapshotError(bpath, "give bounds in amount or in value, not both")
        if unit is not None and this != unit:
            raise SnapshotError(f"{bpath}.min_{this}", f"the table's bands are in {unit}; this one is in {this}")
        unit = this
        low = _bounded(_number(band, f"min_{unit}", bpath, minimum=0.0), f"{bpath}.min_{unit}", 1e30)
        high = _optional_number(band, f"max_{unit}", bpath, minimum=0.0)
        if high is not None:
            _bounded(high, f"{bpath}.max_{unit}", 1e30)
        if high is not None and high <= low:
            raise SnapshotError(f"{bpath}.max_{unit}", f"must be above min_{unit} {low:g}, got {high:g}")
        ratio = _number(band, "ratio", bpath, minimum=0.0)
        if ratio > 1.0:
            raise SnapshotError(f"{bpath}.ratio", f"must be <= 1, got {ratio!r}")
        rows.append((low, high, ratio, unit, i))
    rows.sort(key=lambda r: r[0])
    if rows[0][0] != 0.0:
        raise SnapshotError(f"{where}[{rows[0][4]}].min_{unit}", f"the first band must start at 0, got {rows[0][0]:g}")
    for lower, upper in pairwise(rows):
        if lower[0] == upper[0]:
            raise SnapshotError(f"{where}[{upper[4]}].min_{unit}", f"two bands start at {upper[0]:g}")
        if lower[1] is not None and lower[1] > upper[0]:
            raise SnapshotError(
                f"{where}[{lower[4]}].max_{unit}", f"{lower[1]:g} overlaps the band that starts at {upper[0]:g}"
            )
    # a band runs up to the next floor (a gap is held by the band below); past the last
    # band's own max nothing counts, as past Bybit's last band (ratio 0)
    last = rows[-1][1]
    highs = [r[0] for r in rows[1:]] + [math.inf if last is None else last]
    return tuple(CollateralBand(r[0], h, r[2], r[3]) for r, h in zip(rows, highs, strict=True))  # type: ignore[arg-type]
