"""Funding drag on hand-checked numbers (margin.funding)."""

from __future__ import annotations

import pytest

from margin.funding import FundingRate, funding_payment, funding_projection
from margin.snapshot import parse_snapshot

BTC, ETH, XRP = "BTC/USDT:USDT", "ETH/USDT:USDT", "XRP/USDT:USDT"


def _position(
    symbol: str,
    side: str,
    contracts: float,
    mark: float,
    rate: float = 0.005,
    mode: str = "cross",
    margin: float | None = None,
) -> dict:
    return {
        "symbol": symbol,
        "side": side,
        "contracts": contracts,
        "contract_size": 1.0,
        "entry_price": mark,
        "mark_price": mark,
        "margin_mode": mode,
        "isolated_margin": margin,
        "maintenance_margin_rate": rate,
    }


def _snapshot(wallet: float, *positions: dict):
    return parse_snapshot(
        {
            "exchange": "binanceusdm",
            "account": "t",
            "collateral": "USDT",
            "wallet_balance": wallet,
            "positions": list(positions),
        }
    )


def test_a_long_pays_a_positive_rate_every_interval() -> None:
    # 1 BTC at 50,000, 0.5 % maintenance: requirement 250; wallet 400: health 1.6.
    # 0.01 % per 8 h on 50,000 is 5 per settlement; settlements at 2, 10, 18, 26, ... hours.
    snap = _snapshot(400.0, _position(BTC, "long", 1, 50_000))
    rates = {BTC: FundingRate(BTC, 0.0001, 8.0, hours_to_next=2.0)}
    (cross,) = funding_projection(snap, rates, warning_health=1.5).pools
    assert cross.health == pytest.approx(1.6)
    assert cross.per_day == pytest.approx(-15.0)
    # 24 h: 3 settlements; 72 h: 9 (2 ... 66); 168 h: 21 (2 ... 162)
    assert cross.funding_at == pytest.approx({24.0: -15.0, 72.0: -45.0, 168.0: -105.0})
    assert cross.health_at == pytest.approx({24.0: 385 / 250, 72.0: 355 / 250, 168.0: 295 / 250})
    # below 1.5 means equity < 375: five payments leave exactly 375, the sixth (at 42 h) breaks it
    assert cross.breach_hours == 42.0
    assert cross.funding_breach


def test_a_short_receives_a_positive_rate_and_a_long_receives_a_negative_one() -> None:
    short = _snapshot(400.0, _position(BTC, "short", 1, 50_000))
    rates = {BTC: FundingRate(BTC, 0.0001)}
    (cross,) = funding_projection(short, rates).pools
    assert cross.funding_at[24.0] == pytest.approx(15.0)
    assert cross.breach_hours is None
    long_ = _snapshot(400.0, _position(BTC, "long", 1, 50_000))
    assert funding_payment(long_.positions[0], -0.0001) == pytest.approx(5.0)
    assert funding_payment(short.positions[0], -0.0001) == pytest.approx(-5.0)


def test_the_predicted_rate_applies_after_the_next_settlement() -> None:
    snap = _snapshot(10_000.0, _position(BTC, "long", 1, 50_000))
    rates = {BTC: FundingRate(BTC, 0.0001, 8.0, predicted_rate=0.0003, hours_to_next=2.0)}
    (cross,) = funding_projection(snap, rates).pools
    assert cross.funding_at[24.0] == pytest.approx(-5.0 - 15.0 - 15.0)
    assert cross.per_day == pytest.approx(-15.0)  # the current rate's flow


def test_an_isolated_position_is_drained_by_its_own_funding_only() -> None:
    # isolated ETH: 10 at 2,000, 1 % maintenance = 200, margin 300: health 1.5;
    # 0.02 % every 4 h on 20,000 = 4 per settlement, first one 4 h away: 6 a day.
    snap = _snapshot(
        400.0,
        _position(BTC, "long", 1, 50_000),
        _position(ETH, "long", 10, 2_000, rate=0.01, mode="isolated", margin=300.0),
    )
    rates = {BTC: FundingRate(BTC, 0.0, 8.0), ETH: FundingRate(ETH, 0.0002, 4.0)}
    cross, isolated = funding_projection(snap, rates, warning_health=1.5).pools
    assert cross.funding_at[168.0] == 0.0
    assert cross.health_at[168.0] == pytest.approx(1.6)
    assert isolated.pool == "isolated:1"
    assert isolated.funding_at[24.0] == pytest.approx(-24.0)
    assert isolated.health_at[24.0] == pytest.approx(276 / 200)
    assert isolated.breach_hours == 4.0  # at exactly 1.5 now, below after the first payment


def test_settlements_at_the_same_time_count_together() -> None:
    # requirement 250 + 100 = 350, wallet 530: health 1.514. At 8 h the long pays 30 and the
    # short receives 30: health unchanged, although the payment alone would take it to 1.43.
    snap = _snapshot(530.0, _position(BTC, "long", 1, 50_000), _position(ETH, "short", 10, 2_000))
    rates = {BTC: FundingRate(BTC, 0.0006), ETH: FundingRate(ETH, 0.0015)}
    (cross,) = funding_projection(snap, rates, warning_health=1.5).pools
    assert cross.funding_at[168.0] == pytest.approx(0.0, abs=1e-9)
    assert cross.breach_hours is None


def test_already_below_and_missing_rates() -> None:
    snap = _snapshot(300.0, _position(BTC, "long", 1, 50_000), _position(XRP, "long", 100, 2.0))
    projection = funding_projection(snap, {BTC: FundingRate(BTC, 0.0001)}, warning_health=1.5)
    (cross,) = projection.pools
    assert projection.missing_symbols == (XRP,)
    assert cross.breach_hours == 0.0 and not cross.funding_breach
    assert cross.funding_at[24.0] == pytest.approx(-15.0)  # XRP counted as 0


def test_a_settlement_beyond_the_horizon_is_not_counted() -> None:
    rate = FundingRate(BTC, 0.0001, 8.0, hours_to_next=30.0)
    times, _ = rate.settlements(24.0)
    assert times.size == 0
    times, rates = FundingRate(BTC, 0.0001, 8.0, predicted_rate=0.0002).settlements(24.0)
    assert times.tolist() == [8.0, 16.0, 24.0] and rates.tolist() == [0.0001, 0.0002, 0.0002]
