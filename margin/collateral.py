"""Multi-collateral accounts: adjusted equity, the account's maintenance, its health.

For `multi_asset` and `portfolio` snapshots (margin.assets) the cross pool is the account.
Money here is in the snapshot's valuation currency. One formula serves every venue below,
which all publish the same structure (the venue's own terms in brackets):

    asset equity (units)  = amount + wallet change + PnL of cross positions settling in it
    adjusted value        = Σ bands of a positive equity x price x band ratio, or
                            equity x price when negative (a debt counts in full)
                            − borrowed x price (full value)
    equity                = Σ adjusted values − open_order_loss
    venue maintenance     = Σ position maintenance x settle price + Σ loans x price x rate
    maintenance_margin    = liquidation level x venue maintenance   (health 1 = liquidation)

Sources, per venue:

- Bybit Unified Trading Account, cross: "Key Terms and Formulas in Unified Trading Account"
  (help centre): account margin balance = Σ coin equity x USD index price x collateral value
  ratio + derivatives UPL; account MM rate (`accountMMRate`) = total maintenance / margin
  balance (less haircut loss and order loss); liquidation when it reaches 100 %. "Assets
  Collateral Value Ratio List (UTA)": the ratio is tiered by quantity and applies to
  positive balances only; negative balances count at 100 %. The tiers come from
  `GET /v5/spot-margin-trade/collateral` (`collateralRatioList`: `minQty`, `maxQty`,
  `collateralRatio`; bybit-exchange.github.io/docs/v5/spot-margin-uta/tier-collateral-ratio).
  The haircut loss of spot hedging is not modelled (we have no source for its formula).
- Binance USD-M Multi-Assets mode: "What Is Multi-Assets Mode and What Assets Does It
  Support" (binance.com/en/support/faq/29b45c485d664028b9ca1cdf90b24f6f, and the
  Multi-Assets info page): "BNB with a market value of $1,000 will be valued at $950 and ADA
  with a market value of $1,000 will be valued at $900"; profits and losses are in the
  contract's settle asset; cross only; margin ratio (`marginRatio`) = maintenance / margin
  balance, liquidation at 100 %.
- Binance Portfolio Margin: FAQ "What Is uniMMR": uniMMR = Σ adjusted equity / Σ
  maintenance; per asset min(value x collateral rate, value), negative balances at full
  value; margin-loan maintenance = loan x MMR; liquidation at uniMMR 1.05 (Portfolio Margin
  Pro: 1.5 reminder, 1.2 reduce-only, 1.05 liquidation). So the requirement we report is
  1.05 x the venue's maintenance, and health is 1 where Binance liquidates.
- OKX multi-currency margin (`acctLv` 3): "adjusted equity = Σ coin equity x price x
  discount rate" with discount rates tiered per coin in USD value
  (`/api/v5/public/discount-rate-interest-free-quota`, `discountInfo`); `mgnRatio` =
  adjusted equity / (maintenance + liquidation fee), liquidation below 100 %. ccxt's unified
  `marginRatio` for OKX is the inverse sense; we name ours `mgnRatio` and never mix them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from margin.assets import Asset
from margin.pools import Pool, PoolFigures, maintenance_requirement, taker_fee, unrealized_pnl
from margin.rules import venue_rule
from margin.snapshot import Snapshot

Factor = Callable[[str], float]


@dataclass(frozen=True)
class AccountRule:
    """Where a multi-collateral account of one venue is liquidated, and the ratio it shows."""

    level: float = 1.0
    native_name: str | None = None
    native_kind: Literal["maintenance/equity", "equity/maintenance"] = "maintenance/equity"


_ACCOUNT_RULES: dict[tuple[str, str], AccountRule] = {
    ("binanceusdm", "multi_asset"): AccountRule(1.0, "marginRatio", "maintenance/equity"),
    ("binanceusdm", "portfolio"): AccountRule(1.05, "uniMMR", "equity/maintenance"),
    ("bybit", "multi_asset"): AccountRule(1.0, "accountMMRate", "maintenance/equity"),
    ("bybit", "portfolio"): AccountRule(1.0, "accountMMRate", "maintenance/equity"),
    ("okx", "multi_asset"): AccountRule(1.0, "mgnRatio", "equity/maintenance"),
    ("okx", "portfolio"): AccountRule(1.0, "mgnRatio", "equity/maintenance"),
}


# every (venue, mode) with a rule of its own: the multi-collateral accounts we value
MULTI_COLLATERAL_MODES: tuple[tuple[str, str], ...] = tuple(_ACCOUNT_RULES)


def account_rule(snapshot: Snapshot) -> AccountRule:
    """The account-level rule of the snapshot's venue and mode (sources: module docstring)."""
    name = venue_rule(snapshot.exchange).name
    return _ACCOUNT_RULES.get((name, snapshot.account_mode), AccountRule())


def haircut_value(asset: Asset, units: float, price: float) -> float:
    """Value after haircut of holding `units` (> 0) at `price`, band by band; a negative
    holding counts at full value."""
    if units <= 0:
        return units * price
    total = 0.0
    for band in asset.bands:
        size = units if band.unit == "amount" else units * price
        part = min(size, band.high) - band.low
        if part <= 0:
            break
        total += part * band.ratio * (price if band.unit == "amount" else 1.0)
    return total


def marginal_ratio(asset: Asset, units: float, price: float) -> float:
    """The ratio at which the next unit added to a holding of `units` counts (1 while the
    holding is negative: paying back a debt counts in full)."""
    if units < 0:
        return 1.0
    size = units if asset.bands[0].unit == "amount" else units * price
    for band in asset.bands:
        if band.low <= size < band.high:
            return band.ratio
    return 0.0


