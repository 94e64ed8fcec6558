"""The simulator's websocket streams, through real ccxt.pro and a raw websocket client:
marks pushed at once, positions and balances as REST reports them, authentication, the
Binance listenKey, the stream faults and the admin API (docs/simulator.md, "Streams")."""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import ccxt
import pytest

from connectors.client import make_client
from connectors.stream_support import make_stream_client
from simulator import ExchangeSimulator
from tests.helpers import FIXTURES, SIM_KEYS

SCENARIO = json.loads((FIXTURES / "simulator" / "scenario.json").read_text())
KEYS = SIM_KEYS
VENUES = tuple(KEYS)
BTC = "BTC/USDT:USDT"
DEADLINE = 15.0  # seconds: generous, waited on conditions, never on time


def scenario(interval: float | None = None) -> dict[str, Any]:
    doc = copy.deepcopy(SCENARIO)
    doc["ohlcv_history_days"] = 1
    doc["streams"] = {"mark_interval_seconds": interval}
    return doc


def run(test: Callable[[ExchangeSimulator, str], Awaitable[None]], interval: float | None = None) -> None:
    """Run `test(sim, base_url)` with a simulator serving in the test's own loop."""

    async def main() -> None:
        sim = ExchangeSimulator(scenario(interval))
        base_url = await sim.start_async()
        try:
            await asyncio.wait_for(test(sim, base_url), timeout=60)
        finally:
            await sim.stop_async()

    asyncio.run(main())


async def watch_mark(client: Any, venue: str, symbol: str = BTC) -> dict[str, Any]:
    if venue == "bybit":  # Bybit has no mark-price stream: its tickers carry markPrice
        return await asyncio.wait_for(client.watch_ticker(symbol), DEADLINE)
    return await asyncio.wait_for(client.watch_mark_price(symbol), DEADLINE)


