"""Positions and margin pools: notional, PnL, maintenance requirement, equity, health.

Sign conventions: `sign` is +1 for a long and -1 for a short; unrealized PnL =
sign x size x (mark - entry). A margin pool is the cross pool (the wallet plus every cross
position) or one isolated position with its own margin. Its equity is the pool's balance
plus the unrealized PnL of its positions.

An inverse (coin-margined) position's PnL and requirement are in its coin, from its
linear twin in 1/price (margin.inverse): the functions taking a price take it in quote
currency; `tier_column`, `requirement_line` and `fee_to_close` work on linear positions,
so callers pass them an inverse position's `linear_twin` (and its price 1/P).

health = equity / maintenance requirement: the venue liquidates the pool at 1.
margin ratio = maintenance requirement / equity (Binance's convention): liquidation at 1.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from margin.inverse import linear_twin, twin_price
from margin.rules import ModeRule, VenueRule, venue_rule
from margin.snapshot import Position, Snapshot
from margin.tiers import tier_index


def taker_fee(snapshot: Snapshot) -> float:
    """The snapshot's taker fee, or the venue's base-tier fee when it gives none."""
    if snapshot.taker_fee is not None:
        return snapshot.taker_fee
    return venue_rule(snapshot.exchange).default_taker_fee


def tier_column(pos: Position, rule: ModeRule, price: float, below: bool = False) -> int:
    """Index of the tier that holds `pos` when its price is `price` (entry value on venues
    whose maintenance is on entry). With `below`, the tier just under that notional: the
    segment a downward walk from exactly a tier floor enters."""
    basis = pos.entry_price if rule.maintenance_basis == "entry" else price
    return tier_index(pos.tiers, pos.size * max(basis, 0.0), below and rule.maintenance_basis == "mark")


def fee_to_close(pos: Position, fee: float) -> float:
    """Bybit's estimated fee to close (quote currency, >= 0): the taker fee on closing at
    the bankruptcy price, size x entry x (1 - side / leverage) x fee. Without a leverage,
    an isolated position's comes from its margin (1 / leverage = isolated margin / entry
    value) and a cross position's is taken as unbounded (the fee at entry). Constant in
    the price (margin.rules, Bybit). An inverse position's is its twin's, in the coin:
    size / entry x (1 + side / leverage) x fee, the taker fee at its bankruptcy price
    entry x leverage / (leverage +/- 1) (Bybit inverse)."""
    pos = linear_twin(pos)
    entry_value = pos.size * pos.entry_price
    if pos.leverage is not None:
        margin_rate = 1.0 / pos.leverage
    elif pos.margin_mode == "isolated" and pos.isolated_margin is not None:
        margin_rate = pos.isolated_margin / entry_value
    else:
        margin_rate = 0.0
    # a long at leverage below 1 has a bankruptcy price below 0: nothing to pay there
    return max(0.0, entry_value * (1.0 - pos.sign * margin_rate) * fee)


def requirement_line(pos: Position, rule: ModeRule, fee: float, column: int) -> tuple[float, float]:
    """Maintenance requirement of `pos` in tier `column`, as slope x price + intercept
    (quote currency): linear in the price while the tier holds."""
    tier = pos.tiers[column]
    if rule.maintenance_basis == "entry":
        slope, intercept = 0.0, pos.size * pos.entry_price * tier.maintenance_margin_rate
    else:
        slope, intercept = pos.size * tier.maintenance_margin_rate, 0.0
    if rule.uses_maintenance_amount:
        intercept -= tier.maintenance_amount
    if rule.fee_in_requirement:
        slope += pos.size * fee
    if rule.fee_to_close:
        intercept += fee_to_close(pos, fee)
    return slope, intercept


def maintenance_requirement(pos: Position, rule: ModeRule, fee: float, price: float) -> float:
    """Maintenance requirement of `pos` (collateral currency: quote, or the coin of an
    inverse position) when its mark is `price` (quote currency)."""
    if pos.inverse:
        pos, price = linear_twin(pos), twin_price(pos, price)
    slope, intercept = requirement_line(pos, rule, fee, tier_column(pos, rule, price))
    return slope * price + intercept


def unrealized_pnl(pos: Position, price: float) -> float:
    """Unrealized PnL at `price`: sign x size x (price - entry) in quote currency, or for an
    inverse position sign x size x (1/entry - 1/price) in its coin."""
    if pos.inverse:
        return pos.sign * pos.size * (1.0 / pos.entry_price - 1.0 / price)
    return pos.sign * pos.size * (price - pos.entry_price)


@dataclass(frozen=True)
class Pool:
    """A margin pool: `key` is "cross" or "isolated:<position index>"; `balance` is the
    cross wallet or the isolated position's margin."""

    key: str
    margin_mode: str
    indices: tuple[int, ...]
    balance: float


@dataclass(frozen=True)
class PoolFigures:
    """A pool's numbers at one set of prices (quote currency)."""

    pool: Pool
    equity: float
    maintenance_margin: float

    @property
    def health(self) -> float | None:
        """equity / maintenance; None for a pool that holds no position."""
        if not self.pool.indices or self.maintenance_margin <= 0:
            return None
        return self.equity / self.maintenance_margin

    @property
    def margin_ratio(self) -> float | None:
        """maintenance / equity; None without a position or without positive equity."""
        if not self.pool.indices or self.equity <= 0 or self.maintenance_margin <= 0:
            return None
        return self.maintenance_margin / self.equity

    @property
    def deficit(self) -> float:
        """How far equity is below the maintenance requirement (0 when above)."""
        return max(0.0, self.maintenance_margin - self.equity)

    def topup_to(self, target_health: float) -> float:
        """Collateral to add to the pool's balance so that health reaches `target_health`."""
        return max(0.0, target_health * self.maintenance_margin - self.equity)


def pools(snapshot: Snapshot) -> list[Pool]:
    """The cross pool first (always present, possibly empty), then each isolated position."""
    cross = tuple(i for i, p in enumerate(snapshot.positions) if p.margin_mode == "cross")
    result = [Pool("cross", "cross", cross, snapshot.wallet_balance)]
    for i, p in enumerate(snapshot.positions):
        if p.margin_mode == "isolated":
            result.append(Pool(f"isolated:{i}", "isolated", (i,), p.isolated_margin or 0.0))
    return result


def pool_figures(snapshot: Snapshot, pool: Pool, prices: Sequence[float] | None = None) -> PoolFigures:
    """Equity and maintenance requirement of `pool`, at mark or at `prices` (one per
    position of the snapshot)."""
    if snapshot.multi_collateral and pool.margin_mode == "cross":  # issue 13: the account is the pool
        from margin.collateral import cross_figures

        return cross_figures(snapshot, pool, prices)
    rule = venue_rule(snapshot.exchange).mode(pool.margin_mode)
    fee = taker_fee(snapshot)
    equity = pool.balance
    requirement = 0.0
    for i in pool.indices:
        pos = snapshot.positions[i]
        price = pos.mark_price if prices is None else prices[i]
        equity += unrealized_pnl(pos, price)
        requirement += maintenance_requirement(pos, rule, fee, price)
    return PoolFigures(pool, equity, requirement)


def pool_of(snapshot: Snapshot, index: int) -> Pool:
    """The pool that holds position `index`."""
    pos = snapshot.positions[index]
    for pool in pools(snapshot):
        if index in pool.indices and pool.margin_mode == pos.margin_mode:
            return pool
    raise IndexError(index)  # unreachable: every position belongs to a pool


def rule_for(snapshot: Snapshot) -> VenueRule:
    return venue_rule(snapshot.exchange)