def units_for_value(asset: Asset, units: float, price: float, value: float) -> float | None:
    """How many units to add to a holding of `units` so its value after haircut rises by
    `value`; None when the bands cannot give that much."""
    added, need = 0.0, value
    for _ in range(len(asset.bands) + 2):
        if need <= 1e-12 * max(1.0, value):
            return added
        now = units + added
        ratio = marginal_ratio(asset, now, price)
        if ratio <= 0:
            return None
        if now < 0:
            edge = 0.0  # the debt is paid back at full value first
        else:
            size = now if asset.bands[0].unit == "amount" else now * price
            high = next((b.high for b in asset.bands if b.low <= size < b.high), math.inf)
            edge = high if asset.bands[0].unit == "amount" else high / price
        room = (edge - now) * price * ratio
        if room >= need or math.isinf(edge):
            return added + need / (price * ratio)
        added, need = edge - now + added, need - room
    return None


@dataclass(frozen=True)
class AssetFigures:
    """One asset at one set of prices: `equity` in units (amount + PnL settling in it),
    `value` = equity x price, `adjusted` after haircut, less the loan."""

    asset: str
    amount: float
    equity: float
    price: float
    value: float
    adjusted: float
    borrow_maintenance: float

    @property
    def ratio(self) -> float | None:
        """Value after haircut / value (None without a positive value)."""
        return self.adjusted / self.value if self.value > 0 else None


@dataclass(frozen=True)
class AccountFigures:
    """The account (cross pool) at one set of prices, valuation currency."""

    assets: tuple[AssetFigures, ...]
    equity: float
    position_maintenance: float
    borrow_maintenance: float
    rule: AccountRule

    @property
    def venue_maintenance(self) -> float:
        return self.position_maintenance + self.borrow_maintenance

    @property
    def maintenance_margin(self) -> float:
        """The requirement at the venue's liquidation level: health 1 = liquidation."""
        return self.rule.level * self.venue_maintenance

    def native_ratio(self) -> float | None:
        """The venue's own ratio (uniMMR, accountMMRate, mgnRatio, marginRatio) from ours."""
        if self.venue_maintenance <= 0:
            return None
        if self.rule.native_kind == "equity/maintenance":
            return self.equity / self.venue_maintenance
        return self.venue_maintenance / self.equity if self.equity > 0 else None


def _unmoved(_symbol: str) -> float:
    return 1.0


def account_figures(
    snapshot: Snapshot, pool: Pool, prices: Sequence[float] | None = None, factor: Factor | None = None
) -> AccountFigures:
    """The account at mark, at `prices` (one per position), or with every symbol's price
    times `factor(symbol)`. An asset with a `price_symbol` moves with that symbol: by
    `factor`, or by the ratio of a position's price in `prices` to its mark."""
    moves = factor or _unmoved
    if prices is not None and factor is None:
        ratios = {p.symbol: prices[i] / p.mark_price for i, p in enumerate(snapshot.positions)}
        moves = lambda symbol: ratios.get(symbol, 1.0)  # noqa: E731 - a closure over ratios
    asset_price = {a.asset: a.price * (moves(a.price_symbol) if a.price_symbol else 1.0) for a in snapshot.assets}
    asset_price.setdefault(snapshot.valuation_currency, 1.0)
    pnl: dict[str, float] = {snapshot.collateral: pool.balance}  # the wallet change (deleverage, top-up)
    rule = venue_rule(snapshot.exchange).mode("cross")
    fee = taker_fee(snapshot)
    position_mm = 0.0
    for i in pool.indices:
        pos = snapshot.positions[i]
        price = pos.mark_price * moves(pos.symbol) if prices is None else prices[i]
        settle = pos.settle or snapshot.collateral
        pnl[settle] = pnl.get(settle, 0.0) + unrealized_pnl(pos, price)
        position_mm += maintenance_requirement(pos, rule, fee, price) * asset_price[settle]
    rows = []
    for a in snapshot.assets:
        price = asset_price[a.asset]
        units = a.amount + pnl.pop(a.asset, 0.0)
        loan = a.borrowed + max(0.0, -a.amount)
        adjusted = haircut_value(a, units, price) - a.borrowed * price
        borrow_mm = loan * price * a.borrow_maintenance_rate
        rows.append(AssetFigures(a.asset, a.amount, units, price, units * price, adjusted, borrow_mm))
    # PnL settling in the valuation currency itself (not listed as an asset) counts in full
    loose = sum(pnl.values())
    equity = sum(r.adjusted for r in rows) + loose - snapshot.open_order_loss
    return AccountFigures(
        tuple(rows), equity, position_mm, sum(r.borrow_maintenance for r in rows), account_rule(snapshot)
    )


def cross_figures(snapshot: Snapshot, pool: Pool, prices: Sequence[float] | None = None) -> PoolFigures:
    """The account as a PoolFigures (margin.pools.pool_figures' hook for these accounts)."""
    figures = account_figures(snapshot, pool, prices)
    return PoolFigures(pool, figures.equity, figures.maintenance_margin)


def best_topup(snapshot: Snapshot, pool: Pool, value: float) -> tuple[str, float] | None:
    """The asset whose next unit counts at the best ratio (first listed on a tie) and how
    many units of it add `value` (valuation currency) to the equity; None when none can."""
    figures = account_figures(snapshot, pool)
    best: tuple[float, Asset, AssetFigures] | None = None
    for a, row in zip(snapshot.assets, figures.assets, strict=True):
        ratio = marginal_ratio(a, row.equity, row.price)
        if ratio > 0 and (best is None or ratio > best[0]):
            best = (ratio, a, row)
    if best is None:
        return None
    _, a, row = best
    units = units_for_value(a, row.equity, row.price, value)
    return None if units is None else (a.asset, units)
