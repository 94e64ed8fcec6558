"""The deleverage plan priced against the live order book.

Order books are ccxt's unified structure, `{"bids": [[price, amount], ...], "asks": [...]}`
(extra columns ignored), with prices in quote currency and amounts in **contracts** — what
ccxt returns for derivative markets (OKX, for one, quotes `sz` in contracts of 0.01 BTC).
base units = contracts × the position's `contract_size`; pass `amounts_in="base"` for a
book already in base units.

Reducing a long sells into the bids (best, i.e. highest, first); reducing a short buys
from the asks (lowest first). For each reduction: the fill's volume-weighted average price
(VWAP), the slippage against mark — positive when it costs: (mark − VWAP) × filled size for
a sale, (VWAP − mark) × filled size for a purchase — the taker fee on the filled notional
(VWAP × filled size), and what the book could not fill. Reductions of one symbol and side
consume the book in turn, so two of them never both take the top level.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np

from margin.pools import pool_figures, pools, taker_fee, unrealized_pnl
from margin.remedies import DeleveragePlan, Reduction
from margin.snapshot import Snapshot

OrderBook = Mapping[str, Sequence[Sequence[float]]]
AmountUnit = Literal["contracts", "base"]


@dataclass(frozen=True)
class BookWalk:
    """Filling `requested` base units: the filled base units, their quote cost, the
    worst price reached and the levels touched (0 when nothing filled)."""

    requested: float
    filled: float
    notional: float
    worst_price: float | None
    levels: int

    @property
    def vwap(self) -> float | None:
        return self.notional / self.filled if self.filled > 0 else None

    @property
    def unfilled(self) -> float:
        return max(0.0, self.requested - self.filled)


def walk_book(prices: np.ndarray, amounts: np.ndarray, requested: float) -> tuple[BookWalk, np.ndarray]:
    """Take `requested` base units from levels already sorted best first (`amounts` in base
    units); returns the walk and the amounts left at each level."""
    taken_before = np.cumsum(amounts) - amounts
    taken = np.clip(requested - taken_before, 0.0, amounts)
    touched = np.flatnonzero(taken > 0)
    filled = float(taken.sum())
    if filled >= requested * (1 - 1e-12):  # the float sum of the levels may miss by an ulp
        filled = requested
    walk = BookWalk(
        requested=requested,
        filled=filled,
        notional=float(taken @ prices),
        worst_price=float(prices[touched[-1]]) if touched.size else None,
        levels=int(touched.size),
    )
    return walk, amounts - taken


@dataclass(frozen=True)
class Fill:
    """One reduction as the book would fill it (sizes in contracts; money in quote)."""

    reduction: Reduction
    mark: float
    filled_contracts: float
    unfilled_contracts: float
    vwap: float | None
    worst_price: float | None
    levels: int
    slippage: float
    slippage_fraction: float | None
    fee: float


@dataclass(frozen=True)
class PricedPlan:
    """The plan at book prices: `health_at_mark` is what the plan promised (fills at mark),
    `health_after` what the fills reach after slippage and fees."""

    target_health: float
    fills: tuple[Fill, ...]
    health_before: float | None
    health_at_mark: float | None
    health_after: float | None
    reaches_target: bool
    note: str

    @property
    def total_fee(self) -> float:
        return sum(f.fee for f in self.fills)

    @property
    def total_slippage(self) -> float:
        return sum(f.slippage for f in self.fills)

    @property
    def unfilled(self) -> tuple[tuple[int, str, float], ...]:
        """(position index, symbol, contracts the book could not fill) per short-filled cut."""
        return tuple(
            (f.reduction.index, f.reduction.symbol, f.unfilled_contracts)
            for f in self.fills
            if f.unfilled_contracts > 0
        )


def price_plan(
    snapshot: Snapshot,
    plan: DeleveragePlan,
    books: Mapping[str, OrderBook],
    fee_rate: float | None = None,
    amounts_in: AmountUnit = "contracts",
) -> PricedPlan:
    """Fill each reduction of `plan` against `books` (by symbol) and the health reached
    after paying slippage and the taker fee (`fee_rate`, default the snapshot's)."""
    fee = taker_fee(snapshot) if fee_rate is None else fee_rate
    for r in plan.reductions:
        if snapshot.positions[r.index].inverse:
            # a coin-margined book's amounts are USD contracts and its fills' value is
            # amount / price: not walked here yet (issue 14)
            raise ValueError(
                f"{r.symbol}: pricing a reduction against the order book is not supported for inverse contracts"
            )
    left: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]] = {}
    fills = []
    for r in plan.reductions:
        pos = snapshot.positions[r.index]
        side = "bids" if pos.side == "long" else "asks"
        key = (pos.symbol, side)
        if key not in left:
            unit = pos.contract_size if amounts_in == "contracts" else 1.0
            left[key] = _levels(books.get(pos.symbol, {}).get(side, []), side, unit)
        prices, amounts = left[key]
        walk, remaining = walk_book(prices, amounts, r.contracts * pos.contract_size)
        left[key] = (prices, remaining)
        unfilled = walk.unfilled / pos.contract_size
        vwap = walk.vwap
        slippage = 0.0 if vwap is None else pos.sign * (pos.mark_price - vwap) * walk.filled
        fills.append(
            Fill(
                reduction=r,
                mark=pos.mark_price,
                filled_contracts=r.contracts - unfilled,
                unfilled_contracts=unfilled,
                vwap=vwap,
                worst_price=walk.worst_price,
                levels=walk.levels,
                slippage=slippage,
                slippage_fraction=None if vwap is None else slippage / (pos.mark_price * walk.filled),
                fee=fee * walk.notional,
            )
        )
    after = apply_fills(snapshot, fills)
    cross = pool_figures(after, pools(after)[0])
    reached = cross.health >= plan.target_health if cross.health is not None else cross.equity > 0
    return PricedPlan(
        target_health=plan.target_health,
        fills=tuple(fills),
        health_before=plan.health_before,
        health_at_mark=plan.health_after,
        health_after=cross.health,
        reaches_target=reached,
        note=_note(fills, reached, plan.target_health, cross.topup_to(plan.target_health), snapshot.collateral),
    )


