"""Multi-collateral accounts through real ccxt against the simulator (issue 13): a Bybit
unified account holding BTC and USDT collateral and an OKX multi-currency account are
detected, normalised, and our ratio agrees with the venue's own within 0.5 %."""

from __future__ import annotations

import asyncio
import copy
import random
from collections.abc import Iterator
from typing import Any

import pytest

from config.settings import parse_config
from connectors.account import AccountConnector
from connectors.errors import DataError
from margin.report import risk_report
from margin.snapshot import parse_snapshot
from simulator import ExchangeSimulator
from tests.helpers import running_simulator
from tests.test_connectors_simulator import SCENARIO

BTC_BANDS = [
    {"min_amount": 0, "max_amount": 1, "ratio": 0.95},
    {"min_amount": 1, "max_amount": 5, "ratio": 0.9},
    {"min_amount": 5, "ratio": 0.5},
]


# Binance publishes one collateral rate per asset (its asset index's bidBuffer)
BTC_HAIRCUT: dict[str, dict[str, Any]] = {
    "bybit": {"collateral_tiers": BTC_BANDS},
    "okx": {"collateral_tiers": BTC_BANDS},
    "binanceusdm": {"collateral_ratio": 0.95},
}
BTC_VALUE = {"bybit": 0.95 + 0.45, "okx": 0.95 + 0.45, "binanceusdm": 1.5 * 0.95}  # x mark
KEYS = {"bybit": "uta-key", "okx": "okmc-key", "binanceusdm": "bnma-key"}


def _multi(venue: str, key: str) -> dict[str, Any]:
    return {
        "venue": venue,
        "api_key": key,
        "secret": key + "-secret",
        "passphrase": key + "-pass" if venue == "okx" else None,
        "permissions": {"trade": False, "withdraw": False},
        "collateral": "USDT",
        "account_mode": "multi_asset",
        "assets": [
            {"asset": "USDT", "amount": 5000.0, "price": 1.0, "collateral_ratio": 1.0},
            {"asset": "BTC", "amount": 1.5, "price_symbol": "BTC/USDT:USDT", **BTC_HAIRCUT[venue]},
        ],
        "positions": [
            {
                "symbol": "BTC/USDT:USDT",
                "side": "long",
                "contracts": 200 if venue == "okx" else 2.0,
                "entry_price": 95000.0,
                "margin_mode": "cross",
                "isolated_margin": None,
                "leverage": 20,
            },
        ],
    }


def scenario() -> dict[str, Any]:
    doc = copy.deepcopy(SCENARIO)
    doc["accounts"] += [_multi(venue, key) for venue, key in KEYS.items()]
    portfolio = _multi("binanceusdm", "bnpm-key")
    portfolio["account_mode"] = "portfolio"
    doc["accounts"].append(portfolio)
    return doc


@pytest.fixture(scope="module")
def sim() -> Iterator[ExchangeSimulator]:
    with running_simulator(scenario()) as simulator:
        yield simulator


pytestmark = pytest.mark.usefixtures("fresh_sim")


def fetch(sim: ExchangeSimulator, venue: str, key: str, secret: str | None = None, **extra: Any) -> dict[str, Any]:
    account = {
        **extra,
        "name": f"{venue}-multi",
        "exchange": venue,
        "key_env": "K",
        "secret_env": "S",
        "base_url": sim.base_url,
        "timeout_seconds": 5.0,
    }
    creds = {"apiKey": key, "secret": secret or key + "-secret"}
    if venue == "okx":
        account["passphrase_env"] = "P"
        creds["password"] = key + "-pass"
    config = parse_config({"accounts": [account]})

    async def main() -> dict[str, Any]:
        conn = AccountConnector(config.accounts[0], creds)
        try:
            return await conn.fetch_snapshot()
        finally:
            await conn.close()

    return asyncio.run(main())


