"""Risk intelligence on 200 accounts x 10 positions over 30 days of hourly prices:
volatility (EWMA σ, distance in σ, 24 h touch probability for every position) and the
correlated BTC stress (8 shocks + every account's liquidating shock).

Goal (issue "Risk intelligence"): both together <= 1 s. Run: `python -m bench.risk`.
"""

from __future__ import annotations

import os
import random
import time

import numpy as np

from bench.engine import TABLES
from margin.correlation import betas_to_benchmark, correlated_stress
from margin.snapshot import Position, Snapshot
from margin.tiers import normalise_tiers
from margin.vectorised import batch_from_snapshots, evaluate
from margin.volatility import distance_in_sigma, row_symbols, touch_probability, volatility_by_symbol

HOURS = 30 * 24
SYMBOLS = [
    "BTC",
    "ETH",
    "SOL",
    "XRP",
    "DOGE",
    "ADA",
    "AVAX",
    "LINK",
    "DOT",
    "LTC",
    "BCH",
    "NEAR",
    "APT",
    "ARB",
    "OP",
    "SUI",
    "TIA",
    "INJ",
    "SEI",
    "WIF",
]


def price_history(seed: int = 11) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """Hourly closes: BTC with σ 0.6 %/h, every other symbol β x BTC + its own noise."""
    rng = np.random.default_rng(seed)
    btc = rng.standard_normal(HOURS) * 0.006
    closes, true_betas = {}, {}
    for k, base in enumerate(SYMBOLS):
        b = 1.0 if k == 0 else float(rng.uniform(0.6, 2.0))
        own = 0.0 if k == 0 else rng.standard_normal(HOURS) * rng.uniform(0.002, 0.008)
        start = 90_000.0 if k == 0 else float(10 ** rng.uniform(-1, 3.5))
        path = start * np.exp(np.cumsum(b * btc + own))
        closes[f"{base}/USDT:USDT"] = np.r_[start, path]
        true_betas[f"{base}/USDT:USDT"] = b
    return closes, true_betas


def random_accounts(
    closes: dict[str, np.ndarray], n_accounts: int = 200, per_account: int = 10, seed: int = 5
) -> list[Snapshot]:
    rng = random.Random(seed)
    tables = {
        s: normalise_tiers({"min_notional": f, "max_notional": None, "maintenance_margin_rate": r} for f, r in t)
        for s, t in TABLES.items()
    }
    symbols = list(closes)
    snapshots = []
    for a in range(n_accounts):
        positions = []
        for symbol in rng.sample(symbols, per_account):
            mark = float(closes[symbol][-1])
            notional = 10 ** rng.uniform(3, 6)
            isolated = rng.random() < 0.2
            positions.append(
                Position(
                    symbol=symbol,
                    side="long" if rng.random() < 0.7 else "short",
                    contracts=notional / mark,
                    contract_size=1.0,
                    entry_price=mark * rng.uniform(0.95, 1.05),
                    mark_price=mark,
                    margin_mode="isolated" if isolated else "cross",
                    tiers=tables.get(symbol, tables["LTC/USDT:USDT"]),
                    isolated_margin=notional * rng.uniform(0.1, 0.5) if isolated else None,
                )
            )
        gross = sum(p.size * p.mark_price for p in positions)
        snapshots.append(
            Snapshot(
                exchange=rng.choice(["binanceusdm", "bybit", "okx"]),
                account=f"acct{a}",
                collateral="USDT",
                wallet_balance=gross * rng.uniform(0.1, 0.6),
                positions=tuple(positions),
            )
        )
    return snapshots


def main() -> None:
    n_accounts = int(os.environ.get("BENCH_ACCOUNTS", "200"))
    closes, true_betas = price_history()
    snapshots = random_accounts(closes, n_accounts)

    started = time.perf_counter()
    vols = volatility_by_symbol(closes)
    batch = batch_from_snapshots(snapshots)
    result = evaluate(batch)
    sigma = np.array([vols[s].sigma_daily for s in row_symbols(snapshots, batch)])
    sigmas = distance_in_sigma(batch.mark, result.liquidation_price, sigma, result.distance)
    touch = touch_probability(batch.mark, result.liquidation_price, sigma, 24.0, result.distance)
    volatility_time = time.perf_counter() - started

    started = time.perf_counter()
    betas = betas_to_benchmark(closes)
    stress = correlated_stress(snapshots, betas, target_health=1.5)
    stress_time = time.perf_counter() - started

    worst_beta_error = max(abs(betas[s] - true_betas[s]) for s in closes)
    print(
        f"accounts x positions            {n_accounts} x 10 = {batch.size.shape[0]:,}; "
        f"{len(closes)} symbols x {HOURS} hours"
    )
    print(f"volatility, σ distance, P(touch) {volatility_time:8.3f} s")
    print(
        f"betas + correlated stress       {stress_time:8.3f} s   ({len(stress.scenarios)} shocks "
        f"+ liquidating shock per account)"
    )
    print(f"together                        {volatility_time + stress_time:8.3f} s   (goal <= 1 s)")
    print(
        f"median σ distance {np.nanmedian(sigmas):.2f}; positions with P(touch 24 h) > 5 %: "
        f"{int((touch > 0.05).sum())}; largest beta error {worst_beta_error:.3f}"
    )
    for scenario in stress.scenarios:
        print(
            f"  BTC {scenario.btc_shock:+.0%}: {scenario.n_liquidated:4d} accounts liquidated, "
            f"{scenario.total_to_survive:14,.0f} USDT to survive"
        )
    order = stress.liquidation_order()
    already = sum(1 for _, shock in order if shock == 0.0)
    first = [(name, shock) for name, shock in order if shock != 0.0][:3]
    print(
        f"  already at or below a requirement: {already}; next to liquidate: "
        + ", ".join(f"{name} at BTC {shock:+.2%}" for name, shock in first)
    )


if __name__ == "__main__":
    main()
