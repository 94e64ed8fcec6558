"""The margin engine on 1,000,000 random positions: vectorised time, and its ratio against a
plain per-position Python loop (the scalar engine) on the same inputs.

Goal (issue "margin engine", both sides since issue 11): vectorised <= 0.5 s and >= 50x the
loop; the prices below and above the mark equal the scalar engine's on a sample.

The batch is mixed (issue 14): a share of the accounts (BENCH_INVERSE_SHARE, default 0.2)
are coin-margined, with BTCUSD inverse perpetuals and quarterlies margined in BTC.
"""

from __future__ import annotations

import os
import random
import time

import numpy as np

from margin.liquidation import all_liquidations, liquidation_price
from margin.pools import pool_figures, pools
from margin.snapshot import Position, Snapshot
from margin.tiers import normalise_tiers
from margin.vectorised import Batch, BatchResult, batch_from_snapshots, evaluate

# Binance USD-M brackets (floor, maintenance rate), as in ccxt's recorded responses.
TABLES = {
    "BTC/USDT:USDT": [
        (0, 0.004),
        (5e4, 0.005),
        (2.5e5, 0.01),
        (3e6, 0.025),
        (2e7, 0.05),
        (4e7, 0.1),
        (1e8, 0.125),
        (1.2e8, 0.15),
        (2e8, 0.25),
        (3e8, 0.5),
    ],
    "ETH/USDT:USDT": [
        (0, 0.005),
        (1e5, 0.0065),
        (2.5e5, 0.01),
        (2e6, 0.02),
        (1.5e7, 0.05),
        (3e7, 0.1),
        (6e7, 0.125),
        (8e7, 0.15),
        (1e8, 0.25),
        (1.5e8, 0.5),
    ],
    "LTC/USDT:USDT": [
        (0, 0.0065),
        (1e4, 0.01),
        (5e4, 0.02),
        (2.5e5, 0.05),
        (1e6, 0.1),
        (2e6, 0.125),
        (5e6, 0.15),
        (1e7, 0.25),
    ],
}
MARKS = {"BTC/USDT:USDT": 91_000.0, "ETH/USDT:USDT": 3_200.0, "LTC/USDT:USDT": 98.0}
VENUES = ["binanceusdm", "bybit", "okx", "hyperliquid"]

# Coin-margined BTCUSD brackets (floor in BTC, rate), shaped like Binance's COIN-M table.
COIN_TABLE = [
    (0, 0.004),
    (5, 0.005),
    (10, 0.01),
    (20, 0.025),
    (50, 0.05),
    (100, 0.1),
    (200, 0.125),
    (400, 0.15),
    (1000, 0.25),
    (1500, 0.5),
]
COIN_SYMBOLS = {"BTC/USD:BTC": 91_000.0, "BTC/USD:BTC-261225": 91_800.0, "BTC/USD:BTC-270326": 92_900.0}
COIN_VENUES = ["binancecoinm", "bybit", "okx"]


def coin_snapshot(rng: random.Random, name: str, per_account: int) -> Snapshot:
    """One coin-margined account: inverse BTCUSD contracts (100 USD each), money in BTC."""
    tiers = normalise_tiers(
        {"min_notional": f, "max_notional": None, "maintenance_margin_rate": r} for f, r in COIN_TABLE
    )
    scale = rng.uniform(0.9, 1.1)
    positions = []
    for _ in range(per_account):
        symbol = rng.choice(list(COIN_SYMBOLS))
        mark = COIN_SYMBOLS[symbol] * scale
        coins = 10 ** rng.uniform(-2, 2)  # notional in BTC
        isolated = rng.random() < 0.2
        positions.append(
            Position(
                symbol=symbol,
                side=rng.choice(("long", "short")),
                contracts=coins * mark / 100.0,
                contract_size=100.0,
                entry_price=mark * rng.uniform(0.85, 1.15),
                mark_price=mark,
                margin_mode="isolated" if isolated else "cross",
                tiers=tiers,
                isolated_margin=coins * rng.uniform(0.05, 0.5) if isolated else None,
                contract_type="inverse",
                settle="BTC",
            )
        )
    return Snapshot(
        exchange=rng.choice(COIN_VENUES),
        account=name,
        collateral="BTC",
        wallet_balance=sum(p.size / p.mark_price for p in positions) * rng.uniform(0.05, 0.6),
        positions=tuple(positions),
    )