@pytest.mark.parametrize(("venue", "key"), list(KEYS.items()))
def test_a_multi_collateral_account_is_detected_and_agrees_with_the_venue(
    sim: ExchangeSimulator, venue: str, key: str
) -> None:
    doc = fetch(sim, venue, key)
    snapshot = parse_snapshot(doc)
    assert snapshot.account_mode == "multi_asset"
    assets = {a.asset: a for a in snapshot.assets}
    assert set(assets) == {"USDT", "BTC"}
    mark = snapshot.positions[0].mark_price
    assert assets["BTC"].amount == pytest.approx(1.5)
    assert assets["BTC"].price == pytest.approx(mark)
    assert assets["BTC"].price_symbol == "BTC/USDT:USDT"
    assert assets["USDT"].amount == pytest.approx(5000.0)
    report = risk_report(snapshot)
    ratio = report["account"]["native_ratio"]
    assert ratio["name"] == {"bybit": "accountMMRate", "okx": "mgnRatio", "binanceusdm": "marginRatio"}[venue]
    assert ratio["exchange_value"] is not None
    assert ratio["value"] == pytest.approx(ratio["exchange_value"], rel=0.005)
    assert not ratio["disagrees_with_exchange"]
    # BTC at its bands: 1 x mark x 0.95 + 0.5 x mark x 0.9 (Binance: 1.5 x mark x 0.95)
    btc = next(r for r in report["account"]["collateral"] if r["asset"] == "BTC")
    assert btc["adjusted_value"] == pytest.approx(mark * BTC_VALUE[venue], rel=1e-6)
    # the BTC long backed by BTC: its liquidation price moves the collateral with it
    assert report["positions"][0]["liquidation_price"] < mark


def test_bybit_without_the_collateral_table_is_a_named_error(sim: ExchangeSimulator) -> None:
    sim.add_fault("bybit", "/v5/spot-margin-trade/collateral", "http500", count=100)
    with pytest.raises(DataError) as caught:
        fetch(sim, "bybit", "uta-key")
    assert "extras.bybit_collateral" in str(caught.value)


def test_binance_single_asset_account_says_so(sim: ExchangeSimulator) -> None:
    """The scenario's ordinary Binance account: multiAssetsMargin false, single_asset."""
    snapshot = parse_snapshot(fetch(sim, "binanceusdm", "bn-key", "bn-secret"))
    assert snapshot.account_mode == "single_asset" and snapshot.wallet_balance == pytest.approx(12000.0)


def test_binance_portfolio_margin_reads_uni_mmr_and_liquidates_at_1_05(sim: ExchangeSimulator) -> None:
    """A Portfolio Margin account (config portfolio_margin) through ccxt's papi endpoints:
    uniMMR ours within 0.5 % of Binance's, and health = uniMMR / 1.05 (liquidation at 1.05)."""
    snapshot = parse_snapshot(fetch(sim, "binanceusdm", "bnpm-key", portfolio_margin=True))
    assert snapshot.account_mode == "portfolio"
    assert {a.asset for a in snapshot.assets} == {"USDT", "BTC"}
    report = risk_report(snapshot)
    ratio = report["account"]["native_ratio"]
    assert ratio["name"] == "uniMMR"
    assert ratio["value"] == pytest.approx(ratio["exchange_value"], rel=0.005)
    assert report["account"]["health"] == pytest.approx(ratio["value"] / 1.05)


ETH_BANDS = [{"min_amount": 0, "max_amount": 20, "ratio": 0.9}, {"min_amount": 30, "ratio": 0.7}]


