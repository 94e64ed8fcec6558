"""The vectorised multi-collateral engine (issue 13) equals the scalar one: on generated
accounts of every venue and mode (haircut bands in amount and in value, collateral moving
with a position's symbol, loans, debts, open-order loss, hedge legs, isolated positions,
positions settling in a listed coin, which may move with them), the cross pool's equity and
requirement, and both liquidation prices and the prices at another health, as
margin.collateral and margin.collateral_liquidation give them."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from margin.alert_prices import batch_alert_prices
from margin.collateral import MULTI_COLLATERAL_MODES
from margin.collateral_batch import with_multi_collateral
from margin.collateral_prices import collateral_health_prices
from margin.collateral_vectorised import collateral_batch
from margin.danger import DangerLimits
from margin.liquidation import all_liquidations
from margin.pools import pool_figures, pools
from margin.snapshot import Snapshot, parse_snapshot
from margin.vectorised import batch_from_snapshots, evaluate
from tests.helpers import scalar_alert_prices

SETTINGS = settings(
    max_examples=int(os.environ.get("MARGINWATCH_EXAMPLES", "300")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
MARKS = {"BTC/USDT:USDT": 90_000.0, "ETH/USDT:USDT": 3_000.0, "SOL/USDT:USDT": 150.0}
VENUES = MULTI_COLLATERAL_MODES
TIERS = [
    {"min_notional": 0, "maintenance_margin_rate": 0.005, "maintenance_amount": 0},
    {"min_notional": 50_000, "maintenance_margin_rate": 0.01, "maintenance_amount": 250},
    {"min_notional": 250_000, "maintenance_margin_rate": 0.025, "maintenance_amount": 4_000},
]


def _rounded(low: float, high: float) -> st.SearchStrategy[float]:
    return st.floats(low, high).map(lambda x: round(x, 4))


@st.composite
def _bands(draw: st.DrawFn, price: float) -> dict[str, Any]:
    kind = draw(st.sampled_from(["flat", "amount", "value"]))
    if kind == "flat":
        return {"collateral_ratio": draw(st.sampled_from([1.0, 0.95, 0.9, 0.5]))}
    edges = sorted(draw(st.lists(st.floats(0.1, 50), min_size=1, max_size=3, unique=True)))
    unit = "amount" if kind == "amount" else "value"
    scale = 1.0 if unit == "amount" else price
    lows = [0.0] + [e * scale for e in edges]
    ratios = sorted(draw(st.lists(st.sampled_from([1.0, 0.9, 0.8, 0.5, 0.0]), min_size=len(lows), max_size=len(lows))))
    return {"collateral_tiers": [{f"min_{unit}": low, "ratio": r} for low, r in zip(lows, ratios[::-1], strict=True)]}


@st.composite
def _account(draw: st.DrawFn, n: int) -> dict[str, Any]:
    exchange, mode = draw(st.sampled_from(VENUES))
    assets: list[dict[str, Any]] = [{"asset": "USDT", "amount": draw(_rounded(-2e4, 3e5)), "price": 1.0}]
    assets[0].update(draw(_bands(1.0)))
    for coin, price, symbols in (
        ("BTC", 90_000.0, ["BTC/USDT:USDT", None]),
        ("ETH", 3_000.0, ["ETH/USDT:USDT", None]),
        ("USDC", 1.0, [None]),
    ):
        if draw(st.booleans()):
            asset: dict[str, Any] = {
                "asset": coin,
                "amount": round(draw(_rounded(-2, 40)) * 90_000.0 / price, 6),
                "price": price,
            }
            asset.update(draw(_bands(price)))
            symbol = draw(st.sampled_from(symbols))
            if symbol is not None:
                asset["price_symbol"] = symbol
            if draw(st.booleans()):
                asset["borrowed"] = round(draw(_rounded(0, 3)) * 90_000.0 / price, 6)
                asset["borrow_maintenance_rate"] = draw(st.sampled_from([0.0, 0.05, 0.1]))
            assets.append(asset)
    listed = {a["asset"] for a in assets}
    positions = []
    for _ in range(draw(st.integers(1, 5))):
        symbol = draw(st.sampled_from(sorted(MARKS)))
        mark = MARKS[symbol]
        position: dict[str, Any] = {
            "symbol": symbol,
            "side": draw(st.sampled_from(["long", "short"])),
            "contracts": round(draw(_rounded(0.01, 40)) * 90_000.0 / mark, 6),
            "contract_size": 1.0,
            "entry_price": mark * draw(st.floats(0.8, 1.2)),
            "mark_price": mark,
            "margin_mode": "cross",
            "tiers": TIERS,
        }
        # settling in a listed asset that may move with the symbol: the quadratic pieces
        settle = draw(st.sampled_from(sorted(listed)))
        if settle != "USDT":
            position["settle"] = settle
        if draw(st.integers(0, 5)) == 0:
            position["margin_mode"] = "isolated"
            position["isolated_margin"] = position["contracts"] * mark * 0.1
        positions.append(position)
    return {
        "exchange": exchange,
        "account": f"a{n}",
        "account_mode": mode,
        "collateral": "USDT",
        "assets": assets,
        "positions": positions,
        "open_order_loss": draw(st.sampled_from([0.0, 0.0, 500.0])),
    }


def _nan(x: float | None) -> float:
    return np.nan if x is None else x


def _same(got: np.ndarray, want: np.ndarray) -> bool:
    return bool(np.allclose(got, want, rtol=1e-9, atol=1e-9, equal_nan=True))


def _expected(snapshots: list[Snapshot], health: float) -> tuple[np.ndarray, np.ndarray]:
    down: list[float] = []
    up: list[float] = []
    for snap in snapshots:
        for found in all_liquidations(snap, health):
            down.append(_nan(found.down))
            up.append(_nan(found.up))
    return np.array(down), np.array(up)


@SETTINGS
@given(
    st.lists(st.integers(0, 10**6), min_size=1, max_size=4).flatmap(lambda ks: st.tuples(*(_account(k) for k in ks)))
)
def test_vectorised_collateral_equals_the_scalar_engine(docs: tuple[dict[str, Any], ...]) -> None:
    snapshots = [parse_snapshot(d) for d in docs]
    batch = batch_from_snapshots(snapshots)
    result = with_multi_collateral(batch, evaluate(batch), snapshots)
    offsets = np.cumsum([0] + [len(s.positions) for s in snapshots])
    at = offsets[batch.account] + batch.index
    down, up = _expected(snapshots, 1.0)
    assert _same(result.liquidation_price_down, down[at])
    assert _same(result.liquidation_price_up, up[at])
    cross = np.flatnonzero(batch.pool_is_cross)
    want = np.array(
        [[pool_figures(s, pools(s)[0]).equity, pool_figures(s, pools(s)[0]).maintenance_margin] for s in snapshots]
    )
    assert np.allclose(result.pool_equity[cross], want[:, 0], rtol=1e-12, atol=1e-6)
    assert np.allclose(result.pool_maintenance[cross], want[:, 1], rtol=1e-12, atol=1e-6)
    health = np.array([_nan(pool_figures(s, pools(s)[0]).health) for s in snapshots])
    assert _same(result.account_health, health)

    cb = collateral_batch(batch, snapshots)
    assert cb is not None
    at_health = collateral_health_prices(cb, batch, result.unrealized_pnl, result.maintenance_margin, 1.25)
    down, up = _expected(snapshots, 1.25)
    cross_rows = cb.settle >= 0
    assert _same(at_health[0][cross_rows], down[at][cross_rows])
    assert _same(at_health[1][cross_rows], up[at][cross_rows])


@settings(SETTINGS, max_examples=max(10, SETTINGS.max_examples // 3))
@given(
    st.lists(st.integers(0, 10**6), min_size=1, max_size=3).flatmap(lambda ks: st.tuples(*(_account(k) for k in ks)))
)
def test_the_stored_alert_prices_of_multi_collateral_accounts_move_the_collateral(
    docs: tuple[dict[str, Any], ...],
) -> None:
    """The poller's watch prices (warning, critical; both sides) for these accounts are the
    scalar engine's, where the collateral moves with the symbol (not the wallet + PnL of a
    single-collateral pool)."""
    snapshots = [parse_snapshot(d) for d in docs]
    batch = batch_from_snapshots(snapshots)
    cb = collateral_batch(batch, snapshots)
    result = with_multi_collateral(batch, evaluate(batch), snapshots, cb)
    limits = DangerLimits()
    got = batch_alert_prices(batch, result, np.full(batch.size.shape[0], np.nan), [limits] * len(snapshots), cb)
    for k in range(batch.size.shape[0]):
        snap, i = snapshots[batch.account[k]], int(batch.index[k])
        for column, value in scalar_alert_prices(snap, i, limits).items():
            assert _same(np.array([got[column][k]]), np.array([_nan(value)])), column


@settings(SETTINGS, max_examples=max(10, SETTINGS.max_examples // 3))
@given(
    st.lists(st.integers(0, 10**6), min_size=1, max_size=3).flatmap(lambda ks: st.tuples(*(_account(k) for k in ks))),
    st.floats(-0.6, 0.6),
    st.sampled_from([0.0, 0.5, 1.0, 1.4]),
)
def test_a_btc_shock_values_the_collateral_as_the_scalar_engine(
    docs: tuple[dict[str, Any], ...], shock: float, eth_beta: float
) -> None:
    """margin.correlation's scenarios (the vectorised pool totals and shocked collateral)
    give each account the health margin.collateral gives it with every symbol and every
    collateral asset moved by (1 + shock) ^ beta."""
    from margin.collateral import account_figures
    from margin.correlation import correlated_stress

    betas = {"BTC/USDT:USDT": 1.0, "ETH/USDT:USDT": eth_beta, "SOL/USDT:USDT": 1.2}
    snapshots = [parse_snapshot(d) for d in docs]
    (scenario,) = correlated_stress(snapshots, betas, shocks=(shock,)).scenarios

    def factor(symbol: str) -> float:
        return float((1.0 + shock) ** betas[symbol])

    for a, snap in enumerate(snapshots):
        cross = pools(snap)[0]
        figures = account_figures(snap, cross, factor=factor)
        want = figures.equity / figures.maintenance_margin if cross.indices and figures.maintenance_margin > 0 else None
        assert _same(np.array([scenario.account_health[a]]), np.array([_nan(want)]))
