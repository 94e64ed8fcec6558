"""The exchange simulator under real ccxt (async_support): signing, parsing and error
mapping run exactly as against the exchanges, on 127.0.0.1 only."""

from __future__ import annotations

import asyncio
import copy
import json
import logging
import math
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import ccxt
import pytest

from connectors.client import make_client
from connectors.guards import reject_unparseable_json
from connectors.redirect import redirect
from margin.liquidation import liquidation_price
from margin.snapshot import parse_snapshot
from simulator import ExchangeSimulator, ScenarioError, load_scenario
from simulator.scenario import parse_scenario
from simulator.state import SimState
from tests.helpers import running_simulator

ROOT = Path(__file__).parent.parent
FIXTURE = Path(__file__).parent / "fixtures" / "simulator" / "scenario.json"
SCENARIO = json.loads(FIXTURE.read_text())
VENUES = ("binanceusdm", "bybit", "okx")
CREDS = {
    "binanceusdm": ("bn-key", "bn-secret", None),
    "bybit": ("by-key", "by-secret", None),
    "okx": ("ok-key", "ok-secret", "ok-pass"),
}
WITHDRAW_KEY = ("bn-withdraw-key", "bn-withdraw-secret", None)
POSITIONS_PATH = {
    "binanceusdm": "/fapi/v3/positionRisk",
    "bybit": "/v5/position/list",
    "okx": "/api/v5/account/positions",
}


@pytest.fixture(scope="module")
def sim() -> Iterator[ExchangeSimulator]:
    with running_simulator(load_scenario(FIXTURE)) as simulator:
        yield simulator


pytestmark = pytest.mark.usefixtures("fresh_sim")


def run(
    sim: ExchangeSimulator,
    venue: str,
    action: Callable[[Any], Awaitable[Any]],
    *,
    creds: tuple[str, str, str | None] | None = None,
    timeout_ms: int = 3000,
    **options: Any,
) -> Any:
    """Run `action(client)` with a fresh ccxt client for `venue` (the fixture account's
    credentials unless `creds` = (key, secret, passphrase)), always closing it."""
    key, secret, password = creds or CREDS[venue]

    async def main() -> Any:
        client = make_client(venue, sim.base_url, key, secret, password, **options)
        client.timeout = timeout_ms
        # Fast tests: no client-side throttling, and no 250 ms pause on close (it lets TLS
        # connections drain; there is no TLS on 127.0.0.1).
        client.enableRateLimit = False
        client.timeout_on_exit = 0
        try:
            return await action(client)
        finally:
            await client.close()

    return asyncio.run(main())


def account_doc(venue: str) -> dict[str, Any]:
    return next(a for a in SCENARIO["accounts"] if a["venue"] == venue and a["api_key"] == CREDS[venue][0])


def engine_liquidations(venue: str, marks: dict[str, float] | None = None) -> dict[tuple[str, str], float]:
    """The engine's liquidation prices for the fixture account, built here from the
    scenario's notional tiers (independently of the simulator's own conversion)."""
    markets = {m["symbol"]: m for m in SCENARIO["markets"][venue]}
    account = account_doc(venue)
    positions = []
    for p in account["positions"]:
        market = markets[p["symbol"]]
        floor, tiers = 0.0, []
        for t in market["tiers"]:
            tiers.append(
                {
                    "min_notional": floor,
                    "max_notional": t["max_notional"],
                    "maintenance_margin_rate": t["maintenance_margin_rate"],
                }
            )
            floor = t["max_notional"] or math.inf
        positions.append(
            {
                **p,
                "contract_size": market["contract_size"],
                "tiers": tiers,
                "mark_price": (marks or {}).get(p["symbol"], market["mark_price"]),
            }
        )
    snapshot = parse_snapshot(
        {
            "exchange": venue,
            "account": "x",
            "collateral": "USDT",
            "wallet_balance": account["wallet_balance"],
            "positions": positions,
        }
    )
    return {(p["symbol"], p["side"]): liquidation_price(snapshot, i) for i, p in enumerate(account["positions"])}


# --- markets, balances, positions ----------------------------------------------------


