"""Coin-margined accounts through real ccxt (`binancecoinm`) against the simulator's
Binance COIN-M (`/dapi`, simulator/binance_coinm.py), issue 14: the connector's snapshot is
the scenario, in the coin, and the engine agrees with the venue's liquidation prices."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from config.settings import parse_config
from connectors.account import AccountConnector
from connectors.normalise import AccountData, inverse_settle
from connectors.venues import normalise
from margin.report import risk_report
from margin.snapshot import parse_snapshot
from simulator import ExchangeSimulator
from simulator.scenario import ScenarioError, parse_scenario
from tests.conftest import running_simulator

SCENARIO = json.loads((Path(__file__).parent / "fixtures" / "simulator" / "coinm.json").read_text())
ACCOUNT = SCENARIO["accounts"][0]
MARKETS = {m["symbol"]: m for m in SCENARIO["markets"]["binancecoinm"]}


@pytest.fixture(scope="module")
def sim() -> Iterator[ExchangeSimulator]:
    with running_simulator(SCENARIO) as simulator:
        yield simulator


def _fetch(sim: ExchangeSimulator, polls: int = 1, between: Any = None) -> list[dict[str, Any]]:
    config = parse_config(
        {
            "accounts": [
                {
                    "name": "miner",
                    "exchange": "binancecoinm",
                    "key_env": "K",
                    "secret_env": "S",
                    "base_url": sim.base_url,
                    "timeout_seconds": 5.0,
                    "collateral": "BTC",
                }
            ]
        }
    )

    async def main() -> list[dict[str, Any]]:
        conn = AccountConnector(config.accounts[0], {"apiKey": ACCOUNT["api_key"], "secret": ACCOUNT["secret"]})
        docs = []
        try:
            for k in range(polls):
                if k and between:
                    between()
                docs.append(await conn.fetch_snapshot())
        finally:
            await conn.close()
        return docs

    return asyncio.run(main())


def test_coinm_snapshot_is_the_scenario_in_the_coin(sim: ExchangeSimulator) -> None:
    sim.reset()
    before = len(sim.requests)
    (doc,) = _fetch(sim)
    paths = {path for _, _, path in sim.requests[before:]}
    assert {"/dapi/v1/account", "/dapi/v1/positionRisk", "/dapi/v2/leverageBracket"} <= paths
    snap = parse_snapshot(doc)
    assert snap.exchange == "binancecoinm" and snap.collateral == "BTC"
    assert snap.wallet_balance == pytest.approx(ACCOUNT["wallet_balance"])
    got = {p.symbol: p for p in snap.positions}
    assert set(got) == {p["symbol"] for p in ACCOUNT["positions"]}
    for expected in ACCOUNT["positions"]:
        pos = got[expected["symbol"]]
        assert pos.inverse and pos.settle == "BTC"
        assert pos.side == expected["side"] and pos.contracts == pytest.approx(expected["contracts"])
        assert pos.contract_size == MARKETS[expected["symbol"]]["contract_size"]  # USD a contract
        assert pos.entry_price == pytest.approx(expected["entry_price"])
        assert pos.mark_price == pytest.approx(MARKETS[expected["symbol"]]["mark_price"])
        assert pos.margin_mode == expected["margin_mode"]
        if expected["margin_mode"] == "isolated":
            assert pos.isolated_margin == pytest.approx(expected["isolated_margin"])
        # brackets bounded in the coin, as the scenario gives them
        assert pos.tiers[1].min_notional == MARKETS[expected["symbol"]]["tiers"][0]["max_notional"]


def test_engine_agrees_with_the_venue_before_and_after_the_marks_move(sim: ExchangeSimulator) -> None:
    sim.reset()

    def move() -> None:
        sim.set_mark("binancecoinm", "BTC/USD:BTC", 99_000.0)
        sim.set_mark("binancecoinm", "BTC/USD:BTC-261225", 80_500.0)
        sim.set_mark("binancecoinm", "BTC/USD:BTC-270326", 85_000.0)

    docs = _fetch(sim, polls=2, between=move)
    sim.reset()
    seen = 0
    for doc in docs:
        report = risk_report(parse_snapshot(doc))
        assert report["collateral"] == "BTC" and report["valuation_currency"] == "USD"
        for p in report["positions"]:
            if p["exchange_liquidation_price"] is None:
                assert p["liquidation_price"] is None
                continue
            seen += 1
            assert p["liquidation_price"] == pytest.approx(p["exchange_liquidation_price"], rel=1e-6)
            assert p["disagrees_with_exchange"] is False
            assert p["notional"] == pytest.approx(p["size"] / p["mark_price"])  # BTC
    assert seen >= 4
    assert docs[0]["positions"][0]["mark_price"] != docs[1]["positions"][0]["mark_price"]


def _inverse_position(symbol: str) -> dict[str, Any]:
    return {
        "symbol": symbol,
        "side": "long",
        "contracts": 10,
        "contractSize": 10,
        "entryPrice": 3000.0,
        "markPrice": 3100.0,
        "marginMode": "cross",
        "maintenanceMarginPercentage": 0.005,
        "info": {"isolatedWallet": "0", "liquidationPrice": "0"},
    }


def test_a_coin_account_entry_watches_the_contracts_of_its_coin() -> None:
    """A COIN-M account has one wallet per coin: an entry with collateral BTC keeps the BTC
    contracts; the ETH ones belong to the entry with collateral ETH."""
    balance = {
        "info": {
            "assets": [
                {"asset": "BTC", "crossWalletBalance": "1.5"},
                {"asset": "ETH", "crossWalletBalance": "20"},
            ]
        }
    }
    btc = _inverse_position("BTC/USD:BTC")
    btc["contractSize"] = 100
    data = AccountData(balance=balance, positions=[btc, _inverse_position("ETH/USD:ETH")])
    by_coin = {coin: normalise("binancecoinm", "m", coin, data) for coin in ("BTC", "ETH")}
    assert [p["symbol"] for p in by_coin["BTC"]["positions"]] == ["BTC/USD:BTC"]
    assert [p["symbol"] for p in by_coin["ETH"]["positions"]] == ["ETH/USD:ETH"]
    assert by_coin["ETH"]["wallet_balance"] == 20.0
    assert by_coin["ETH"]["positions"][0]["contract_type"] == "inverse"


@pytest.mark.parametrize(
    ("symbol", "market", "settle"),
    [
        ("BTC/USD:BTC", {}, "BTC"),
        ("BTC/USD:BTC-261225", {}, "BTC"),
        ("BTC/USDT:USDT", {}, None),
        ("BTC-USD-SWAP", {"inverse": True, "settle": "BTC"}, "BTC"),
        ("ETH/USDC:USDC-261225", {}, None),
    ],
)
def test_inverse_settle(symbol: str, market: dict, settle: str | None) -> None:
    assert inverse_settle(symbol, market) == settle


def test_the_simulator_serves_coin_margined_contracts_on_coinm_only() -> None:
    doc = json.loads(json.dumps(SCENARIO))
    doc["markets"]["binancecoinm"][0]["symbol"] = "BTC/USDT:USDT"
    with pytest.raises(ScenarioError, match="settle in their base"):
        parse_scenario(doc)
    doc = json.loads(json.dumps(SCENARIO))
    doc["markets"]["binanceusdm"] = [dict(doc["markets"]["binancecoinm"][0], contract_size=1)]
    with pytest.raises(ScenarioError, match="only linear swaps"):
        parse_scenario(doc)


def test_the_poller_stores_the_coin_account(sim: ExchangeSimulator, tmp_path: Path) -> None:
    """Polled through real ccxt, stored, and read back by the account views in the coin."""
    import os
    from datetime import UTC, datetime

    from poller.runtime import run_poller
    from readmodels.accounts import account_views
    from store.db import make_engine, session_factory

    sim.reset()
    os.environ["MW_COINM_KEY"], os.environ["MW_COINM_SECRET"] = ACCOUNT["api_key"], ACCOUNT["secret"]
    db = f"sqlite:///{tmp_path / 'coinm.db'}"
    config = parse_config(
        {
            "poll_interval_seconds": 0.5,
            "database_url": db,
            "stale_after_seconds": 60.0,
            "accounts": [
                {
                    "name": "miner",
                    "exchange": "binancecoinm",
                    "key_env": "MW_COINM_KEY",
                    "secret_env": "MW_COINM_SECRET",
                    "base_url": sim.base_url,
                    "timeout_seconds": 4.0,
                    "collateral": "BTC",
                }
            ],
        }
    )
    cycles: list[Any] = []
    asyncio.run(run_poller(config, cycles=2, on_cycle=cycles.append, secrets_file={}))
    assert [c.stored for c in cycles] == [["miner"], ["miner"]], [c.failed for c in cycles]
    with session_factory(make_engine(db))() as session:
        (view,) = account_views(session, datetime.now(UTC), config.stale_after)
    expected = risk_report(parse_snapshot(_fetch(sim)[0]))
    assert view.collateral == "BTC" and view.positions == 3
    assert view.equity == pytest.approx(expected["account"]["equity"], rel=1e-9)  # in BTC
    assert view.nearest is not None and view.nearest.symbol == "BTC/USD:BTC-270326"
    assert view.nearest.price == pytest.approx(expected["account"]["nearest"]["price"], rel=1e-9)