async def until(check: Callable[[], bool], what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DEADLINE
    while not check():
        if loop.time() > deadline:
            raise AssertionError(f"not within {DEADLINE} s: {what}")
        await asyncio.sleep(0.01)


@pytest.mark.parametrize("venue", VENUES)
def test_a_mark_set_through_the_admin_api_reaches_ccxt_at_once(venue: str) -> None:
    async def test(sim: ExchangeSimulator, base_url: str) -> None:
        client = make_stream_client(venue, base_url)
        try:
            first = await watch_mark(client, venue)
            assert first["markPrice"] == pytest.approx(sim.state.mark(venue, BTC))
            async with aiohttp.ClientSession() as http:
                answer = await http.post(
                    f"{base_url}/_admin/mark", json={"venue": venue, "symbol": BTC, "price": 77777.7}
                )
                assert answer.status == 200
            # every frame lands in ccxt's cache, whether or not a watch is pending
            await until(lambda: client.tickers[BTC]["markPrice"] == pytest.approx(77777.7), "the new mark")
            assert client.tickers[BTC]["timestamp"] > first["timestamp"]
        finally:
            await client.close()

    run(test)  # no periodic pushes: the second frame can only be the admin's move


def test_unchanged_marks_are_pushed_again_at_the_scenario_interval() -> None:
    async def test(sim: ExchangeSimulator, base_url: str) -> None:
        client = make_stream_client("okx", base_url)
        try:
            frames = [await watch_mark(client, "okx") for _ in range(3)]
            assert len({f["markPrice"] for f in frames}) == 1
            assert frames[0]["timestamp"] < frames[1]["timestamp"] < frames[2]["timestamp"]
        finally:
            await client.close()

    run(test, interval=0.05)


def private_ready(sim: ExchangeSimulator, venue: str, key: str) -> bool:
    wanted = {"binanceusdm": 1, "bybit": 2, "okx": 2}[venue]  # ACCOUNT_UPDATE; position, wallet; two args
    return any(
        c["api_key"] == key and c["channel"] == "private" and len(c["subscriptions"]) >= wanted
        for c in sim.stream_connections()
    )


def _positions(client_result: list[dict[str, Any]]) -> dict[str, float]:
    return {p["symbol"]: p["contracts"] for p in client_result}


@pytest.mark.parametrize("venue", VENUES)
def test_position_and_balance_changes_are_pushed_as_rest_reports_them(venue: str) -> None:
    async def test(sim: ExchangeSimulator, base_url: str) -> None:
        key = KEYS[venue]["apiKey"]
        held = next(a for a in SCENARIO["accounts"] if a["api_key"] == key)["positions"]
        stream = make_stream_client(venue, base_url, KEYS[venue])
        rest = make_client(venue, base_url, KEYS[venue]["apiKey"], KEYS[venue]["secret"], KEYS[venue].get("password"))
        try:
            positions = asyncio.ensure_future(asyncio.wait_for(stream.watch_positions(), DEADLINE))
            balance = asyncio.ensure_future(asyncio.wait_for(stream.watch_balance(), DEADLINE))
            if venue == "okx":  # OKX pushes a snapshot on subscribe
                assert set(_positions(await positions)) == {p["symbol"] for p in held}
                await balance
                positions = asyncio.ensure_future(asyncio.wait_for(stream.watch_positions(), DEADLINE))
                balance = asyncio.ensure_future(asyncio.wait_for(stream.watch_balance(), DEADLINE))
            # ccxt registers a watch before it dials or subscribes: once the server sees the
            # subscriptions, a push cannot be missed
            await until(lambda: private_ready(sim, venue, key), "the private subscriptions")
            kept = held[0]
            sim.set_positions(venue, key, [kept])
            pushed = _positions(await positions)
            assert pushed[kept["symbol"]] == pytest.approx(kept["contracts"])
            assert all(contracts == 0 for symbol, contracts in pushed.items() if symbol != kept["symbol"])
            assert {p["symbol"] for p in held} <= set(pushed)  # the closed ones are reported, at 0
            streamed = await balance
            polled = await rest.fetch_balance()
            # ccxt reads other fields from the stream than from REST: compare like with like
            if venue == "binanceusdm":  # streamed: the wallet; REST: the margin balance
                expected = float(polled["info"]["totalWalletBalance"])
            elif venue == "bybit":  # streamed: the coin's equity; REST: its wallet balance
                expected = float(polled["info"]["result"]["list"][0]["coin"][0]["equity"])
            else:
                expected = polled["USDT"]["total"]
            assert streamed["USDT"]["total"] == pytest.approx(expected)
        finally:
            await stream.close()
            await rest.close()

    run(test)


def test_binance_listen_key_is_the_same_on_every_post_and_unknown_keys_are_refused() -> None:
    async def test(sim: ExchangeSimulator, base_url: str) -> None:
        url = f"{base_url}/fapi.binance.com/fapi/v1/listenKey"
        async with aiohttp.ClientSession(headers={"X-MBX-APIKEY": "bn-key"}) as http:
            first = await (await http.post(url)).json()
            second = await (await http.post(url)).json()
            assert first["listenKey"] == second["listenKey"] and len(first["listenKey"]) == 64
            assert (await http.put(url)).status == 200
            assert (await http.delete(url)).status == 200
            refused = await http.put(url)
            assert refused.status == 400 and (await refused.json())["code"] == -1125
            ws_url = sim.ws_url + "/fstream.binance.com/private/ws?listenKey=" + first["listenKey"]
            with pytest.raises(aiohttp.WSServerHandshakeError) as info:
                await http.ws_connect(ws_url)
            assert info.value.status == 400
        async with aiohttp.ClientSession() as http:
            assert (await http.post(url)).status == 401

    run(test)


@pytest.mark.parametrize(
    ("venue", "bad", "message"),
    [("bybit", {"secret": "wrong"}, "error:USVC1111"), ("okx", {"password": "wrong"}, "60024")],
)
def test_a_refused_websocket_login_raises_authentication_error(venue: str, bad: dict[str, str], message: str) -> None:
    async def test(sim: ExchangeSimulator, base_url: str) -> None:
        keyless = make_stream_client(venue, base_url)
        stream = make_stream_client(venue, base_url, {**KEYS[venue], **bad})
        try:
            # no REST call with the bad credentials: the websocket login is what refuses them
            await keyless.load_markets()
            stream.set_markets(keyless.markets, keyless.currencies)
            stream.options.update({"enableUnifiedAccount": True, "enableUnifiedMargin": False})  # Bybit's REST check
            with pytest.raises(ccxt.AuthenticationError, match=message):
                await asyncio.wait_for(stream.watch_positions(), DEADLINE)
        finally:
            await stream.close()
            await keyless.close()

    run(test)


# --- faults, seen on the wire ------------------------------------------------------------------


async def binance_marks(http: aiohttp.ClientSession, sim: ExchangeSimulator) -> aiohttp.ClientWebSocketResponse:
    ws = await http.ws_connect(sim.ws_url + "/fstream.binance.com/market/ws/0")
    await ws.send_str(json.dumps({"method": "SUBSCRIBE", "params": ["btcusdt@markPrice@1s"], "id": 1}))
    assert json.loads((await ws.receive(DEADLINE)).data) == {"result": None, "id": 1}
    assert json.loads((await ws.receive(DEADLINE)).data)["e"] == "markPriceUpdate"  # the current mark
    return ws


async def frames(ws: aiohttp.ClientWebSocketResponse, n: int) -> list[dict[str, Any]]:
    return [json.loads((await ws.receive(DEADLINE)).data) for _ in range(n)]


def test_duplicate_and_out_of_order_faults_on_the_wire() -> None:
    async def test(sim: ExchangeSimulator, base_url: str) -> None:
        async with aiohttp.ClientSession() as http:
            ws = await binance_marks(http, sim)
            sim.add_stream_fault("binanceusdm", "duplicate", count=1)
            sim.set_mark("binanceusdm", BTC, 90000.0)
            first, again = await frames(ws, 2)
            assert first == again and first["p"] == "90000.00000000"
            sim.add_stream_fault("binanceusdm", "out_of_order", count=1)
            sim.set_mark("binanceusdm", BTC, 80000.0)
            sim.set_mark("binanceusdm", BTC, 85000.0)
            newer, older = await frames(ws, 2)
            assert (newer["p"], older["p"]) == ("85000.00000000", "80000.00000000")
            assert newer["E"] > older["E"]
            assert sim.stream_faults.listing() == []  # both used up
            await ws.close()

    run(test)


def test_a_silent_stream_sends_nothing_until_cleared_and_drop_cuts_the_connection() -> None:
    async def test(sim: ExchangeSimulator, base_url: str) -> None:
        async with aiohttp.ClientSession() as http:
            ws = await binance_marks(http, sim)
            sim.add_stream_fault("binanceusdm", "silent", "public")
            sim.set_mark("binanceusdm", BTC, 90000.0)
            await ws.ping()
            with pytest.raises(TimeoutError):  # neither the mark nor a pong
                await ws.receive(0.5)
            sim.clear_faults()
            sim.set_mark("binanceusdm", BTC, 91000.0)
            assert (await frames(ws, 1))[0]["p"] == "91000.00000000"
            assert sim.drop_streams("binanceusdm") == 1
            closed = await ws.receive(DEADLINE)
            assert closed.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR, aiohttp.WSMsgType.CLOSE)

    run(test)