@pytest.mark.parametrize("venue", VENUES)
def test_load_markets_serves_the_scenario_markets(sim: ExchangeSimulator, venue: str) -> None:
    markets = run(sim, venue, lambda c: c.load_markets())
    expected = {m["symbol"]: m for m in SCENARIO["markets"][venue]}
    assert set(markets) == set(expected)
    for symbol, spec in expected.items():
        market = markets[symbol]
        assert market["swap"] and market["linear"] and market["active"]
        assert market["contractSize"] == pytest.approx(spec["contract_size"])
        assert market["precision"]["price"] == pytest.approx(spec["price_tick"])


def test_fetch_balance_gives_the_scenario_wallet(sim: ExchangeSimulator) -> None:
    # Binance: ccxt's total is the margin balance (wallet + unrealized PnL); the cross
    # wallet is crossWalletBalance, the whole wallet adds the isolated wallets.
    binance = run(sim, "binanceusdm", lambda c: c.fetch_balance())
    asset = binance["info"]["assets"][0]
    assert float(asset["crossWalletBalance"]) == pytest.approx(12000.0)
    assert float(asset["walletBalance"]) == pytest.approx(12000.0 + 1500.0)
    upl = 1.2 * (91000 - 88500) + 15 * (3250 - 3120) + 100 * (140 - 150)
    assert binance["USDT"]["total"] == pytest.approx(13500.0 + upl)
    # Bybit: ccxt's total is the coin's walletBalance (cross wallet + isolated margin).
    bybit = run(sim, "bybit", lambda c: c.fetch_balance())
    assert bybit["USDT"]["total"] == pytest.approx(10000.0 + 2670.0)
    assert float(bybit["info"]["result"]["list"][0]["coin"][0]["equity"]) == pytest.approx(12670.0)
    # OKX: ccxt's total is the equity `eq`; cashBal is the wallet with isolated margins.
    okx = run(sim, "okx", lambda c: c.fetch_balance())
    detail = okx["info"]["data"][0]["details"][0]
    assert float(detail["cashBal"]) == pytest.approx(2500.0 + 900.0)
    assert okx["USDT"]["total"] == pytest.approx(3400.0 - 1800.0 - 200.0)


@pytest.mark.parametrize("venue", VENUES)
def test_fetch_positions_matches_the_scenario_and_the_engine(sim: ExchangeSimulator, venue: str) -> None:
    positions = run(sim, venue, lambda c: c.fetch_positions())
    markets = {m["symbol"]: m for m in SCENARIO["markets"][venue]}
    expected = account_doc(venue)["positions"]
    by_key = {(p["symbol"], p["side"]): p for p in positions}
    assert len(positions) == len(expected)
    liquidations = (
        engine_liquidations(venue)
        if venue != "okx"
        else {
            # OKX, by hand: cross long, W + size (P - entry) = size P (mmr + fee);
            # isolated short, P = (entry + margin / size) / (1 + mmr + fee).
            ("ETH/USDT:USDT", "long"): (10 * 3300 - 2500) / (10 * (1 - 0.004 - 0.0005)),
            ("BTC/USDT:USDT", "short"): (90000 + 900 / 0.2) / (1 + 0.004 + 0.0005),
        }
    )
    for spec in expected:
        got = by_key[(spec["symbol"], spec["side"])]
        market = markets[spec["symbol"]]
        assert got["contracts"] == pytest.approx(spec["contracts"])  # OKX: in contracts
        assert got["contracts"] * got["contractSize"] == pytest.approx(spec["contracts"] * market["contract_size"])
        assert got["entryPrice"] == pytest.approx(spec["entry_price"])
        assert got["markPrice"] == pytest.approx(market["mark_price"])
        assert got["liquidationPrice"] == pytest.approx(liquidations[(spec["symbol"], spec["side"])], rel=1e-6)
        if venue == "bybit":  # ccxt leaves marginMode None on Bybit; tradeMode says it
            assert got["marginMode"] is None
            assert got["info"]["tradeMode"] == (1 if spec["margin_mode"] == "isolated" else 0)
        else:
            assert got["marginMode"] == spec["margin_mode"]


