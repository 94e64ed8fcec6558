"""The simulator's market data and liquidations under real ccxt (async_support): hourly
OHLCV, funding rates, order books, and positions liquidated below health 1, on Binance
USD-M, Bybit v5 and OKX v5 (docs/simulator.md, "Market data" and "Liquidations")."""

from __future__ import annotations

import asyncio
import copy
import itertools
import json
import math
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import ccxt
import pytest

from connectors.client import make_client
from simulator import ExchangeSimulator, ScenarioError, load_scenario
from simulator.scenario import parse_scenario
from simulator.state import SimState
from tests.helpers import running_simulator

FIXTURE = Path(__file__).parent / "fixtures" / "simulator" / "market_scenario.json"
SCENARIO = json.loads(FIXTURE.read_text())
VENUES = ("binanceusdm", "bybit", "okx")
CREDS = {
    "binanceusdm": ("bn-mkt-key", "bn-mkt-secret", None),
    "bybit": ("by-mkt-key", "by-mkt-secret", None),
    "okx": ("ok-mkt-key", "ok-mkt-secret", "ok-mkt-pass"),
}
HOUR = 3_600_000
BTC, ETH, SOL = "BTC/USDT:USDT", "ETH/USDT:USDT", "SOL/USDT:USDT"
PATHS = {  # venue -> what -> the path ccxt calls
    "binanceusdm": {
        "ohlcv": "/fapi/v1/klines",
        "funding": "/fapi/v1/premiumIndex",
        "book": "/fapi/v1/depth",
        "liquidations": "/fapi/v1/forceOrders",
    },
    "bybit": {
        "ohlcv": "/v5/market/kline",
        "funding": "/v5/market/tickers",
        "book": "/v5/market/orderbook",
        "liquidations": "/v5/execution/list",
    },
    "okx": {
        "ohlcv": "/api/v5/market/candles",
        "funding": "/api/v5/public/funding-rate",
        "book": "/api/v5/market/books",
        "liquidations": "/api/v5/trade/fills-history",
    },
}


@pytest.fixture(scope="module")
def sim() -> Iterator[ExchangeSimulator]:
    with running_simulator(load_scenario(FIXTURE)) as simulator:
        yield simulator


pytestmark = pytest.mark.usefixtures("fresh_sim")


def run(sim: ExchangeSimulator, venue: str, action: Callable[[Any], Awaitable[Any]]) -> Any:
    """`action(client)` with a fresh ccxt client for the venue's fixture account."""

    async def main() -> Any:
        client = make_client(venue, sim.base_url, *CREDS[venue])
        client.timeout = 3000
        client.enableRateLimit = False
        client.timeout_on_exit = 0
        try:
            return await action(client)
        finally:
            await client.close()

    return asyncio.run(main())


def market_doc(venue: str, symbol: str) -> dict[str, Any]:
    return next(m for m in SCENARIO["markets"][venue] if m["symbol"] == symbol)


