"""Beta to BTC and the correlated stress test across many accounts (docs/risk-model.md).

Units: prices in quote currency; returns are hourly natural-log returns; a BTC shock s is
a fraction (−0.2 = BTC down 20 %); money (equity, requirement, collateral) in each
account's collateral currency.

Beta: β_x = cov(r_x, r_BTC) / var(r_BTC) over aligned hourly log returns (the OLS slope of
r_x on r_BTC); BTC's own β is 1 by definition.

Shock mapping: a BTC shock s moves symbol x by the log return β_x ln(1 + s), i.e.
price_x × (1 + s)^β_x. Why log space rather than price × (1 + β s): β was estimated on log
returns, so this is the same regression applied to the shock; prices stay positive for
any β and s > −1 (1 + β s is negative for β = 3, s = −40 %); and for small s the two agree
(1 + s)^β ≈ 1 + β s. BTC itself (β = 1) moves by exactly 1 + s, as in margin.stress. The
mapping is the conditional mean: idiosyncratic moves of each symbol are not simulated.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from margin.collateral_groups import shocked_figures
from margin.collateral_vectorised import collateral_batch
from margin.snapshot import Snapshot
from margin.vectorised import Batch, batch_from_snapshots, pool_totals
from margin.volatility import log_returns, row_symbols

BENCHMARK = "BTC/USDT:USDT"
# both ways: a book of shorts, or one whose requirement outgrows its equity, liquidates as BTC rises
DEFAULT_BTC_SHOCKS: tuple[float, ...] = (-0.40, -0.30, -0.20, -0.15, -0.10, -0.05, 0.05, 0.10, 0.15, 0.20, 0.30, 0.40)
SEARCH_LIMIT = -0.99  # the search down stops at BTC × 0.01 ...
SEARCH_LIMIT_UP = 9.0  # ... and up at BTC × 10
GRID_POINTS = 100  # scan points between 0 and the limit before bisecting
BISECTIONS = 40  # 0.01 / 2^40: far below any price increment

FloatArray = np.ndarray


def beta(returns: ArrayLike, benchmark_returns: ArrayLike) -> FloatArray:
    """cov(r, r_b) / var(r_b) along the last axis (rows of `returns` are symbols); nan when
    the benchmark does not move."""
    r = np.asarray(returns, dtype=float)
    rb = np.asarray(benchmark_returns, dtype=float)
    r = r - r.mean(axis=-1, keepdims=True)
    rb = rb - rb.mean()
    variance = rb @ rb
    with np.errstate(divide="ignore", invalid="ignore"):
        return (r @ rb) / variance


def betas_to_benchmark(closes: Mapping[str, Sequence[float]], benchmark: str = BENCHMARK) -> dict[str, float]:
    """Each symbol's beta to `benchmark` from hourly closes (oldest first, on the same hourly
    timestamps). Series of different lengths are aligned on their most recent common hours
    (they are assumed to end at the same hour). The benchmark's own beta is exactly 1."""
    if benchmark not in closes:
        raise KeyError(f"no closes for the benchmark {benchmark}")
    length = min(len(series) for series in closes.values())
    if length < 3:
        raise ValueError(f"need at least 3 aligned closes per symbol, got {length}")
    symbols = list(closes)
    returns = log_returns(np.array([list(closes[s])[-length:] for s in symbols], dtype=float))
    values = beta(returns, returns[symbols.index(benchmark)])
    result = {s: float(b) for s, b in zip(symbols, values, strict=True)}
    result[benchmark] = 1.0
    return result


def shocked_mark(mark: ArrayLike, beta_value: ArrayLike, btc_shock: ArrayLike) -> FloatArray:
    """mark × (1 + s)^β: the price after a BTC shock s for a symbol of beta β."""
    growth = 1.0 + np.asarray(btc_shock, dtype=float)
    return np.asarray(mark, dtype=float) * growth ** np.asarray(beta_value, dtype=float)


def shocked_prices(
    snapshot: Snapshot, betas: Mapping[str, float], btc_shock: float, missing_beta: float = 1.0
) -> list[float]:
    """Every position's price after the BTC shock (for margin.pools.pool_figures)."""
    return [float(shocked_mark(p.mark_price, betas.get(p.symbol, missing_beta), btc_shock)) for p in snapshot.positions]


