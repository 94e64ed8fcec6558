"""Hyperliquid's margin arithmetic, written from its published documentation, for the
simulator's Hyperliquid venue.

This module does not use the margin engine (margin/), on purpose: what the simulator serves
as Hyperliquid's `liquidationPx`, `marginUsed` and account values is computed here from the
venue's own formulas, so comparing the engine's figures (through the connector) with them
checks the engine against the venue's rules, not against itself. (The other venues'
figures come from the engine: simulator/figures.py.)

Sources (hyperliquid.gitbook.io/hyperliquid-docs):
- "Margin tiers": maintenance_margin = notional_position_value x maintenance_margin_rate -
  maintenance_deduction; maintenance_margin_rate(tier n) = (initial margin rate at the
  maximum leverage of tier n) / 2; maintenance_deduction(0) = 0 and maintenance_deduction(n)
  = maintenance_deduction(n - 1) + notional_position_lower_bound(n) x (rate(n) - rate(n-1)).
- "Liquidations": a position is liquidated when the equity of its account (cross) or of the
  position (isolated) falls below the maintenance margin; "the maintenance margin is half
  of the initial margin at max leverage"; liq_price = price - side x margin_available /
  position_size / (1 - l x side), l = 1 / maintenance leverage of the tier holding the
  position value at the liquidation price, side 1 long / -1 short, margin_available (cross)
  = account_value - maintenance_margin_required, (isolated) = isolated_margin -
  maintenance_margin_required.
- "Margining": initial margin = position_size x mark_price / leverage; isolated positions
  keep their unrealized PnL as margin.
- clearinghouseState fields (info endpoint, "Perpetuals"), checked against the docs'
  example and ccxt's recorded responses (tests/fixtures/hyperliquid/): isolated
  marginUsed = rawUsd + szi x mark (the position's margin with its PnL, rawUsd its cash
  leg); cross marginUsed = positionValue / leverage; crossMaintenanceMarginUsed = the cross
  positions' maintenance; marginSummary = crossMarginSummary plus the isolated positions.

Prices in USDC per coin, sizes in coins (`szi` signed: > 0 long), money in USDC.
"""

from __future__ import annotations

from dataclasses import dataclass

from simulator.figures import AccountFigures, PositionFigures
from simulator.scenario import AccountSpec, MarketSpec, PositionSpec

DEFAULT_LEVERAGE = 20  # a new position's leverage on Hyperliquid, capped by the coin's max
BASE_TAKER_FEE = 0.00045  # Hyperliquid's base-tier perpetuals taker fee (docs, "Fees")
_EDGE = 1e-12  # relative slack when a price lands on a tier bound


@dataclass(frozen=True)
class MarginTier:
    """One row of a Hyperliquid margin table: from `lower_bound` of position value (USDC)."""

    lower_bound: float
    max_leverage: int
    rate: float  # maintenance margin rate: 1 / (2 x max_leverage)
    deduction: float  # maintenance deduction, USDC

    def maintenance(self, notional: float) -> float:
        return notional * self.rate - self.deduction


def margin_table(market: MarketSpec) -> tuple[MarginTier, ...]:
    """The market's margin table (the scenario's tiers: lower bound and max leverage)."""
    tiers: list[MarginTier] = []
    deduction = previous_rate = 0.0
    for i, tier in enumerate(market.tiers):
        leverage = int(tier.max_leverage)
        rate = 1.0 / (2.0 * leverage)
        if i:
            deduction += tier.min_notional * (rate - previous_rate)
        tiers.append(MarginTier(tier.min_notional, leverage, rate, deduction))
        previous_rate = rate
    return tuple(tiers)


def tier_for(table: tuple[MarginTier, ...], notional: float) -> int:
    """Index of the tier holding a position value of `notional`."""
    index = 0
    for i, tier in enumerate(table):
        if notional >= tier.lower_bound:
            index = i
    return index


