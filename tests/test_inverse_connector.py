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
from tests.helpers import running_simulator

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


@pytest.mark.parametrize(("venue", "tolerance"), [("bybit", 0.25), ("okx", 1e-4)])
def test_coin_account_on_bybit_and_okx_through_real_ccxt(sim: ExchangeSimulator, venue: str, tolerance: float) -> None:
    """An account entry with collateral BTC on Bybit (inverse category: instruments,
    positions, risk limits in BTC) and on OKX (BTC-USD-SWAP, ctVal 100 USD, tiers in
    contracts), polled by ccxt against the simulator: the inverse perpetual margined in BTC,
    and the engine at the venue's liquidation price (Bybit's rounded to its 0.5 tick)."""
    sim.reset()
    account = next(a for a in SCENARIO["accounts"] if a["venue"] == venue)
    market = SCENARIO["markets"][venue][0]
    entry = {
        "name": f"{venue}-coin",
        "exchange": venue,
        "key_env": "K",
        "secret_env": "S",
        "base_url": sim.base_url,
        "timeout_seconds": 5.0,
        "collateral": "BTC",
    }
    creds = {"apiKey": account["api_key"], "secret": account["secret"]}
    if venue == "okx":
        entry["passphrase_env"] = "P"
        creds["password"] = account["passphrase"]
    config = parse_config({"accounts": [entry]})

    async def main() -> dict[str, Any]:
        conn = AccountConnector(config.accounts[0], creds)
        try:
            return await conn.fetch_snapshot()
        finally:
            await conn.close()

    snap = parse_snapshot(asyncio.run(main()))
    assert snap.collateral == "BTC" and snap.wallet_balance == pytest.approx(account["wallet_balance"])
    (pos,) = snap.positions
    assert (pos.symbol, pos.contract_type, pos.settle) == ("BTC/USD:BTC", "inverse", "BTC")
    assert pos.contract_size == market["contract_size"]  # USD a contract
    assert pos.contracts == account["positions"][0]["contracts"] and pos.mark_price == market["mark_price"]
    (row,) = risk_report(snap)["positions"]
    assert row["exchange_liquidation_price"] is not None
    assert row["liquidation_price"] == pytest.approx(row["exchange_liquidation_price"], abs=tolerance)
    assert row["disagrees_with_exchange"] is False


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