@pytest.mark.parametrize("venue", VENUES)
def test_ccxt_resubscribes_after_a_drop(venue: str) -> None:
    async def test(sim: ExchangeSimulator, base_url: str) -> None:
        client = make_stream_client(venue, base_url)
        try:
            await watch_mark(client, venue)
            pending = asyncio.ensure_future(watch_mark(client, venue))
            await asyncio.sleep(0)
            assert sim.drop_streams(venue) == 1
            with pytest.raises(ccxt.NetworkError):
                await pending
            sim.set_mark(venue, BTC, 70000.0)
            assert (await watch_mark(client, venue))["markPrice"] == pytest.approx(70000.0)
        finally:
            await client.close()

    run(test)


def test_admin_api_for_streams_and_the_mark_load() -> None:
    async def test(sim: ExchangeSimulator, base_url: str) -> None:
        client = make_stream_client("bybit", base_url)
        try:
            await watch_mark(client, "bybit")
            async with aiohttp.ClientSession() as http:
                listing = await (await http.get(f"{base_url}/_admin/streams")).json()
                assert [(c["venue"], c["channel"], c["subscriptions"]) for c in listing["connections"]] == [
                    ("bybit", "public", ["tickers.BTCUSDT"])
                ]
                bad = await http.post(f"{base_url}/_admin/streams/faults", json={"venue": "bybit", "kind": "nope"})
                assert bad.status == 400 and "unknown stream fault kind" in (await bad.json())["error"]
                added = await http.post(
                    f"{base_url}/_admin/streams/faults", json={"venue": "bybit", "kind": "duplicate", "count": 2}
                )
                assert (await added.json())["fault"] == {
                    "venue": "bybit",
                    "kind": "duplicate",
                    "channel": "*",
                    "count": 2,
                }
                assert (await http.delete(f"{base_url}/_admin/faults")).status == 200
                assert sim.stream_faults.listing() == []
                started = await http.post(
                    f"{base_url}/_admin/mark_load", json={"rate": 500, "amplitude": 0.001, "venues": ["bybit"]}
                )
                assert started.status == 200
                anchor = sim.state.mark("bybit", BTC)
                seen = [(await watch_mark(client, "bybit"))["markPrice"] for _ in range(20)]
                assert all(abs(p / anchor - 1) <= 0.0011 for p in seen) and len(set(seen)) > 1
                await http.post(f"{base_url}/_admin/mark", json={"venue": "bybit", "symbol": BTC, "price": 60000.0})
                await until(lambda: abs(sim.state.mark("bybit", BTC) / 60000 - 1) <= 0.0011, "the new anchor")
                stopped = await (await http.delete(f"{base_url}/_admin/mark_load")).json()
                assert stopped["updates"] >= 20 and stopped["running"] is False
                refused = await http.post(f"{base_url}/_admin/mark_load", json={"rate": -1})
                assert refused.status == 400
        finally:
            await client.close()

    run(test)


def test_a_bad_stream_interval_is_refused_naming_the_field() -> None:
    from simulator.scenario import ScenarioError, parse_scenario

    with pytest.raises(ScenarioError, match=r"streams\.mark_interval_seconds: must be > 0"):
        parse_scenario({**scenario(), "streams": {"mark_interval_seconds": 0}})
    assert (
        parse_scenario({**scenario(), "streams": {"mark_interval_seconds": None}}).streams.mark_interval_seconds is None
    )
    assert parse_scenario(SCENARIO).streams.mark_interval_seconds == 1.0


def test_drop_through_the_admin_api() -> None:
    async def test(sim: ExchangeSimulator, base_url: str) -> None:
        client = make_stream_client("okx", base_url)
        try:
            await watch_mark(client, "okx")
            async with aiohttp.ClientSession() as http:
                answer = await http.post(
                    f"{base_url}/_admin/streams/faults", json={"venue": "okx", "kind": "drop", "channel": "public"}
                )
                assert (await answer.json())["dropped"] == 1
            await until(lambda: sim.stream_connections() == [], "the connection gone")
        finally:
            await client.close()

    run(test)