def test_hand_checked_liquidation_prices(sim: ExchangeSimulator) -> None:
    bybit = run(sim, "bybit", lambda c: c.fetch_positions())
    btc = next(p for p in bybit if p["symbol"] == "BTC/USDT:USDT")
    # Bybit isolated since 2 Sep 2025 ("The New Margin Calculation", margin/rules.py):
    # MM = size x P x MMR + fee to close, the fee = size x entry x (1 - 1/10) x 0.055 %;
    # margin + size x (P - entry) = MM gives P = (size x entry - margin + fee) / (size x (1 - MMR)).
    fee_to_close = 0.3 * 89000 * (1 - 1 / 10) * 0.00055
    assert btc["liquidationPrice"] == pytest.approx((0.3 * 89000 - 2670 + fee_to_close) / (0.3 * (1 - 0.005)))


def test_account_without_positions(sim: ExchangeSimulator) -> None:
    positions = run(sim, "binanceusdm", lambda c: c.fetch_positions(), creds=WITHDRAW_KEY)
    assert positions == []


# --- tiers and key permissions -------------------------------------------------------


def test_binance_leverage_brackets(sim: ExchangeSimulator) -> None:
    tiers = run(sim, "binanceusdm", lambda c: c.fetch_leverage_tiers(["BTC/USDT:USDT"]))["BTC/USDT:USDT"]
    assert [t["minNotional"] for t in tiers] == [0, 50000, 250000, 3000000, 20000000]
    assert [t["maintenanceMarginRate"] for t in tiers] == [0.004, 0.005, 0.01, 0.025, 0.05]
    assert tiers[0]["maxLeverage"] == 125
    assert tiers[1]["info"]["cum"] == pytest.approx(50000 * (0.005 - 0.004))  # only in info


def test_bybit_risk_limits_are_paginated(sim: ExchangeSimulator) -> None:
    before = len(sim.requests)
    tiers = run(sim, "bybit", lambda c: c.fetch_leverage_tiers())
    assert set(tiers) == {"BTC/USDT:USDT", "ETH/USDT:USDT"}
    assert len(tiers["BTC/USDT:USDT"]) == 6 and len(tiers["ETH/USDT:USDT"]) == 6
    assert [t["maintenanceMarginRate"] for t in tiers["BTC/USDT:USDT"]][:2] == [0.005, 0.01]
    assert tiers["BTC/USDT:USDT"][1]["minNotional"] == 2000000
    pages = [r for r in sim.requests[before:] if r[2] == "/v5/market/risk-limit"]
    assert len(pages) == 2  # 12 rows, 10 per page: ccxt followed nextPageCursor


def test_okx_position_tiers_are_in_contracts(sim: ExchangeSimulator) -> None:
    tiers = run(sim, "okx", lambda c: c.fetch_market_leverage_tiers("BTC/USDT:USDT"))
    # ccxt names them minNotional/maxNotional, but OKX bounds are contracts (0.01 BTC each).
    assert [t["minNotional"] for t in tiers] == [0, 500, 1000]
    assert [t["maxNotional"] for t in tiers][:2] == [500, 1000]
    assert [t["maintenanceMarginRate"] for t in tiers] == [0.004, 0.005, 0.01]
    assert sim.requests[-1] == ("okx", "GET", "/api/v5/public/position-tiers")


def test_key_permission_endpoints(sim: ExchangeSimulator) -> None:
    read_only = run(sim, "binanceusdm", lambda c: c.sapi_get_account_apirestrictions())
    assert read_only["enableWithdrawals"] is False and read_only["enableFutures"] is False
    withdraw = run(sim, "binanceusdm", lambda c: c.sapi_get_account_apirestrictions(), creds=WITHDRAW_KEY)
    assert withdraw["enableWithdrawals"] is True and withdraw["enableFutures"] is True
    assert sim.requests[-1] == ("binanceusdm", "GET", "/sapi/v1/account/apiRestrictions")

    bybit = run(sim, "bybit", lambda c: c.private_get_v5_user_query_api())["result"]
    assert bybit["readOnly"] == 0 and bybit["permissions"]["ContractTrade"]
    assert "Withdraw" not in bybit["permissions"]["Wallet"]

    okx = run(sim, "okx", lambda c: c.private_get_account_config())["data"][0]
    assert okx["perm"] == "read_only,withdraw"