def random_snapshots(
    n_positions: int, per_account: int = 5, seed: int = 7, inverse_share: float = 0.0
) -> list[Snapshot]:
    rng = random.Random(seed)
    tiers = {
        s: normalise_tiers({"min_notional": f, "max_notional": None, "maintenance_margin_rate": r} for f, r in t)
        for s, t in TABLES.items()
    }
    symbols = list(TABLES)
    snapshots = []
    for a in range(n_positions // per_account):
        if rng.random() < inverse_share:
            snapshots.append(coin_snapshot(rng, f"coin{a}", per_account))
            continue
        positions = []
        marks = {s: MARKS[s] * rng.uniform(0.9, 1.1) for s in symbols}
        for _ in range(per_account):
            symbol = rng.choice(symbols)
            mark = marks[symbol]
            notional = 10 ** rng.uniform(2, 6.5)
            isolated = rng.random() < 0.2
            positions.append(
                Position(
                    symbol=symbol,
                    side=rng.choice(("long", "short")),
                    contracts=notional / mark,
                    contract_size=1.0,
                    entry_price=mark * rng.uniform(0.85, 1.15),
                    mark_price=mark,
                    margin_mode="isolated" if isolated else "cross",
                    tiers=tiers[symbol],
                    isolated_margin=notional * rng.uniform(0.05, 0.5) if isolated else None,
                )
            )
        snapshots.append(
            Snapshot(
                exchange=rng.choice(VENUES),
                account=f"acct{a}",
                collateral="USDT",
                wallet_balance=sum(p.size * p.mark_price for p in positions) * rng.uniform(0.05, 0.6),
                positions=tuple(positions),
            )
        )
    return snapshots


def scalar_loop(snapshots: list[Snapshot]) -> tuple[list[float | None], list[float | None]]:
    """The plain per-position path: every liquidation price and every pool's health."""
    prices: list[float | None] = []
    healths: list[float | None] = []
    for snap in snapshots:
        for i in range(len(snap.positions)):
            prices.append(liquidation_price(snap, i))
        healths.extend(pool_figures(snap, p).health for p in pools(snap))
    return prices, healths


def both_sides_agree(
    snapshots: list[Snapshot], batch: Batch, result: BatchResult, sample: int = 2000
) -> tuple[bool, int]:
    """Vectorised `liquidation_price_down` / `_up` against the scalar
    margin.liquidation.all_liquidations on the first `sample` accounts: (same?, positions)."""
    chosen = np.nonzero(batch.account < sample)[0]
    expected = {
        (a, i): (liq.down, liq.up)
        for a, snap in enumerate(snapshots[:sample])
        for i, liq in enumerate(all_liquidations(snap))
    }
    want = np.array([expected[(int(batch.account[r]), int(batch.index[r]))] for r in chosen], dtype=float)
    got = np.column_stack([result.liquidation_price_down[chosen], result.liquidation_price_up[chosen]])
    return bool(np.allclose(got, want, rtol=1e-9, equal_nan=True)), int(chosen.size)


def main() -> None:
    n = int(os.environ.get("BENCH_POSITIONS", "1000000"))
    inverse_share = float(os.environ.get("BENCH_INVERSE_SHARE", "0.2"))
    snapshots = random_snapshots(n, inverse_share=inverse_share)
    started = time.perf_counter()
    batch = batch_from_snapshots(snapshots)
    build = time.perf_counter() - started

    timings = []
    for _ in range(3):
        started = time.perf_counter()
        result = evaluate(batch)
        timings.append(time.perf_counter() - started)
    vectorised = min(timings)

    started = time.perf_counter()
    prices, _ = scalar_loop(snapshots)
    loop = time.perf_counter() - started

    # Same numbers both ways (order: batch rows follow pools; map back by account/index).
    offsets = np.cumsum([0] + [len(s.positions) for s in snapshots])
    flat = np.array([np.nan if p is None else p for p in prices])
    expected = flat[offsets[batch.account] + batch.index]
    same = np.allclose(result.liquidation_price, expected, rtol=1e-9, equal_nan=True)
    inverse = batch.inverse if batch.inverse is not None else np.zeros(batch.size.shape[0], dtype=bool)
    same_inverse = np.allclose(result.liquidation_price[inverse], expected[inverse], rtol=1e-9, equal_nan=True)

    print(f"positions                       {batch.size.shape[0]:,} in {len(snapshots):,} accounts")
    print(f"build arrays from snapshots     {build:8.3f} s")
    print(f"vectorised engine (best of 3)   {vectorised:8.3f} s   (goal <= 0.5 s)")
    print(f"per-position Python loop        {loop:8.3f} s")
    print(f"speed-up                        {loop / vectorised:8.1f} x   (goal >= 50 x)")
    print(f"of which coin-margined          {int(inverse.sum()):,} (BENCH_INVERSE_SHARE {inverse_share:g})")
    print(f"liquidation prices identical    {same} (coin-margined: {same_inverse})")
    sides, sampled = both_sides_agree(snapshots, batch, result)
    print(f"down / up identical to scalar   {sides}   ({sampled:,} positions sampled)")