def _holds(table: tuple[MarginTier, ...], index: int, notional: float) -> bool:
    upper = table[index + 1].lower_bound if index + 1 < len(table) else None
    return table[index].lower_bound <= notional * (1 + _EDGE) and (upper is None or notional < upper * (1 + _EDGE))


def liquidation_price(
    table: tuple[MarginTier, ...], mark: float, szi: float, pool_equity: float, other_maintenance: float
) -> float | None:
    """The docs' liq_price for a position of `szi` coins at `mark` in a pool (the cross
    account, or the isolated position) of equity `pool_equity` whose other positions need
    `other_maintenance`: the price where the pool's equity meets its maintenance, this
    position's price moving alone. The tier is the one holding the position value at that
    price. None when it would be at or below 0 (Hyperliquid sends null)."""
    side = 1.0 if szi > 0 else -1.0
    size = abs(szi)
    for index, tier in enumerate(table):
        margin_available = pool_equity - other_maintenance - tier.maintenance(size * mark)
        price = mark - side * margin_available / size / (1.0 - tier.rate * side)
        if price > 0 and _holds(table, index, size * price):
            return price
    return None


def leverage_of(position: PositionSpec, table: tuple[MarginTier, ...]) -> int:
    """The position's leverage: a whole number from 1 to the coin's max leverage."""
    top = table[0].max_leverage
    if position.leverage is None:
        return min(DEFAULT_LEVERAGE, top)
    if position.leverage != int(position.leverage) or not 1 <= position.leverage <= top:
        raise ValueError(
            f"{position.symbol}: leverage must be a whole number from 1 to {top} on Hyperliquid, "
            f"got {position.leverage:g}"
        )
    return int(position.leverage)


def account_figures(spec: AccountSpec, markets: dict[str, MarketSpec], marks: dict[str, float]) -> AccountFigures:
    """The account at `marks` (symbol -> mark), by Hyperliquid's rules. ValueError for an
    account the venue would not hold (a leverage beyond the coin's maximum)."""
    tables = {p.symbol: margin_table(markets[p.symbol]) for p in spec.positions}
    rows = []
    for i, p in enumerate(spec.positions):
        mark, table = marks[p.symbol], tables[p.symbol]
        szi = p.contracts if p.side == "long" else -p.contracts
        notional = p.contracts * mark
        tier = tier_for(table, notional)
        rows.append((i, p, mark, szi, notional, szi * (mark - p.entry_price), tier, leverage_of(p, table)))
    cross = [r for r in rows if r[1].margin_mode == "cross"]
    isolated = [r for r in rows if r[1].margin_mode == "isolated"]
    maintenance = {r[0]: tables[r[1].symbol][r[6]].maintenance(r[4]) for r in rows}
    cross_equity = spec.wallet_balance + sum(r[5] for r in cross)
    cross_maintenance = sum(maintenance[r[0]] for r in cross)
    positions = []
    for i, p, mark, szi, notional, upl, tier, leverage in rows:
        table = tables[p.symbol]
        if p.margin_mode == "cross":
            equity, pool_maintenance = cross_equity, cross_maintenance
        else:
            equity, pool_maintenance = (p.isolated_margin or 0.0) + upl, maintenance[i]
        bust = mark - (equity / szi)
        positions.append(
            PositionFigures(
                index=i,
                spec=p,
                market=markets[p.symbol],
                mark=mark,
                size=p.contracts,
                notional=notional,
                entry_value=p.contracts * p.entry_price,
                unrealized_pnl=upl,
                maintenance_margin=maintenance[i],
                closing_fee=0.0,  # Hyperliquid's requirement has no closing fee
                maintenance_rate=table[tier].rate,
                maintenance_amount=table[tier].deduction,
                tier_index=tier,
                leverage=leverage,
                initial_margin=notional / leverage,
                liquidation_price=liquidation_price(table, mark, szi, equity, pool_maintenance - maintenance[i]),
                bankruptcy_price=bust if bust > 0 else None,
                pool_equity=equity,
                pool_maintenance=pool_maintenance,
            )
        )
    return AccountFigures(
        spec=spec,
        positions=tuple(positions),
        taker_fee=BASE_TAKER_FEE if spec.taker_fee is None else spec.taker_fee,
        cross_equity=cross_equity,
        cross_maintenance=cross_maintenance,
        cross_initial=sum(r[4] / r[7] for r in cross),
        cross_upl=sum(r[5] for r in cross),
        isolated_margin=sum(r[1].isolated_margin or 0.0 for r in isolated),
        isolated_upl=sum(r[5] for r in isolated),
        hedge_mode=False,  # one signed position per coin
    )