@dataclass(frozen=True)
class ShockResult:
    """Every account under one BTC shock. Per account (input order): cross-pool health and
    worst pool health (nan: no position), whether some pool is at or below its requirement,
    and the collateral that brings every pool to health 1 (and to the target, if given)."""

    btc_shock: float
    account_health: FloatArray
    worst_health: FloatArray
    liquidated: np.ndarray
    collateral_to_survive: FloatArray
    collateral_to_target: FloatArray | None

    @property
    def n_liquidated(self) -> int:
        return int(self.liquidated.sum())

    @property
    def total_to_survive(self) -> float:
        return float(self.collateral_to_survive.sum())


@dataclass(frozen=True)
class CorrelatedStress:
    """The scenarios, and per account the BTC shock nearest 0, down (toward `search_limit`)
    or up (toward `search_limit_up`), that brings one of its pools to its requirement: 0 if
    one already is, nan if none within the search either way."""

    accounts: tuple[str, ...]
    scenarios: tuple[ShockResult, ...]
    liquidating_shock: FloatArray
    search_limit: float
    search_limit_up: float = SEARCH_LIMIT_UP

    def liquidation_order(self) -> list[tuple[str, float]]:
        """(account, shock) of the accounts that liquidate within the search, first first."""
        found = np.flatnonzero(~np.isnan(self.liquidating_shock))
        order = found[np.argsort(np.abs(self.liquidating_shock[found]), kind="stable")]
        return [(self.accounts[i], float(self.liquidating_shock[i])) for i in order]


class _ShockedBook:
    """The Batch built once; each evaluation only replaces the marks (pool totals only: a
    scenario needs no liquidation price)."""

    def __init__(self, snapshots: Sequence[Snapshot], betas: Mapping[str, float], missing_beta: float) -> None:
        self.batch: Batch = batch_from_snapshots(snapshots)
        symbols = row_symbols(snapshots, self.batch)
        self.beta = np.array([betas.get(s, missing_beta) for s in symbols], dtype=float)
        n_pools = self.batch.pool_balance.shape[0]
        self.has_positions = np.bincount(self.batch.pool, minlength=n_pools) > 0
        # issue 13: multi-collateral accounts' assets move with the shock too
        self.collateral = collateral_batch(self.batch, snapshots)
        if self.collateral is not None:
            names = self.collateral.symbol_names
            moves = self.collateral.moves
            self.asset_beta = np.array(
                [betas.get(names[m], missing_beta) if m >= 0 else 0.0 for m in moves.tolist()], dtype=float
            )

    def pools_at(self, pool_shock: FloatArray) -> tuple[FloatArray, FloatArray]:
        """Equity and requirement of every pool, each pool at its own BTC shock."""
        batch = self.batch
        marks = shocked_mark(batch.mark, self.beta, pool_shock[batch.pool])
        equity, requirement = pool_totals(batch, marks)
        if self.collateral is not None:
            cb = self.collateral
            factor = (1.0 + pool_shock[cb.pool]) ** self.asset_beta
            figures = shocked_figures(cb, batch, marks, factor)
            equity = np.where(cb.pool_multi, figures.equity, equity)
            requirement = np.where(cb.pool_multi, figures.maintenance_margin, requirement)
        return equity, requirement

    def account_health(self, equity: FloatArray, requirement: FloatArray) -> tuple[FloatArray, FloatArray]:
        """Per account, the cross pool's health and the worst pool's (nan: none), as
        margin.vectorised.evaluate gives them."""
        batch = self.batch
        with np.errstate(divide="ignore", invalid="ignore"):
            health = np.where(self.has_positions & (requirement > 0), equity / requirement, np.nan)
        cross = np.full(batch.n_accounts, np.nan)
        cross[batch.pool_account[batch.pool_is_cross]] = health[batch.pool_is_cross]
        worst = np.full(batch.n_accounts, np.inf)
        np.minimum.at(worst, batch.pool_account, np.where(np.isnan(health), np.inf, health))
        worst[np.isinf(worst)] = np.nan
        return cross, worst

    def liquidated(self, pool_shock: FloatArray) -> np.ndarray:
        equity, requirement = self.pools_at(pool_shock)
        return self.has_positions & (equity <= requirement)