def admin(sim: ExchangeSimulator, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    async def call() -> tuple[int, Any]:
        async with aiohttp.ClientSession(base_url=sim.base_url) as http, http.request(method, path, json=body) as resp:
            return resp.status, await resp.json()

    return asyncio.run(call())


def log_returns(candles: list[list[float]]) -> dict[int, float]:
    """Open time -> log return of the close over the previous candle's close."""
    return {b[0]: math.log(b[4] / a[4]) for a, b in itertools.pairwise(candles)}


# --- OHLCV -----------------------------------------------------------------------------


def check_candles(candles: list[list[float]]) -> None:
    for previous, candle in itertools.pairwise(candles):
        assert candle[0] - previous[0] == HOUR
        assert candle[1] == pytest.approx(previous[4])  # opens at the previous close
    for ts, o, h, low, c, volume in candles:
        assert ts % HOUR == 0 and low <= min(o, c) <= max(o, c) <= h and volume > 0


@pytest.mark.parametrize("venue", VENUES)
def test_ohlcv_is_hourly_and_ends_at_the_mark(sim: ExchangeSimulator, venue: str) -> None:
    async def action(client: Any) -> tuple[int, list, list, int, list]:
        before = int(time.time() * 1000)
        latest = await client.fetch_ohlcv(ETH, "1h", limit=50)
        since = before - before % HOUR - 48 * HOUR
        window = await client.fetch_ohlcv(ETH, "1h", since, 10)
        sim.set_mark(venue, ETH, 3187.5)
        moved = await client.fetch_ohlcv(ETH, "1h", limit=3)
        return before, latest, window, since, moved

    before, latest, window, since, moved = run(sim, venue, action)
    assert len(latest) == 50
    check_candles(latest)
    assert latest[-1][0] in (before - before % HOUR, before - before % HOUR + HOUR)  # the running hour
    assert latest[-1][4] == 3120.0  # the scenario mark
    assert len(window) == 10 and window[0][0] == since
    check_candles(window)
    # The mark moved: the running candle closes at it and its high reaches it.
    assert moved[-1][4] == 3187.5 and moved[-1][2] >= 3187.5
    closed = {c[0]: c for c in latest[:-1]}
    assert all(closed[c[0]] == c for c in moved if c[0] in closed)  # closed candles do not change


@pytest.mark.parametrize("venue", VENUES)
def test_high_beta_returns_regress_on_btc_with_the_configured_beta(sim: ExchangeSimulator, venue: str) -> None:
    async def action(client: Any) -> tuple[list, list]:
        if venue == "okx":  # 300 candles a request: let ccxt paginate (history and recent)
            since = int(time.time() * 1000) - 30 * 24 * HOUR
            options = {"paginate": True}
            return (
                await client.fetch_ohlcv(BTC, "1h", since, None, options),
                await client.fetch_ohlcv(SOL, "1h", since, None, options),
            )
        return await client.fetch_ohlcv(BTC, "1h", limit=720), await client.fetch_ohlcv(SOL, "1h", limit=720)

    btc, sol = run(sim, venue, action)
    assert len(btc) >= 700 and len(sol) >= 700
    check_candles(btc)
    check_candles(sol)
    rb, rs = log_returns(btc), log_returns(sol)
    common = sorted(set(rb) & set(rs))
    x, y = [rb[t] for t in common], [rs[t] for t in common]
    mx, my = sum(x) / len(x), sum(y) / len(y)
    cov = sum((a - mx) * (b - my) for a, b in zip(x, y, strict=True))
    var = sum((a - mx) ** 2 for a in x)
    market = market_doc(venue, SOL)
    assert cov / var == pytest.approx(market["beta"], abs=0.25)
    sigma = math.sqrt(sum((b - my) ** 2 for b in y) / (len(y) - 1))
    assert sigma == pytest.approx(market["hourly_volatility"], rel=0.15)
    assert math.sqrt(var / (len(x) - 1)) == pytest.approx(market_doc(venue, BTC)["hourly_volatility"], rel=0.15)


def test_ohlcv_is_deterministic_from_the_seed() -> None:
    first, second = SimState(parse_scenario(SCENARIO)), SimState(parse_scenario(SCENARIO))
    now = first.started_ms
    assert first.candles.hourly("okx", SOL, now)[:-1] == second.candles.hourly("okx", SOL, now)[:-1]
    other = SimState(parse_scenario({**SCENARIO, "seed": 24}))
    assert other.candles.hourly("okx", SOL, now)[0] != first.candles.hourly("okx", SOL, now)[0]
    assert len(first.candles.hourly("okx", SOL, now)) >= 30 * 24 + 1


def test_okx_history_candles_and_venue_pagination_params(sim: ExchangeSimulator) -> None:
    now = int(time.time() * 1000)
    since = now - now % HOUR - 700 * HOUR
    before = len(sim.requests)
    old = run(sim, "okx", lambda c: c.fetch_ohlcv(BTC, "1h", since, 24, {"type": "HistoryCandles"}))
    assert [c[0] for c in old] == [since + i * HOUR for i in range(24)]
    assert ("okx", "GET", "/api/v5/market/history-candles") in sim.requests[before:]
    # Bybit returns the candle that holds `start`: ccxt rounds a mid-hour since up.
    bybit = run(sim, "bybit", lambda c: c.fetch_ohlcv(BTC, "1h", since + 1, 3))
    assert [c[0] for c in bybit] == [since + HOUR, since + 2 * HOUR, since + 3 * HOUR]
    # Aggregated bars: 4 h on UTC boundaries, volumes summed.
    four = run(sim, "binanceusdm", lambda c: c.fetch_ohlcv(BTC, "4h", limit=5))
    assert all(c[0] % (4 * HOUR) == 0 for c in four) and four[-1][4] == 91000.0
    with pytest.raises(ccxt.BadRequest):  # -1120: an interval the simulator does not serve
        run(sim, "binanceusdm", lambda c: c.fetch_ohlcv(BTC, "1m", limit=5))


# --- funding -----------------------------------------------------------------------------


def next_funding(now_ms: int) -> int:
    return (now_ms // (8 * HOUR) + 1) * 8 * HOUR


@pytest.mark.parametrize("venue", VENUES)
def test_funding_rate_as_configured_and_changed(sim: ExchangeSimulator, venue: str) -> None:
    now = int(time.time() * 1000)
    rate = run(sim, venue, lambda c: c.fetch_funding_rate(ETH))
    assert rate["symbol"] == ETH and rate["fundingRate"] == pytest.approx(0.00025)
    assert rate["fundingTimestamp"] in (next_funding(now), next_funding(now) + 8 * HOUR)
    if venue == "okx":  # OKX also predicts the next interval's rate
        assert rate["nextFundingRate"] == pytest.approx(0.00025)
        assert rate["nextFundingTimestamp"] == rate["fundingTimestamp"] + 8 * HOUR
        assert rate["interval"] == "8h"
    else:
        assert rate["nextFundingRate"] is None and rate["markPrice"] == 3120.0

    assert admin(sim, "POST", "/_admin/funding", {"venue": venue, "symbol": ETH, "rate": -0.0007})[0] == 200
    assert run(sim, venue, lambda c: c.fetch_funding_rate(ETH))["fundingRate"] == pytest.approx(-0.0007)
    sim.set_funding_rate(venue, SOL, 0.003)
    rates = run(sim, venue, lambda c: c.fetch_funding_rates())
    assert {s: r["fundingRate"] for s, r in rates.items()} == pytest.approx({BTC: 0.0001, ETH: -0.0007, SOL: 0.003})


def test_funding_admin_refusals(sim: ExchangeSimulator) -> None:
    assert admin(sim, "POST", "/_admin/funding", {"venue": "okx", "symbol": "XRP/USDT:USDT", "rate": 0})[0] == 404
    assert admin(sim, "POST", "/_admin/funding", {"venue": "okx", "symbol": ETH, "rate": 1.5})[0] == 400
    assert admin(sim, "GET", "/_admin/state")[1]["funding_rates"]["okx"][ETH] == 0.00025


# --- order books -------------------------------------------------------------------------


@pytest.mark.parametrize("venue", VENUES)
def test_order_book_around_the_mark_in_venue_units(sim: ExchangeSimulator, venue: str) -> None:
    market = market_doc(venue, ETH)
    book = run(sim, venue, lambda c: c.fetch_order_book(ETH, 20))
    bids, asks = book["bids"], book["asks"]
    assert len(bids) == len(asks) == 20
    assert [b[0] for b in bids] == sorted((b[0] for b in bids), reverse=True)
    assert [a[0] for a in asks] == sorted(a[0] for a in asks)
    assert bids[0][0] <= 3120.0 < asks[0][0] and asks[0][0] - bids[0][0] == pytest.approx(0.01)
    spacing = market["price_tick"] * market["book_level_ticks"]
    for side in (bids, asks):
        for level in side:
            assert level[0] / market["price_tick"] == pytest.approx(round(level[0] / market["price_tick"]))
        for a, b in itertools.pairwise(side):
            assert abs(a[0] - b[0]) == pytest.approx(spacing)
    # Contracts: 4 ETH a level on Binance and Bybit, 40 contracts of 0.1 ETH on OKX.
    assert [b[1] for b in bids[:3]] == pytest.approx([market["book_level_size"] * (1 + 0.2 * i) for i in range(3)])
    assert bids[0][1] * (market.get("contract_size") or 1) == pytest.approx(4.0)
    # The book follows the mark; the depth is book_depth_levels a side.
    sim.set_mark(venue, ETH, 3000.0)
    full = run(sim, venue, lambda c: c.fetch_order_book(ETH, 100))
    assert len(full["bids"]) == len(full["asks"]) == 60
    assert full["bids"][0][0] <= 3000.0 < full["asks"][0][0]


def test_binance_depth_limit_must_be_a_valid_value(sim: ExchangeSimulator) -> None:
    with pytest.raises(ccxt.BadRequest):  # -1100: 5, 10, 20, 50, 100, 500, 1000 only
        run(sim, "binanceusdm", lambda c: c.fetch_order_book(ETH, 25))


# --- liquidations ------------------------------------------------------------------------


def liquidations_via_ccxt(client: Any, symbol: str) -> Awaitable[list]:
    """fetch_my_liquidations where ccxt has it (Binance, Bybit), else fetch_my_trades (OKX)."""
    if client.has.get("fetchMyLiquidations"):
        return client.fetch_my_liquidations(symbol)
    return client.fetch_my_trades(symbol)


def test_which_venues_have_fetch_my_liquidations() -> None:
    # ccxt 4.5.90: Binance (forceOrders) and Bybit (execution list, BustTrade) have it; OKX
    # does not, its liquidations are fills (subType 104-107) and closed positions (type 3).
    assert ccxt.binanceusdm().has["fetchMyLiquidations"] is True
    assert ccxt.bybit().has["fetchMyLiquidations"] is True
    assert not ccxt.okx().has.get("fetchMyLiquidations")


@pytest.mark.parametrize("venue", VENUES)
def test_mark_move_below_health_one_liquidates(sim: ExchangeSimulator, venue: str) -> None:
    async def action(client: Any) -> tuple[dict, list, list, dict]:
        before = {p["symbol"]: p for p in await client.fetch_positions()}
        sim.set_mark(venue, ETH, 2600.0)  # below the cross ETH long's liquidation price
        after = await client.fetch_positions()
        return before, after, await liquidations_via_ccxt(client, ETH), await client.fetch_balance()

    before, after, records, balance = run(sim, venue, action)
    assert [p["symbol"] for p in after] == [BTC]  # the cross pool is gone, the isolated BTC stays
    assert len(records) == 1
    record = records[0]
    liquidation_price = before[ETH]["liquidationPrice"]
    assert 2600.0 < liquidation_price < 3120.0
    assert record["symbol"] == ETH
    assert record["price"] == pytest.approx(liquidation_price, abs=0.01)  # on the tick
    contracts = before[ETH]["contracts"]
    if venue == "okx":  # no fetchMyLiquidations: the liquidation fill, amount in contracts
        assert record["amount"] == contracts == 100 and record["side"] == "sell"
        assert record["info"]["subType"] == "107"  # liquidation sell (net mode)
        assert record["cost"] == pytest.approx(record["price"] * 100 * 0.1)
    else:
        assert record["contracts"] == contracts == 10
        assert record["quoteValue"] == pytest.approx(record["price"] * 10)
        assert (record.get("side") or record["info"]["side"].lower()) == "sell"
    # Settlement: the cross wallet is what is left of the pool's equity after the fee.
    state = admin(sim, "GET", "/_admin/state")[1]
    account = next(a for a in state["accounts"] if a["venue"] == venue)
    [stored] = account["liquidations"]
    fee_rate = 0.0125 if venue == "binanceusdm" else 0.005
    expected_wallet = max(0.0, stored["pool_equity"] - fee_rate * stored["price"] * 10)
    assert account["wallet_balance"] == pytest.approx(expected_wallet)
    assert stored["balance_after"] == pytest.approx(expected_wallet)
    assert stored["pool_equity"] == pytest.approx(5000 + 10 * (stored["price"] - 3120))
    assert not stored["forced"] and stored["mark_price"] == 2600.0
    # ... and each venue reports it: the wallet plus the isolated BTC margin (1000) left.
    if venue == "binanceusdm":
        assert float(balance["info"]["assets"][0]["crossWalletBalance"]) == pytest.approx(expected_wallet)
    elif venue == "bybit":
        assert balance["USDT"]["total"] == pytest.approx(expected_wallet + 1000)
    else:
        assert float(balance["info"]["data"][0]["details"][0]["cashBal"]) == pytest.approx(expected_wallet + 1000)


def test_isolated_liquidation_credits_what_is_left_to_the_wallet(sim: ExchangeSimulator) -> None:
    async def action(client: Any) -> tuple[float, list, list, dict]:
        liquidation_price = next(p for p in await client.fetch_positions() if p["symbol"] == BTC)["liquidationPrice"]
        sim.set_mark("bybit", BTC, 80000.0)
        return (
            liquidation_price,
            await client.fetch_positions(),
            await client.fetch_my_liquidations(BTC),
            await client.fetch_balance(),
        )

    liquidation_price, positions, records, balance = run(sim, "bybit", action)
    assert [p["symbol"] for p in positions] == [ETH]
    [record] = records
    assert record["price"] == pytest.approx(liquidation_price, abs=0.1)
    # Equity at the liquidation price = the maintenance margin: 0.5 % of the notional at that
    # price plus Bybit's fee to close, 0.1 x 91,000 x (1 - 1/10) x 0.055 % (margin/rules.py);
    # less the 0.5 % liquidation fee on the closed notional, the rest goes back to the wallet.
    fee_to_close = 0.1 * 91000 * (1 - 1 / 10) * 0.00055
    left = 0.005 * 0.1 * record["price"] + fee_to_close - 0.005 * 0.1 * record["price"]
    assert left > 0
    assert balance["USDT"]["total"] == pytest.approx(5000 + left, abs=0.01)  # Bybit: the wallet


def test_forced_liquidation_and_state(sim: ExchangeSimulator) -> None:
    status, body = admin(sim, "POST", "/_admin/liquidate", {"venue": "okx", "api_key": "ok-mkt-key", "symbol": BTC})
    assert status == 200 and body["liquidations"][0]["forced"] is True
    assert body["liquidations"][0]["price"] == 91000.0  # forced: at the mark

    async def action(client: Any) -> tuple[list, list, list]:
        return (
            await client.fetch_positions(),
            await client.fetch_my_trades(BTC),
            await client.fetch_positions_history([BTC]),
        )

    positions, trades, history = run(sim, "okx", action)
    assert [p["symbol"] for p in positions] == [ETH]
    assert [t["info"]["subType"] for t in trades] == ["107"] and trades[0]["amount"] == 10
    assert history[0]["info"]["type"] == "3"  # OKX: closed by liquidation
    # An isolated pool hands back its margin less the fee; with no move, no loss.
    state = admin(sim, "GET", "/_admin/state")[1]
    okx = next(a for a in state["accounts"] if a["venue"] == "okx")
    assert okx["wallet_balance"] == pytest.approx(5000 + 1000 - 0.005 * 0.1 * 91000)
    assert okx["liquidations"][0]["symbol"] == BTC and "api_key" not in okx["liquidations"][0]
    assert (
        admin(sim, "POST", "/_admin/liquidate", {"venue": "okx", "api_key": "ok-mkt-key", "symbol": BTC})[0] == 404
    )  # no position left
    assert admin(sim, "POST", "/_admin/liquidate", {"venue": "okx", "api_key": "nobody", "symbol": BTC})[0] == 404
    records = sim.liquidate("binanceusdm", "bn-mkt-key", ETH)
    assert [r.symbol for r in records] == [ETH] and sim.liquidations("binanceusdm", "bn-mkt-key") == records
    sim.reset()
    assert sim.liquidations("binanceusdm", "bn-mkt-key") == []


def test_binance_liquidation_fill_in_the_trade_history(sim: ExchangeSimulator) -> None:
    sim.set_mark("binanceusdm", ETH, 2600.0)
    [trade] = run(sim, "binanceusdm", lambda c: c.fetch_my_trades(ETH))
    assert trade["side"] == "sell" and trade["amount"] == 10 and trade["price"] == pytest.approx(2633.17)
    assert float(trade["info"]["realizedPnl"]) == pytest.approx(10 * (2633.17 - 3120))


def test_auto_liquidate_off_keeps_the_account_past_liquidation() -> None:
    state = SimState(parse_scenario({**SCENARIO, "auto_liquidate": False}))
    state.set_mark("okx", ETH, 2500.0)
    [account] = [a for a in state.accounts() if a.venue == "okx"]
    assert len(account.positions) == 2 and state.figures(account).cross_health < 1
    assert state.liquidations("okx", "ok-mkt-key") == []


def test_random_walk_liquidates_as_marks_move() -> None:
    doc = copy.deepcopy(SCENARIO)
    doc["random_walk"] = {"enabled": True, "volatility": 0.05}
    for account in doc["accounts"]:  # 100x: a few steps of 5 % take them out
        for p in account["positions"]:
            p["leverage"] = 100
            if p["margin_mode"] == "isolated":
                p["isolated_margin"] /= 10
    state = SimState(parse_scenario(doc))
    for _ in range(200):
        state.step_random_walk()
        if all(state.liquidations(v, CREDS[v][0]) for v in VENUES):
            break
    for venue in VENUES:
        records = state.liquidations(venue, CREDS[venue][0])
        assert records and all(r.price > 0 and r.balance_after >= 0 and not r.forced for r in records)
        [account] = [a for a in state.accounts() if a.venue == venue]
        liquidated = {(r.symbol, r.margin_mode) for r in records}
        assert not liquidated & {(p.symbol, p.margin_mode) for p in account.positions}


# --- faults ------------------------------------------------------------------------------


@pytest.mark.parametrize("venue", VENUES)
@pytest.mark.parametrize("what", ["ohlcv", "funding", "book", "liquidations"])
def test_new_paths_honour_faults(sim: ExchangeSimulator, venue: str, what: str) -> None:
    calls = {
        "ohlcv": lambda c: c.fetch_ohlcv(ETH, "1h", limit=5),
        "funding": lambda c: c.fetch_funding_rate(ETH),
        "book": lambda c: c.fetch_order_book(ETH, 5),
        "liquidations": lambda c: liquidations_via_ccxt(c, ETH),
    }

    async def action(client: Any) -> Any:
        await client.load_markets()
        sim.add_fault(venue, PATHS[venue][what], "http500", count=1)
        return await calls[what](client)

    with pytest.raises(ccxt.ExchangeNotAvailable):
        run(sim, venue, action)
    assert sim.requests[-1][2] == PATHS[venue][what]
    run(sim, venue, calls[what])  # the fault cleared itself


@pytest.mark.parametrize("venue", VENUES)
def test_rate_limit_and_missing_field_on_funding(sim: ExchangeSimulator, venue: str) -> None:
    sim.add_fault(venue, PATHS[venue]["funding"], "http429", count=1)
    with pytest.raises((ccxt.RateLimitExceeded, ccxt.DDoSProtection)):
        run(sim, venue, lambda c: c.fetch_funding_rate(ETH))
    sim.add_fault(venue, PATHS[venue]["funding"], "missing_field", count=1)
    assert run(sim, venue, lambda c: c.fetch_funding_rate(ETH))["fundingRate"] is None


# --- scenario checks ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "path"),
    [
        (lambda d: d["markets"]["okx"][0].update(beta=2), "markets.okx[0].beta"),
        (lambda d: d["markets"]["bybit"][2].update(hourly_volatility=0.005), "markets.bybit[2].hourly_volatility"),
        (lambda d: d["markets"]["binanceusdm"][1].update(funding_rate=1.5), "markets.binanceusdm[1].funding_rate"),
        (lambda d: d["markets"]["okx"][1].update(book_depth_levels=0), "markets.okx[1].book_depth_levels"),
        (lambda d: d["markets"]["okx"][1].update(book_level_size=-1), "markets.okx[1].book_level_size"),
        (lambda d: d.update(auto_liquidate="yes"), "auto_liquidate"),
        (lambda d: d.update(ohlcv_history_days=0), "ohlcv_history_days"),
    ],
)
def test_bad_market_data_fields_name_the_field(change: Callable[[dict], Any], path: str) -> None:
    doc = copy.deepcopy(SCENARIO)
    change(doc)
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(doc)
    assert caught.value.path == path
