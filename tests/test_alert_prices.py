"""Alert prices (issue 19): where, moving one symbol, a pool enters warning, critical and
liquidation, both sides; the vectorised engine finds the same health prices."""

from __future__ import annotations

import math
import os

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from margin.alert_prices import alert_prices, chance_price
from margin.danger import DangerLimits
from margin.liquidation import all_liquidations, hedge_legs
from margin.pools import pool_figures, pool_of
from margin.snapshot import parse_snapshot
from margin.vectorised import batch_from_snapshots, health_prices
from margin.volatility import touch_probability
from tests.helpers import scalar_alert_prices
from tests.strategies import snapshots

PROPERTY_SETTINGS = settings(max_examples=int(os.environ.get("MARGINWATCH_EXAMPLES", "200")), deadline=None)


@PROPERTY_SETTINGS
@given(snapshots(venues=["binanceusdm", "bybit", "hyperliquid", "kraken"]), st.sampled_from([1.15, 1.5, 3.0]))
def test_at_a_health_price_the_pool_is_at_that_health(doc: dict, health: float) -> None:
    snap = parse_snapshot(doc)
    for i, found in enumerate(all_liquidations(snap, health)):
        for price in (found.down, found.up):
            if price is None:
                continue
            legs = hedge_legs(snap, i)
            prices = [price if j in legs else p.mark_price for j, p in enumerate(snap.positions)]
            figures = pool_figures(snap, pool_of(snap, i), prices)
            scale = abs(figures.pool.balance) + sum(
                snap.positions[j].size * max(prices[j], snap.positions[j].entry_price) for j in figures.pool.indices
            )
            assume(figures.maintenance_margin > 1e-6 * scale)
            assert figures.health == pytest.approx(health, rel=1e-9)


@PROPERTY_SETTINGS
@given(st.lists(snapshots(), min_size=1, max_size=3), st.sampled_from([1.15, 1.5]))
def test_vectorised_health_prices_equal_the_scalar_ones(docs: list[dict], health: float) -> None:
    snaps = [parse_snapshot(d) for d in docs]
    batch = batch_from_snapshots(snaps)
    down, up = health_prices(batch, health)
    for k in range(batch.size.shape[0]):
        found = all_liquidations(snaps[batch.account[k]], health)[int(batch.index[k])]
        for got, expected in ((down[k], found.down), (up[k], found.up)):
            if expected is None:
                assert math.isnan(got)
            else:
                assert got == pytest.approx(expected, rel=1e-9)


def test_the_chance_price_is_where_the_chance_reaches_the_threshold() -> None:
    price = chance_price(100.0, 90.0, 0.03, 0.2, 24.0)
    assert price is not None and 90.0 < price < 100.0
    assert touch_probability(np.array([price]), np.array([90.0]), 0.03, 24.0)[0] == pytest.approx(0.2, abs=1e-9)
    above = chance_price(100.0, 112.0, 0.03, 0.05, 24.0)
    assert above is not None and 100.0 < above < 112.0
    assert chance_price(100.0, 99.5, 0.03, 0.2, 24.0) == 100.0  # already that likely: at the mark
    assert chance_price(100.0, 90.0, None, 0.2, 24.0) is None


def test_a_long_s_prices_line_up_below_the_mark() -> None:
    """An ETH long, cross, 30,000 of notional on 4,000 of wallet, daily σ 4 %: moving down it meets the
    warning first, then critical, then liquidation; the health bands and the chance each
    decide where they are stricter."""
    snap = parse_snapshot(
        {
            "exchange": "binanceusdm",
            "account": "a",
            "collateral": "USDT",
            "wallet_balance": 4000.0,
            "positions": [
                {
                    "symbol": "ETH/USDT:USDT",
                    "side": "long",
                    "contracts": 10.0,
                    "contract_size": 1.0,
                    "entry_price": 3000.0,
                    "mark_price": 3000.0,
                    "margin_mode": "cross",
                    "maintenance_margin_rate": 0.01,
                    "volatility": 0.04,
                }
            ],
        }
    )
    limits = DangerLimits()
    ((prices,),) = [alert_prices(snap, limits)]
    liq, crit, warn = prices.liquidation[0], prices.critical[0], prices.warning[0]
    assert liq is not None and crit is not None and warn is not None
    assert liq < crit < warn < 3000.0
    # equity 4,000 + 10 (P - 3,000) = 0.1 P at liquidation: P = 26,000 / 9.9
    assert liq == pytest.approx(26_000 / 9.9)
    # the chance bands: at the critical price, a 20 % chance of touching the liquidation price
    touch = touch_probability(np.array([crit]), np.array([liq]), 0.04, 24.0)[0]
    health_at_crit = (4000 + 10 * (crit - 3000)) / (0.1 * crit)
    assert touch == pytest.approx(0.2, abs=1e-6) or health_at_crit == pytest.approx(1.15)
    assert prices.liquidation[1] is None and prices.critical[1] is None


@PROPERTY_SETTINGS
@given(
    st.floats(0.02, 0.3),  # distance to the lower liquidation price, fraction of the mark
    st.floats(0.02, 0.3),  # to the upper one
    st.floats(0.005, 0.1),  # daily σ
    st.sampled_from([0.05, 0.2]),
    st.floats(0.0, 1.0),  # where between the mark and the watch price
)
def test_a_chance_watch_fires_before_the_level_is_reached_on_either_side(
    below: float, above: float, sigma: float, chance: float, where: float
) -> None:
    """Both sides' chances count (their sum): between the mark and the price a watch is set
    at, the level's chance is never reached, so a move that reaches it has crossed the watch."""
    from margin.alert_prices import danger_prices

    mark, down, up = 100.0, 100.0 * (1 - below), 100.0 * (1 + above)

    def chance_at(price: float) -> float:
        return float(
            touch_probability(np.array([price]), np.array([down]), sigma, 24.0)[0]
            + touch_probability(np.array([price]), np.array([up]), sigma, 24.0)[0]
        )

    assume(chance_at(mark) < chance * 0.999)
    low, high = danger_prices(
        np.array([mark]), np.array([down]), np.array([up]), np.array([sigma]), np.array([chance]), np.array([0.0]), 24.0
    )
    for watch in (low[0], high[0]):
        assert math.isfinite(watch)
        price = mark + where * (watch - mark) * 0.999
        assert chance_at(price) < chance + 1e-9


@PROPERTY_SETTINGS
@given(st.lists(snapshots(), min_size=1, max_size=3), st.floats(0.005, 0.1) | st.none())
def test_the_stored_alert_prices_are_the_scalar_engine_s(docs: list[dict], sigma: float | None) -> None:
    """The poller stores batch_alert_prices with each position: the same prices as
    alert_prices (one symbol's, the rest of its pool at mark) for every position."""
    from margin.alert_prices import batch_alert_prices
    from margin.vectorised import evaluate

    for doc in docs:
        for p in doc["positions"]:
            p["volatility"] = sigma
    snaps = [parse_snapshot(d) for d in docs]
    batch = batch_from_snapshots(snaps)
    limits = DangerLimits()
    got = batch_alert_prices(
        batch, evaluate(batch), np.full(batch.size.shape[0], sigma or math.nan), [limits] * len(snaps)
    )
    for k in range(batch.size.shape[0]):
        snap, i = snaps[batch.account[k]], int(batch.index[k])
        for column, value in scalar_alert_prices(snap, i, limits).items():
            stored = got[column][k]
            if value is None:
                assert math.isnan(stored), column
            else:
                assert stored == pytest.approx(value, rel=1e-9), column