def _levels(raw: Sequence[Sequence[float]], side: str, unit: float) -> tuple[np.ndarray, np.ndarray]:
    """Prices and base amounts, best first (bids high to low, asks low to high)."""
    if len(raw) == 0:
        return np.zeros(0), np.zeros(0)
    table = np.asarray([level[:2] for level in raw], dtype=float)
    table = table[(table[:, 0] > 0) & (table[:, 1] > 0)]
    order = np.argsort(-table[:, 0] if side == "bids" else table[:, 0], kind="stable")
    return table[order, 0], table[order, 1] * unit


def apply_fills(snapshot: Snapshot, fills: Sequence[Fill]) -> Snapshot:
    """The snapshot after the fills (margin.remedies.apply_deleverage at the fill prices):
    the filled part's PnL at VWAP realised into the wallet, the fee paid from it, contracts
    cut by what filled; fully closed positions removed."""
    wallet = snapshot.wallet_balance
    positions = list(snapshot.positions)
    for f in fills:
        if f.vwap is None:
            continue
        pos = positions[f.reduction.index]
        wallet += unrealized_pnl(replace(pos, contracts=f.filled_contracts), f.vwap) - f.fee
        positions[f.reduction.index] = replace(pos, contracts=pos.contracts - f.filled_contracts)
    kept = tuple(p for p in positions if p.contracts > 0)
    return replace(snapshot, wallet_balance=wallet, positions=kept)


def _note(fills: Sequence[Fill], reached: bool, target: float, topup: float, collateral: str) -> str:
    parts = [
        f"the book is too shallow for {f.reduction.symbol} {f.reduction.side}: "
        f"{f.unfilled_contracts:g} of {f.reduction.contracts:g} contracts unfilled."
        for f in fills
        if f.unfilled_contracts > 0
    ]
    if not reached:
        parts.append(f"at book prices the plan misses health {target:g}: top up {topup:.2f} {collateral} more.")
    return " ".join(parts)