def correlated_stress(
    snapshots: Sequence[Snapshot],
    betas: Mapping[str, float],
    shocks: Sequence[float] = DEFAULT_BTC_SHOCKS,
    target_health: float | None = None,
    missing_beta: float = 1.0,
    search_limit: float = SEARCH_LIMIT,
    search_limit_up: float = SEARCH_LIMIT_UP,
) -> CorrelatedStress:
    """Every account's health under each BTC shock (prices × (1 + s)^β), the collateral each
    needs to survive it, and the order in which the accounts liquidate as BTC moves from 0
    toward `search_limit` (negative: down, positive: up). Symbols without a beta use
    `missing_beta`."""
    book = _ShockedBook(snapshots, betas, missing_beta)
    batch = book.batch
    n_pools = batch.pool_balance.shape[0]
    scenarios = []
    for shock in shocks:
        equity, requirement = book.pools_at(np.full(n_pools, float(shock)))
        account_health, worst_health = book.account_health(equity, requirement)
        to_survive = np.where(book.has_positions, np.maximum(0.0, requirement - equity), 0.0)
        to_target = None
        if target_health is not None:
            gap = np.where(book.has_positions, np.maximum(0.0, target_health * requirement - equity), 0.0)
            to_target = np.bincount(batch.pool_account, gap, batch.n_accounts)
        liquidated = book.has_positions & (equity <= requirement)
        scenarios.append(
            ShockResult(
                btc_shock=float(shock),
                account_health=account_health,
                worst_health=worst_health,
                liquidated=np.bincount(batch.pool_account, liquidated, batch.n_accounts) > 0,
                collateral_to_survive=np.bincount(batch.pool_account, to_survive, batch.n_accounts),
                collateral_to_target=to_target,
            )
        )
    account_shock = np.full(batch.n_accounts, np.nan)
    for limit in (search_limit, search_limit_up):
        pool_shock = _pool_liquidating_shocks(book, limit)
        for pool in np.flatnonzero(~np.isnan(pool_shock)):  # nearest pool to 0 per account, either way
            account = batch.pool_account[pool]
            if np.isnan(account_shock[account]) or abs(pool_shock[pool]) < abs(account_shock[account]):
                account_shock[account] = pool_shock[pool]
    names = tuple(f"{s.exchange}/{s.account}" for s in snapshots)
    return CorrelatedStress(names, tuple(scenarios), account_shock, search_limit, search_limit_up)


def _pool_liquidating_shocks(book: _ShockedBook, limit: float) -> FloatArray:
    """Per pool, the first BTC shock from 0 toward `limit` at which it is liquidated.

    Health need not be monotone in the shock (longs and shorts of different betas), so a
    grid scan finds the first bracket, then bisection narrows every pool's bracket at once
    (each pool evaluated at its own shock). A crossing and a recovery between two grid
    points (1 % of BTC apart by default) would be missed."""
    n_pools = book.batch.pool_balance.shape[0]
    grid = np.linspace(0.0, limit, GRID_POINTS + 1)
    first = np.full(n_pools, -1)
    for j, shock in enumerate(grid):
        hit = book.liquidated(np.full(n_pools, shock)) & (first < 0)
        first[hit] = j
        if (first >= 0).sum() == book.has_positions.sum():
            break
    result = np.full(n_pools, np.nan)
    result[first == 0] = 0.0
    bracketed = first > 0
    hi = np.where(bracketed, grid[np.maximum(first, 0)], 0.0)  # liquidated end
    lo = np.where(bracketed, grid[np.maximum(first - 1, 0)], 0.0)  # healthy end
    for _ in range(BISECTIONS if bracketed.any() else 0):
        mid = 0.5 * (lo + hi)
        down = book.liquidated(mid)
        hi = np.where(down, mid, hi)
        lo = np.where(down, lo, mid)
    result[bracketed] = hi[bracketed]
    return result
