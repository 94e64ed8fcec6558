"""Multi-collateral accounts through the poller's path (issue 13): the vectorised batch,
then each multi-collateral account's cross pool and liquidation prices from the scalar
engine (margin.collateral_batch). Prints positions per second.

The issue's goal is 1,000,000 positions through a vectorised multi-collateral path; this
path is not vectorised yet, so the default size is small: MW_BENCH_ACCOUNTS accounts
(default 200) of MW_BENCH_POSITIONS positions (default 10), each with USDT, BTC and ETH
collateral (BTC and ETH moving with their markets).
"""

from __future__ import annotations

import os
import random
import time

from margin.collateral_batch import with_multi_collateral
from margin.snapshot import Snapshot, parse_snapshot
from margin.vectorised import batch_from_snapshots, evaluate


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
                "side": rng.choice(["long", "short"]),
                "contracts": rng.uniform(1, 5) * (1 if mark > 1000 else 1000),
                "contract_size": 1.0,
                "entry_price": mark * rng.uniform(0.9, 1.1),
                "mark_price": mark,
                "margin_mode": "cross",
                "leverage": 20,
                "tiers": [
                    {"min_notional": 0, "maintenance_margin_rate": 0.005},
                    {"min_notional": 250000, "maintenance_margin_rate": 0.01},
                    {"min_notional": 1000000, "maintenance_margin_rate": 0.025},
                ],
            }
        )
    bands = [{"min_amount": 0, "max_amount": 5, "ratio": 0.95}, {"min_amount": 5, "ratio": 0.9}]
    doc = {
        "exchange": "bybit",
        "account": f"a{n}",
        "account_mode": "multi_asset",
        "collateral": "USDT",
        "assets": [
            {"asset": "USDT", "amount": rng.uniform(5e4, 2e5), "price": 1.0, "collateral_ratio": 1.0},
            {
                "asset": "BTC",
                "amount": rng.uniform(0.5, 8),
                "price": 90000.0,
                "price_symbol": "BTC/USDT:USDT",
                "collateral_tiers": bands,
            },
            {
                "asset": "ETH",
                "amount": rng.uniform(5, 80),
                "price": 3000.0,
                "price_symbol": "ETH/USDT:USDT",
                "collateral_ratio": 0.9,
            },
        ],
        "positions": rows,
    }
    return parse_snapshot(doc)


def main() -> None:
    accounts = int(os.environ.get("MW_BENCH_ACCOUNTS", "200"))
    positions = int(os.environ.get("MW_BENCH_POSITIONS", "10"))
    rng = random.Random(13)
    snapshots = [_account(rng, n, positions) for n in range(accounts)]
    started = time.perf_counter()
    batch = batch_from_snapshots(snapshots)
    result = with_multi_collateral(batch, evaluate(batch), snapshots)
    elapsed = time.perf_counter() - started
    total = accounts * positions
    assert result.pool_equity.shape[0] >= accounts
    print(
        f"multi-collateral: {accounts} accounts x {positions} positions = {total:,} positions in {elapsed:.2f} s "
        f"({total / elapsed:,.0f} positions/s; 1,000,000 would take about {1e6 / (total / elapsed) / 60:.0f} min)"
    )