def test_the_poller_stores_the_coin_account(
    sim: ExchangeSimulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Polled through real ccxt, stored, and read back by the account views in the coin."""
    from datetime import UTC, datetime

    from poller.runtime import run_poller
    from readmodels.accounts import account_views
    from store.db import make_engine, session_factory

    sim.reset()
    monkeypatch.setenv("MW_COINM_KEY", ACCOUNT["api_key"])
    monkeypatch.setenv("MW_COINM_SECRET", ACCOUNT["secret"])
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


BYBIT_BTCUSD = {
    "symbol": "BTCUSD",
    "contractType": "InversePerpetual",
    "status": "Trading",
    "baseCoin": "BTC",
    "quoteCoin": "USD",
    "launchTime": "1585526400000",
    "deliveryTime": "0",
    "deliveryFeeRate": "",
    "priceScale": "2",
    "leverageFilter": {"minLeverage": "1", "maxLeverage": "100.00", "leverageStep": "0.01"},
    "priceFilter": {"minPrice": "0.50", "maxPrice": "999999.00", "tickSize": "0.50"},
    "lotSizeFilter": {"maxOrderQty": "10000000", "minOrderQty": "1", "qtyStep": "1"},
    "unifiedMarginTrade": True,
    "fundingInterval": 480,
    "settleCoin": "BTC",
    "copyTrading": "none",
}
BYBIT_POSITION = {
    "positionIdx": 0,
    "riskId": 1,
    "riskLimitValue": "150",
    "symbol": "BTCUSD",
    "side": "Buy",
    "size": "20000",
    "avgPrice": "90000",
    "positionValue": "0.22222222",
    "tradeMode": 0,
    "autoAddMargin": 0,
    "positionStatus": "Normal",
    "leverage": "10",
    "markPrice": "91000",
    "liqPrice": "",
    "bustPrice": "",
    "positionIM": "0.0222",
    "positionMM": "0.0011",
    "positionBalance": "0",
    "unrealisedPnl": "0.00244200",
    "curRealisedPnl": "0",
    "cumRealisedPnl": "0",
    "adlRankIndicator": 2,
    "createdTime": "1700000000000",
    "updatedTime": "1700000000000",
    "seq": 1,
    "isReduceOnly": False,
}


def _envelope(result: dict[str, Any]) -> dict[str, Any]:
    return {"retCode": 0, "retMsg": "OK", "result": result, "retExtInfo": {}, "time": 1700000000000}


def test_bybit_inverse_account_through_ccxts_own_parsing() -> None:
    """A Bybit account entry with collateral BTC asks for the inverse markets and the
    inverse positions settled in BTC (category=inverse, settleCoin=BTC); ccxt's bybit parses
    Bybit v5 payloads of that shape (the v5 docs' fields; answered in-process, no network) and
    the normaliser makes an inverse snapshot whose PnL is Bybit's unrealisedPnl."""
    import ccxt

    from connectors.venues import profile_for

    profile = profile_for("bybit")
    client = ccxt.bybit({"options": profile.client_options("BTC")})
    asked: list[dict[str, Any]] = []

    def instruments(params: dict[str, Any] | None = None) -> dict[str, Any]:
        params = dict(params or {})
        asked.append(params)
        rows = [BYBIT_BTCUSD] if params.get("category") == "inverse" and not params.get("status") else []
        return _envelope({"category": params.get("category"), "list": rows, "nextPageCursor": ""})

    def position_list(params: dict[str, Any] | None = None) -> dict[str, Any]:
        asked.append(dict(params or {}))
        return _envelope({"category": "inverse", "list": [BYBIT_POSITION], "nextPageCursor": ""})

    client.publicGetV5MarketInstrumentsInfo = instruments
    client.privateGetV5PositionList = position_list
    client.load_markets()
    positions = client.fetch_positions(None, profile.positions_params("BTC"))
    assert {a.get("category") for a in asked} == {"inverse"}
    assert asked[-1]["settleCoin"] == "BTC"
    assert profile.positions_params("USDT") == {"settleCoin": "USDT", "category": "linear"}  # linear accounts unchanged

    balance = {"info": {"result": {"list": [{"coin": [{"coin": "BTC", "walletBalance": "0.05"}]}]}}}
    data = AccountData(balance=balance, positions=positions, markets=client.markets)
    snapshot = parse_snapshot(normalise("bybit", "uta", "BTC", data))
    (pos,) = snapshot.positions
    assert (pos.contract_type, pos.settle, pos.contracts, pos.contract_size) == ("inverse", "BTC", 20000, 1)
    report = risk_report(snapshot)
    assert report["positions"][0]["unrealized_pnl"] == pytest.approx(0.002442, rel=1e-4)
    assert report["account"]["wallet_balance"] == 0.05
    assert report["positions"][0]["liquidation_price_down"] is not None


def test_an_okx_coin_entry_keeps_the_coin_margined_swaps_and_a_usdt_entry_the_linear_ones() -> None:
    """OKX lists BTC-USD-SWAP (coin-margined) beside BTC-USDT-SWAP: each account entry keeps
    the positions margined in its collateral, so neither snapshot mixes currencies."""
    details = [{"ccy": "BTC", "eq": "0.5", "isoEq": "0"}, {"ccy": "USDT", "eq": "1000", "isoEq": "0"}]
    balance = {"info": {"data": [{"details": details}]}}

    def okx(symbol: str, size: float, upl: str) -> dict[str, Any]:
        return {
            "symbol": symbol,
            "side": "long",
            "contracts": 2,
            "contractSize": size,
            "entryPrice": 90000.0,
            "markPrice": 91000.0,
            "maintenanceMarginPercentage": 0.004,
            "info": {"mgnMode": "cross", "upl": upl, "liqPx": ""},
        }

    positions = [okx("BTC/USD:BTC", 100, "0.0000244"), okx("BTC/USDT:USDT", 0.01, "20")]
    # single-currency margin (acctLv 2): each currency its own margin (issue 13 reads the level)
    data = AccountData(
        balance=balance, positions=positions, extras={"okx_config": {"code": "0", "data": [{"acctLv": "2"}]}}
    )
    coin = parse_snapshot(normalise("okx", "coin", "BTC", data))
    usdt = parse_snapshot(normalise("okx", "usdt", "USDT", data))
    assert [(p.symbol, p.contract_type) for p in coin.positions] == [("BTC/USD:BTC", "inverse")]
    assert [(p.symbol, p.contract_type) for p in usdt.positions] == [("BTC/USDT:USDT", "linear")]
    assert coin.wallet_balance == pytest.approx(0.5 - 0.0000244)  # eq - the coin pool's cross upl


def test_a_coin_account_near_liquidation_is_alerted_in_its_coin(
    sim: ExchangeSimulator, smtp_server: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Polled, stored and alerted: the quarterly's mark moved to where the BTC pool's health
    is 1.1, one poll, and the CRITICAL e-mail names the coin amounts to the coin's decimals."""
    import re
    from datetime import UTC, datetime

    from alerts.outbox import deliver_due
    from connectors.errors import RetryPolicy
    from margin.stress import price_for_health
    from poller.loop import Poller
    from poller.runtime import build_connectors
    from store.db import make_engine, session_factory, upgrade
    from tests.alert_scenario import config_doc

    sim.reset()
    monkeypatch.setenv("MW_COINM_KEY", ACCOUNT["api_key"])
    monkeypatch.setenv("MW_COINM_SECRET", ACCOUNT["secret"])
    doc = config_doc(
        sim.base_url, f"sqlite:///{tmp_path / 'alerts.db'}", smtp_server.port, env=monkeypatch, danger=False
    )
    doc["accounts"] = [
        {
            "name": "miner",
            "exchange": "binancecoinm",
            "key_env": "MW_COINM_KEY",
            "secret_env": "MW_COINM_SECRET",
            "base_url": sim.base_url,
            "timeout_seconds": 4,
            "collateral": "BTC",
        }
    ]
    config = parse_config(doc)
    quarterly = "BTC/USD:BTC-261225"

    async def main() -> None:
        upgrade(config.database_url)
        sessions = session_factory(make_engine(config.database_url))
        connectors, _ = build_connectors(config, {})
        poller = Poller(config, sessions, connectors, alerts_wake=asyncio.Event())
        try:
            snapshot = parse_snapshot(await connectors["miner"].fetch_snapshot())
            price = price_for_health(snapshot, quarterly, 1.1)
            assert price is not None
            sim.set_mark("binancecoinm", quarterly, price)
            assert (await poller.cycle()).stored == ["miner"]
            deliver_due(sessions, config, lambda: datetime.now(UTC), RetryPolicy(0.01, 0.02))
        finally:
            await poller.close()

    try:
        asyncio.run(main())
    finally:
        sim.reset()
    (message,) = smtp_server.inbox.messages
    assert message["Subject"].startswith("CRITICAL · binancecoinm/miner")
    body = message.get_body(("plain",)).get_content()
    assert "Cross health: 1.10" in body
    assert re.search(r"\d\.\d{6} BTC", body), body  # coin money to the coin's decimals
    # a coin-margined contract's size is in USD, its notional in the coin; the quarterly keeps its expiry
    assert re.search(r"mark [\d,]+ USD · 40,000 USD \(400 contracts\) ≈ \d\.\d{6} BTC", body), body
    assert "BTC/USD 261225 long" in body