# --- authentication ------------------------------------------------------------------


@pytest.mark.parametrize("venue", VENUES)
def test_wrong_secret_or_key_is_an_authentication_error(sim: ExchangeSimulator, venue: str) -> None:
    key, secret, passphrase = CREDS[venue]
    with pytest.raises(ccxt.AuthenticationError):
        run(sim, venue, lambda c: c.fetch_balance(), creds=(key, secret + "-wrong", passphrase))
    with pytest.raises(ccxt.AuthenticationError):
        run(sim, venue, lambda c: c.fetch_balance(), creds=("unknown-key", secret, passphrase))


def test_wrong_okx_passphrase_is_an_authentication_error(sim: ExchangeSimulator) -> None:
    with pytest.raises(ccxt.AuthenticationError, match="50105"):
        run(sim, "okx", lambda c: c.fetch_balance(), creds=(*CREDS["okx"][:2], "wrong"))


@pytest.mark.parametrize("venue", VENUES)
def test_stale_timestamp_is_invalid_nonce(sim: ExchangeSimulator, venue: str) -> None:
    async def fetch(client: Any) -> Any:
        await client.load_markets()
        sim.add_fault(venue, POSITIONS_PATH[venue], "stale_timestamp", count=1)
        return await client.fetch_positions()

    with pytest.raises(ccxt.InvalidNonce):
        run(sim, venue, fetch)
    # A real clock skew (the client two minutes behind) is refused the same way.
    with pytest.raises(ccxt.InvalidNonce):
        run(sim, venue, lambda c: c.fetch_balance(), timeDifference=120_000)


# --- faults --------------------------------------------------------------------------


def fault_then_positions(sim: ExchangeSimulator, venue: str, kind: str, **fault: Any) -> Callable:
    async def action(client: Any) -> Any:
        await client.load_markets()
        sim.add_fault(venue, POSITIONS_PATH[venue], kind, **fault)
        return await client.fetch_positions()

    return action


@pytest.mark.parametrize("venue", VENUES)
@pytest.mark.parametrize("kind", ["http429", "http429_retry_after"])
def test_http429_is_rate_limited(sim: ExchangeSimulator, venue: str, kind: str) -> None:
    async def action(client: Any) -> Any:
        try:
            await fault_then_positions(sim, venue, kind, count=1, seconds=3)(client)
        except (ccxt.RateLimitExceeded, ccxt.DDoSProtection):
            # ccxt does not act on Retry-After; the header is kept with the last response.
            return client.last_response_headers.get("Retry-After")
        pytest.fail("no rate-limit error")

    assert run(sim, venue, action) == ("3" if kind == "http429_retry_after" else None)


def test_retry_after_header(sim: ExchangeSimulator) -> None:
    async def fetch() -> tuple[int, str | None, Any]:
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"{sim.base_url}/www.okx.com/api/v5/public/time") as resp,
        ):
            return resp.status, resp.headers.get("Retry-After"), await resp.json()

    sim.add_fault("okx", "/api/v5/public/time", "http429_retry_after", count=1, seconds=7)
    assert asyncio.run(fetch()) == (429, "7", {"code": "50011", "data": [], "msg": "Too Many Requests"})
    sim.add_fault("okx", "/api/v5/public/time", "http429", count=1)
    assert asyncio.run(fetch())[1] is None
    assert asyncio.run(fetch())[0] == 200  # the faults cleared themselves


@pytest.mark.parametrize("venue", VENUES)
@pytest.mark.parametrize("kind", ["http500", "http502", "http503"])
def test_server_errors_are_exchange_not_available(sim: ExchangeSimulator, venue: str, kind: str) -> None:
    with pytest.raises(ccxt.ExchangeNotAvailable):
        run(sim, venue, fault_then_positions(sim, venue, kind, count=1))


