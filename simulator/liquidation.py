"""Liquidations: when a margin pool (the cross pool, or one isolated position) is at or below
health 1, the simulator closes every position of the pool and settles the margin.

The rule (docs/simulator.md, "Liquidations"):

- Trigger: after a mark change (set_mark, a random-walk step), every pool of the venue that
  holds the moved symbol is checked with the engine's figures at the new marks; a pool with
  equity / maintenance <= 1 is liquidated. With "auto_liquidate": false nothing happens on
  its own; `liquidate` (admin) forces one at the current marks whatever the health.
- Execution price: a position in the moved symbol closes at the engine's liquidation price
  when it lies between the previous and the new mark (where the pool reached health 1 on
  the way; it is that price the positions endpoint reported before the move), rounded to
  the tick; otherwise (a pool already past liquidation, a forced one) at the new mark. The
  pool's other positions close at their marks.
- Settlement: pool equity at the execution prices (balance + realised PnL) minus the
  liquidation fee (`liquidation_fee_rate` x closed notional), floored at 0 (the exchange's
  insurance fund takes any loss beyond). Cross pool: that is the new wallet balance.
  Isolated pool: its margin is gone, the remainder is credited to the cross wallet.
  Isolated pools are settled before the cross pool.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from simulator.figures import AccountFigures, PositionFigures
from simulator.market import round_to
from simulator.scenario import AccountSpec


@dataclass(frozen=True)
class LiquidationRecord:
    """One liquidated position. `event` groups the positions of one pool's liquidation;
    money in the account's collateral."""

    id: int
    event: int
    time_ms: int
    venue: str
    api_key: str
    symbol: str
    side: str  # the position's side: long / short
    contracts: float  # venue contracts (OKX: ctVal base units each)
    contract_size: float
    margin_mode: str
    entry_price: float
    leverage: float
    price: float  # execution price
    mark_price: float  # the mark when it was liquidated
    liquidation_price: float | None  # the engine's, at the marks of the liquidation
    fee: float  # liquidation fee charged for this position
    realized_pnl: float  # (price - entry) x size x sign
    pool_equity: float  # the pool's equity at the execution prices, before the fee
    balance_after: float  # cross: the new wallet; isolated: credited to the wallet
    forced: bool  # by the admin API / liquidate(), not by a mark move
    hedge_mode: bool  # the account held both sides of some symbol

    @property
    def close_side(self) -> str:
        """The side of the closing order: a long is sold."""
        return "sell" if self.side == "long" else "buy"

    @property
    def size(self) -> float:
        """Base units."""
        return self.contracts * self.contract_size

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


Pool = tuple[str, tuple[int, ...]]  # ("cross" | "isolated", position indices)


def unhealthy_pools(fig: AccountFigures, symbol: str | None) -> list[Pool]:
    """Pools at health <= 1 that hold `symbol` (any symbol when None), isolated first."""
    result: list[Pool] = []
    for p in fig.positions:
        if (
            p.spec.margin_mode == "isolated"
            and symbol in (None, p.spec.symbol)
            and _at_or_below_one(p.pool_equity, p.pool_maintenance)
        ):
            result.append(("isolated", (p.index,)))
    cross = tuple(p.index for p in fig.positions if p.spec.margin_mode == "cross")
    if (
        cross
        and any(symbol in (None, fig.positions[i].spec.symbol) for i in cross)
        and _at_or_below_one(fig.cross_equity, fig.cross_maintenance)
    ):
        result.append(("cross", cross))
    return result


def pools_holding(fig: AccountFigures, symbol: str) -> list[Pool]:
    """Every pool with a position in `symbol`, isolated first (for a forced liquidation)."""
    result: list[Pool] = [
        ("isolated", (p.index,)) for p in fig.positions if p.spec.margin_mode == "isolated" and p.spec.symbol == symbol
    ]
    cross = tuple(p.index for p in fig.positions if p.spec.margin_mode == "cross")
    if any(fig.positions[i].spec.symbol == symbol for i in cross):
        result.append(("cross", cross))
    return result


def _at_or_below_one(equity: float, maintenance: float) -> bool:
    return maintenance > 0 and equity <= maintenance


def execution_price(p: PositionFigures, moved: tuple[str, float, float] | None) -> float:
    """Where `p` closes; `moved` = (symbol, previous mark, new mark) of the move that
    triggered the liquidation, None for a forced one."""
    if moved is not None and p.spec.symbol == moved[0] and p.liquidation_price is not None:
        low, high = sorted(moved[1:])
        slack = p.market.price_tick
        if low - slack <= p.liquidation_price <= high + slack:
            return round_to(p.liquidation_price, p.market.price_tick)
    return p.mark


def settle(
    spec: AccountSpec,
    fig: AccountFigures,
    pools: list[Pool],
    prices: dict[int, float],
    *,
    now_ms: int,
    first_id: int,
    event: int,
    forced: bool,
) -> tuple[AccountSpec, list[LiquidationRecord]]:
    """Close the positions of `pools` at `prices` (position index -> price) and settle
    their margin; returns the account without them and one record per closed position
    (records of the k-th pool settled carry event `event + k`)."""
    wallet = spec.wallet_balance
    closed: set[int] = set()
    records: list[LiquidationRecord] = []
    ordered = sorted(pools, key=lambda pool: pool[0] != "isolated")
    for k, (mode, indices) in enumerate(ordered):
        positions = [fig.positions[i] for i in indices]
        pnl = {p.index: _pnl(p, prices[p.index]) for p in positions}
        notional = {
            p.index: p.size / prices[p.index] if p.market.inverse else p.size * prices[p.index] for p in positions
        }
        balance = wallet if mode == "cross" else (positions[0].spec.isolated_margin or 0.0)
        equity = balance + sum(pnl.values())
        fee = sum(p.market.liquidation_fee_rate * notional[p.index] for p in positions)
        left = max(0.0, equity - fee)
        charged = max(0.0, min(fee, equity))
        wallet = left if mode == "cross" else wallet + left
        total = sum(notional.values()) or 1.0
        for p in positions:
            records.append(
                LiquidationRecord(
                    id=first_id + len(records),
                    event=event + k,
                    time_ms=now_ms,
                    venue=spec.venue,
                    api_key=spec.api_key,
                    symbol=p.spec.symbol,
                    side=p.spec.side,
                    contracts=p.spec.contracts,
                    contract_size=p.market.contract_size,
                    margin_mode=p.spec.margin_mode,
                    entry_price=p.spec.entry_price,
                    leverage=p.leverage,
                    price=prices[p.index],
                    mark_price=p.mark,
                    liquidation_price=p.liquidation_price,
                    fee=charged * notional[p.index] / total,
                    realized_pnl=pnl[p.index],
                    pool_equity=equity,
                    balance_after=left,
                    forced=forced,
                    hedge_mode=fig.hedge_mode,
                )
            )
        closed.update(indices)
    remaining = tuple(p for i, p in enumerate(spec.positions) if i not in closed)
    return dataclasses.replace(spec, wallet_balance=wallet, positions=remaining), records


def _pnl(p: PositionFigures, price: float) -> float:
    """PnL closing at `price`: quote currency, or the coin of an inverse contract."""
    if p.market.inverse:
        return p.sign * p.size * (1.0 / p.spec.entry_price - 1.0 / price)
    return p.sign * p.size * (price - p.spec.entry_price)


def _notional(p: PositionFigures, price: float) -> float:
    return p.size / price if p.market.inverse else p.size * price
