"""Multi-collateral accounts through the poller's vectorised path (issue 13): the batch
(margin.vectorised), then every account's assets valued after haircut and its cross
positions' liquidation prices with the collateral moving (margin.collateral_vectorised,
margin.collateral_prices), all accounts at once. Prints the time for 1,000,000 positions
and checks the prices against the scalar engine on a sample.

Accounts: MW_BENCH_ACCOUNTS (default 100,000) of MW_BENCH_POSITIONS positions (default 10;
BTC, ETH and other symbols, some short), on every venue mode margin.collateral has a rule
for (Bybit UTA, Binance Multi-Assets and Portfolio Margin, OKX multi-currency), each
holding USDT, BTC (bands by amount, moving with BTC) and ETH (flat ratio, moving with ETH)
collateral, some with a USDT loan.
"""

from __future__ import annotations

import os
import random
import time

import numpy as np

from margin.collateral import MULTI_COLLATERAL_MODES
from margin.collateral_batch import with_multi_collateral
from margin.collateral_vectorised import collateral_batch
from margin.liquidation import all_liquidations
from margin.snapshot import Snapshot, parse_snapshot
from margin.vectorised import Batch, BatchResult, batch_from_snapshots, evaluate

VENUES = MULTI_COLLATERAL_MODES
TIERS = [
    {"min_notional": 0, "maintenance_margin_rate": 0.005, "maintenance_amount": 0},
    {"min_notional": 250000, "maintenance_margin_rate": 0.01, "maintenance_amount": 1250},
    {"min_notional": 1000000, "maintenance_margin_rate": 0.025, "maintenance_amount": 16250},
]


def _account(rng: random.Random, n: int, positions: int) -> Snapshot:
    symbols = ["BTC/USDT:USDT", "ETH/USDT:USDT"] + [f"C{k}/USDT:USDT" for k in range(positions)]
    marks = {"BTC/USDT:USDT": 90000.0, "ETH/USDT:USDT": 3000.0}
    rows = []
    for k in range(positions):
        symbol = symbols[k]
        mark = marks.get(symbol, 10.0 + k)
        rows.append(
            {
                "symbol": symbol,
                "side": rng.choice(["long", "long", "short"]),
                "contracts": rng.uniform(0.5, 4) * (1 if mark > 1000 else 1000),
                "contract_size": 1.0,
                "entry_price": mark * rng.uniform(0.9, 1.1),
                "mark_price": mark,
                "margin_mode": "cross",
                "leverage": 20,
                "tiers": TIERS,
            }
        )
    exchange, mode = rng.choice(VENUES)
    bands = [{"min_amount": 0, "max_amount": 5, "ratio": 0.95}, {"min_amount": 5, "ratio": 0.9}]
    usdt: dict = {"asset": "USDT", "amount": rng.uniform(2e4, 1.5e5), "price": 1.0, "collateral_ratio": 1.0}
    if rng.random() < 0.2:
        usdt.update(borrowed=rng.uniform(1e3, 2e4), borrow_maintenance_rate=0.05)
    doc = {
        "exchange": exchange,
        "account": f"a{n}",
        "account_mode": mode,
        "collateral": "USDT",
        "assets": [
            usdt,
            {
                "asset": "BTC",
                "amount": rng.uniform(0, 3),
                "price": 90000.0,
                "price_symbol": "BTC/USDT:USDT",
                "collateral_tiers": bands,
            },
            {
                "asset": "ETH",
                "amount": rng.uniform(0, 40),
                "price": 3000.0,
                "price_symbol": "ETH/USDT:USDT",
                "collateral_ratio": 0.9,
            },
        ],
        "positions": rows,
    }
    return parse_snapshot(doc)


def agree_with_scalar(
    snapshots: list[Snapshot], batch: Batch, result: BatchResult, sample: int
) -> tuple[bool, int, int]:
    """Vectorised down/up prices against margin.liquidation.all_liquidations on the first
    `sample` accounts: (same?, positions compared, of which with a price on some side)."""
    chosen = np.flatnonzero(batch.account < sample)
    want = {
        (a, i): (np.nan if f.down is None else f.down, np.nan if f.up is None else f.up)
        for a, snap in enumerate(snapshots[:sample])
        for i, f in enumerate(all_liquidations(snap))
    }
    expected = np.array([want[(int(batch.account[r]), int(batch.index[r]))] for r in chosen], dtype=float)
    got = np.column_stack([result.liquidation_price_down[chosen], result.liquidation_price_up[chosen]])
    priced = int(np.isfinite(got).any(axis=1).sum())
    return bool(np.allclose(got, expected, rtol=1e-9, equal_nan=True)), int(chosen.size), priced


def main() -> None:
    accounts = int(os.environ.get("MW_BENCH_ACCOUNTS", "100000"))
    positions = int(os.environ.get("MW_BENCH_POSITIONS", "10"))
    rng = random.Random(13)
    started = time.perf_counter()
    snapshots = [_account(rng, n, positions) for n in range(accounts)]
    parsed = time.perf_counter() - started
    started = time.perf_counter()
    batch = batch_from_snapshots(snapshots)
    cb = collateral_batch(batch, snapshots)
    build = time.perf_counter() - started
    timings = []
    for _ in range(3):
        started = time.perf_counter()
        result = with_multi_collateral(batch, evaluate(batch), snapshots, cb)
        timings.append(time.perf_counter() - started)
    elapsed = min(timings)
    total = batch.size.shape[0]
    same, compared, priced = agree_with_scalar(snapshots, batch, result, min(accounts, 300))
    print(f"multi-collateral positions      {total:,} in {accounts:,} accounts ({parsed:.1f} s to make and parse)")
    print(f"build arrays (batch + assets)   {build:8.3f} s")
    print(f"vectorised path (best of 3)     {elapsed:8.3f} s   ({total / elapsed:,.0f} positions/s)")
    print(f"down / up equal to scalar       {same}   ({compared:,} positions sampled, {priced:,} with a price)")