def _generated(rng: random.Random, venue: str, n: int) -> dict[str, Any]:
    """A random multi-collateral account: USDT, BTC and ETH at random amounts (across the
    bands, a gap between two included), two random cross positions."""
    key = f"gen-{venue}-{n}"
    account = _multi(venue, key)
    if venue == "binanceusdm" and n % 2:
        account["account_mode"] = "portfolio"
    # a venue's collateral table is venue-wide (one per coin), as the simulator serves it
    eth = {"collateral_ratio": 0.9} if venue == "binanceusdm" else {"collateral_tiers": ETH_BANDS}
    account["assets"] = [
        {"asset": "USDT", "amount": rng.uniform(1000, 20000), "price": 1.0, "collateral_ratio": 1.0},
        {"asset": "BTC", "amount": rng.uniform(0.1, 8), "price_symbol": "BTC/USDT:USDT", **BTC_HAIRCUT[venue]},
        {"asset": "ETH", "amount": rng.uniform(1, 60), "price_symbol": "ETH/USDT:USDT", **eth},
    ]
    per_contract = 100 if venue == "okx" else 1  # OKX contracts: 0.01 BTC, 0.1 ETH
    account["positions"] = [
        {
            "symbol": "BTC/USDT:USDT",
            "side": rng.choice(["long", "short"]),
            "contracts": round(rng.uniform(0.2, 3), 2) * per_contract,
            "entry_price": rng.uniform(80000, 100000),
            "margin_mode": "cross",
            "isolated_margin": None,
            "leverage": 20,
        },
        {
            "symbol": "ETH/USDT:USDT",
            "side": rng.choice(["long", "short"]),
            "contracts": round(rng.uniform(1, 40), 1) * (10 if venue == "okx" else 1),
            "entry_price": rng.uniform(2800, 3500),
            "margin_mode": "cross",
            "isolated_margin": None,
            "leverage": 20,
        },
    ]
    return account


GENERATED = [(venue, n) for venue in ("bybit", "okx", "binanceusdm") for n in range(3)]


def test_generated_accounts_agree_with_the_venue_ratio_within_half_a_percent() -> None:
    """Random multi-collateral accounts on each venue, through real ccxt: the venue's own
    ratio (accountMMRate, mgnRatio, marginRatio, uniMMR) and ours within 0.5 %."""
    rng = random.Random(13)
    doc = copy.deepcopy(SCENARIO)
    accounts = {(venue, n): _generated(rng, venue, n) for venue, n in GENERATED}
    doc["accounts"] += list(accounts.values())
    with running_simulator(doc) as simulator:
        for (venue, n), account in accounts.items():
            extra = {"portfolio_margin": True} if account["account_mode"] == "portfolio" else {}
            snapshot = parse_snapshot(fetch(simulator, venue, account["api_key"], **extra))
            assert snapshot.account_mode == account["account_mode"], (venue, n)
            ratio = risk_report(snapshot)["account"]["native_ratio"]
            assert ratio["value"] == pytest.approx(ratio["exchange_value"], rel=0.005), (venue, n, ratio)


def test_the_mode_is_read_hourly_not_every_poll(sim: ExchangeSimulator) -> None:
    """Binance weighs GET /fapi/v1/multiAssetsMargin 30 and OKX limits account/config:
    three polls of a multi-collateral account read the mode once; of an account holding
    only its collateral, never (the key check reads OKX's config once anyway)."""
    for venue, key, secret, path, expected in (
        ("binanceusdm", "bn-key", "bn-secret", "/fapi/v1/multiAssetsMargin", 0),
        ("okx", "ok-key", "ok-secret", "/api/v5/account/config", 1),
        ("binanceusdm", "bnma-key", "bnma-key-secret", "/fapi/v1/multiAssetsMargin", 1),
        ("okx", "okmc-key", "okmc-key-secret", "/api/v5/account/config", 2),
    ):
        account = {
            "name": f"{venue}-hourly",
            "exchange": venue,
            "key_env": "K",
            "secret_env": "S",
            "base_url": sim.base_url,
            "timeout_seconds": 5.0,
        }
        creds = {"apiKey": key, "secret": secret}
        if venue == "okx":
            account["passphrase_env"] = "P"
            creds["password"] = "ok-pass" if key == "ok-key" else key + "-pass"
        config = parse_config({"accounts": [account]})

        async def polls(config: Any = config, creds: dict[str, str] = creds) -> None:
            conn = AccountConnector(config.accounts[0], creds)
            try:
                for _ in range(3):
                    await conn.fetch_snapshot()
            finally:
                await conn.close()

        before = sum(1 for v, _, p in sim.requests if p == path)
        asyncio.run(polls())
        reads = sum(1 for v, _, p in sim.requests if p == path) - before
        assert reads == expected, (venue, key, reads)