@pytest.mark.parametrize(
    ("venue", "error"),
    [
        ("binanceusdm", ccxt.OnMaintenance),
        ("okx", ccxt.OnMaintenance),
        ("bybit", ccxt.ExchangeError),  # ccxt maps Bybit's 10016 to a plain ExchangeError
    ],
)
def test_maintenance(sim: ExchangeSimulator, venue: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        run(sim, venue, fault_then_positions(sim, venue, "maintenance", count=1))


@pytest.mark.parametrize("venue", VENUES)
def test_malformed_json_raises_with_a_strict_client_and_never_hangs(sim: ExchangeSimulator, venue: str) -> None:
    started = time.monotonic()
    # Plain ccxt swallows it: fetch_positions answers [] (documented trap).
    assert run(sim, venue, fault_then_positions(sim, venue, "malformed_json", count=1)) == []

    async def strict(client: Any) -> Any:
        reject_unparseable_json(client)
        return await fault_then_positions(sim, venue, "malformed_json", count=1)(client)

    with pytest.raises(ccxt.BadResponse):
        run(sim, venue, strict)
    assert time.monotonic() - started < 10


@pytest.mark.parametrize("venue", VENUES)
def test_delay_beyond_the_client_timeout_is_request_timeout(sim: ExchangeSimulator, venue: str) -> None:
    with pytest.raises(ccxt.RequestTimeout):
        run(sim, venue, fault_then_positions(sim, venue, "delay", count=1, seconds=2), timeout_ms=400)
    positions = run(sim, venue, fault_then_positions(sim, venue, "delay", count=1, seconds=0.1), timeout_ms=2000)
    assert len(positions) == 2 if venue != "binanceusdm" else 3


def test_timeout_fault_is_request_timeout(sim: ExchangeSimulator) -> None:
    with pytest.raises(ccxt.RequestTimeout):
        run(sim, "okx", fault_then_positions(sim, "okx", "timeout"), timeout_ms=300)


def test_connection_reset(sim: ExchangeSimulator) -> None:
    with pytest.raises(ccxt.ExchangeNotAvailable):
        run(sim, "bybit", fault_then_positions(sim, "bybit", "connection_reset"))
    sim.clear_faults()
    # aiohttp retries an idempotent request once on a reused connection: a single reset
    # is invisible to ccxt, the log shows the two attempts.
    before = len(sim.requests)
    assert len(run(sim, "bybit", fault_then_positions(sim, "bybit", "connection_reset", count=1))) == 2
    assert [r[2] for r in sim.requests[before:]].count("/v5/position/list") == 2


def test_missing_and_wrongly_typed_fields(sim: ExchangeSimulator) -> None:
    positions = run(sim, "okx", fault_then_positions(sim, "okx", "missing_field", count=1))
    assert all(p["markPrice"] is None and p["info"].get("markPx") is None for p in positions)
    # ccxt fills an isolated position's liquidation price itself when the venue omits it.
    positions = run(
        sim, "binanceusdm", fault_then_positions(sim, "binanceusdm", "missing_field", count=1, field="liquidationPrice")
    )
    by_mode = {p["marginMode"]: p for p in positions}
    assert "liquidationPrice" not in by_mode["isolated"]["info"]
    assert by_mode["isolated"]["liquidationPrice"] is not None
    assert by_mode["cross"]["liquidationPrice"] is None

    positions = run(sim, "bybit", fault_then_positions(sim, "bybit", "wrong_types", count=1, field="markPrice"))
    assert all(p["markPrice"] is None for p in positions)
    positions = run(sim, "bybit", fault_then_positions(sim, "bybit", "wrong_types", count=1, field="size"))
    assert all(p["info"]["size"].startswith("-") and p["contracts"] > 0 for p in positions)  # ccxt takes abs
    # A non-numeric string escapes ccxt as a bare ValueError, not a ccxt error.
    with pytest.raises(ValueError) as caught:
        run(sim, "okx", fault_then_positions(sim, "okx", "wrong_types", count=1))
    assert not isinstance(caught.value, ccxt.BaseError)


# --- state control -------------------------------------------------------------------


def test_set_mark_changes_what_ccxt_sees(sim: ExchangeSimulator) -> None:
    sim.set_mark("binanceusdm", "BTC/USDT:USDT", 95000.0)
    positions = {p["symbol"]: p for p in run(sim, "binanceusdm", lambda c: c.fetch_positions())}
    assert positions["BTC/USDT:USDT"]["markPrice"] == 95000.0
    assert positions["BTC/USDT:USDT"]["unrealizedPnl"] == pytest.approx(1.2 * (95000 - 88500))
    # The cross pool gained, so the short ETH leg's liquidation price moved up.
    eth = ("ETH/USDT:USDT", "short")
    expected = engine_liquidations("binanceusdm", {"BTC/USDT:USDT": 95000.0})[eth]
    assert positions["ETH/USDT:USDT"]["liquidationPrice"] == pytest.approx(expected, rel=1e-6)
    assert expected > engine_liquidations("binanceusdm")[eth]


def test_set_positions_replaces_them(sim: ExchangeSimulator) -> None:
    eth = [p for p in account_doc("bybit")["positions"] if p["symbol"] == "ETH/USDT:USDT"]
    sim.set_positions("bybit", "by-key", eth)
    positions = run(sim, "bybit", lambda c: c.fetch_positions())
    assert [p["symbol"] for p in positions] == ["ETH/USDT:USDT"]
    with pytest.raises(ScenarioError, match="contracts"):
        sim.set_positions("bybit", "by-key", [{**eth[0], "contracts": -1}])
    with pytest.raises(KeyError):
        sim.set_positions("bybit", "nobody", [])


def test_requests_log(sim: ExchangeSimulator) -> None:
    before = len(sim.requests)
    run(sim, "binanceusdm", lambda c: c.fetch_positions())
    assert sim.requests[before:] == [
        ("binanceusdm", "GET", "/fapi/v1/exchangeInfo"),
        ("binanceusdm", "GET", "/fapi/v1/leverageBracket"),
        ("binanceusdm", "GET", "/fapi/v3/positionRisk"),
    ]


def test_admin_endpoints_over_http(sim: ExchangeSimulator) -> None:
    async def admin() -> None:
        async with aiohttp.ClientSession(base_url=sim.base_url) as http:

            async def call(method: str, path: str, body: Any = None) -> tuple[int, Any]:
                async with http.request(method, path, json=body) as resp:
                    return resp.status, await resp.json()

            assert (await call("POST", "/_admin/mark", {"venue": "okx", "symbol": "ETH/USDT:USDT", "price": 3000.0}))[
                0
            ] == 200
            status, state = await call("GET", "/_admin/state")
            assert status == 200 and state["marks"]["okx"]["ETH/USDT:USDT"] == 3000.0
            okx = next(a for a in state["accounts"] if a["venue"] == "okx")
            assert "secret" not in json.dumps(state) and okx["cross"]["health"] < 1  # past liquidation
            fault = {"venue": "okx", "path": "/api/v5/public/time", "kind": "http503", "count": 1}
            assert (await call("POST", "/_admin/faults", fault))[0] == 200
            assert (await call("GET", "/_admin/faults"))[1]["faults"][0]["kind"] == "http503"
            async with http.get("/www.okx.com/api/v5/public/time") as resp:
                assert resp.status == 503
            async with http.get("/www.okx.com/api/v5/public/time") as resp:
                assert resp.status == 200
            await call("POST", "/_admin/faults", {**fault, "count": None})
            assert (await call("DELETE", "/_admin/faults"))[0] == 200
            assert (await call("GET", "/_admin/faults"))[1]["faults"] == []
            assert (await call("POST", "/_admin/positions", {"venue": "okx", "api_key": "ok-key", "positions": []}))[
                0
            ] == 200
            assert (await call("POST", "/_admin/mark", {"venue": "okx", "symbol": "XRP/USDT:USDT", "price": 1}))[
                0
            ] == 404
            assert (await call("POST", "/_admin/mark", {"venue": "okx", "symbol": "ETH/USDT:USDT", "price": -1}))[
                0
            ] == 400
            assert (await call("POST", "/_admin/faults", {**fault, "kind": "explode"}))[0] == 400
            assert (await call("POST", "/_admin/positions", {"venue": "okx", "api_key": "nobody", "positions": []}))[
                0
            ] == 404

    asyncio.run(admin())
    assert run(sim, "okx", lambda c: c.fetch_positions()) == []


def test_start_async_inside_a_running_loop() -> None:
    async def main() -> int:
        simulator = ExchangeSimulator(SCENARIO)
        url = await simulator.start_async()
        client = make_client("binanceusdm", url, "bn-key", "bn-secret")
        client.timeout_on_exit = 0
        try:
            return await client.fetch_time()
        finally:
            await client.close()
            await simulator.stop_async()

    assert abs(asyncio.run(main()) - time.time() * 1000) < 60_000


def test_random_walk_is_seeded_and_moves_marks() -> None:
    doc = copy.deepcopy(SCENARIO)
    doc["random_walk"] = {"enabled": True, "interval_seconds": 0.02, "volatility": 0.01}
    first, second = SimState(parse_scenario(doc)), SimState(parse_scenario(doc))
    for _ in range(5):
        first.step_random_walk()
        second.step_random_walk()
    assert first.marks("okx") == second.marks("okx") != {"BTC/USDT:USDT": 91000.0, "ETH/USDT:USDT": 3120.0}
    with ExchangeSimulator(doc) as _url:
        pass  # starts and stops the walk task cleanly
    simulator = ExchangeSimulator(doc)
    simulator.start()
    try:
        time.sleep(0.3)
        assert simulator.state.mark("bybit", "BTC/USDT:USDT") != 91000.0
    finally:
        simulator.stop()


@pytest.mark.parametrize(
    ("change", "path"),
    [
        (lambda d: d["markets"]["okx"][0].update(mark_price=-1), "markets.okx[0].mark_price"),
        (lambda d: d["markets"]["bybit"][0]["tiers"][1].update(max_notional=10), "markets.bybit[0].tiers[1]"),
        (lambda d: d["accounts"][0]["positions"][0].update(symbol="XRP/USDT:USDT"), "accounts[0].positions[0]"),
        (lambda d: d["accounts"][3].update(passphrase=None), "accounts[3].passphrase"),
        (lambda d: d["accounts"].append(copy.deepcopy(d["accounts"][0])), "accounts[4].api_key"),
        (lambda d: d["markets"].update(kraken=[]), "markets.kraken"),
    ],
)
def test_bad_scenarios_name_the_field(change: Callable[[dict], Any], path: str) -> None:
    doc = copy.deepcopy(SCENARIO)
    change(doc)
    with pytest.raises(ScenarioError) as caught:
        ExchangeSimulator(doc)
    assert caught.value.path.startswith(path)


def test_redirect_keeps_hostname_placeholders_and_binance_error_tables() -> None:
    import ccxt.async_support as ccxt_async

    async def main() -> tuple[dict, dict, dict, dict]:
        bybit = ccxt_async.bybit()
        binance = make_client("binanceusdm", "http://127.0.0.1:9/", "k", "s")
        try:
            redirect(bybit, "http://127.0.0.1:9")
            # Binance chooses its per-market error table by URL prefix: still the linear one.
            table = binance.get_exceptions_by_url("http://127.0.0.1:9/fapi.binance.com/fapi/v3/account", "exact")
            return bybit.urls["api"], binance.urls["api"], table, binance.exceptions["linear"]["exact"]
        finally:
            bybit.timeout_on_exit = binance.timeout_on_exit = 0
            await bybit.close()
            await binance.close()

    bybit_urls, binance_urls, table, linear = asyncio.run(main())
    assert bybit_urls["private"] == "http://127.0.0.1:9/api.{hostname}"
    assert binance_urls["fapiPrivateV3"] == "http://127.0.0.1:9/fapi.binance.com/fapi/v3"
    assert binance_urls["sapi"] == "http://127.0.0.1:9/api.binance.com/sapi/v1"
    assert table == linear and table
    assert logging.getLogger("ccxt").getEffectiveLevel() >= logging.INFO


def test_command_line_serves_until_sigterm() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "simulator", "--scenario", str(FIXTURE)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = proc.stdout.readline().strip()  # type: ignore[union-attr]
        assert url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(f"{url}/_admin/state", timeout=5) as resp:  # noqa: S310 - local
            assert json.load(resp)["marks"]["binanceusdm"]["BTC/USDT:USDT"] == 91000.0
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_command_line_refuses_a_bad_scenario(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({**SCENARIO, "accounts": "none"}))
    result = subprocess.run(
        [sys.executable, "-m", "simulator", "--scenario", str(bad)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2 and "accounts: must be a list" in result.stderr