# --- clearinghouseState's figures ----------------------------------------------------


def szi(p: PositionFigures) -> float:
    return p.sign * p.size


def margin_used(p: PositionFigures) -> float:
    """Cross: the initial margin at mark (positionValue / leverage); isolated: the
    position's margin with its unrealized PnL (rawUsd + szi x mark)."""
    if p.spec.margin_mode == "cross":
        return p.initial_margin
    return (p.spec.isolated_margin or 0.0) + p.unrealized_pnl


def raw_usd(p: PositionFigures) -> float:
    """The position's cash leg: its margin less what was paid for it (szi x entry); for a
    cross position only the second part (the margin is the account's)."""
    own = (p.spec.isolated_margin or 0.0) if p.spec.margin_mode == "isolated" else 0.0
    return own - szi(p) * p.spec.entry_price


def return_on_equity(p: PositionFigures) -> float:
    """Unrealized PnL over the margin the position was opened with (entry value / leverage)."""
    opened_with = p.entry_value / p.leverage
    return p.unrealized_pnl / opened_with if opened_with else 0.0


@dataclass(frozen=True)
class MarginSummary:
    """`marginSummary` (the whole account) or `crossMarginSummary` (the cross part)."""

    account_value: float
    total_ntl_pos: float
    total_raw_usd: float
    total_margin_used: float


@dataclass(frozen=True)
class Clearinghouse:
    """The account-level figures of clearinghouseState."""

    margin_summary: MarginSummary
    cross_margin_summary: MarginSummary
    cross_maintenance_margin_used: float
    withdrawable: float


def clearinghouse(fig: AccountFigures) -> Clearinghouse:
    """Cross account value = wallet + the cross positions' PnL; the whole account adds each
    isolated position's marginUsed. `withdrawable` = cross account value - cross margin
    used, floored at 0: this reproduces the docs' example and the recordings without cross
    positions; with cross positions open the live venue withholds a few USDC more (6.9 and
    36.9 in two of ccxt's recordings), by a rule it does not publish."""
    cross = [p for p in fig.positions if p.spec.margin_mode == "cross"]
    isolated = [p for p in fig.positions if p.spec.margin_mode == "isolated"]
    cross_summary = MarginSummary(
        account_value=fig.cross_equity,
        total_ntl_pos=sum(p.notional for p in cross),
        total_raw_usd=fig.wallet_balance + sum(raw_usd(p) for p in cross),
        total_margin_used=sum(margin_used(p) for p in cross),
    )
    whole = MarginSummary(
        account_value=cross_summary.account_value + sum(margin_used(p) for p in isolated),
        total_ntl_pos=cross_summary.total_ntl_pos + sum(p.notional for p in isolated),
        total_raw_usd=cross_summary.total_raw_usd + sum(raw_usd(p) for p in isolated),
        total_margin_used=cross_summary.total_margin_used + sum(margin_used(p) for p in isolated),
    )
    return Clearinghouse(
        margin_summary=whole,
        cross_margin_summary=cross_summary,
        cross_maintenance_margin_used=fig.cross_maintenance,
        withdrawable=max(0.0, cross_summary.account_value - cross_summary.total_margin_used),
    )
