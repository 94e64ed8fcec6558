"""The streams (connectors/streams.py) through real ccxt.pro against the simulator, on each
of the three venues: a crossing is reported once (duplicates do not double it, an older
mark arriving late neither crosses nor un-crosses), a dropped stream reconnects and
resubscribes, a silent one is flagged stale, position and balance changes are reported.
Every wait is on a condition with a generous deadline."""

from __future__ import annotations

import asyncio
import copy
import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest

from config.settings import AccountConfig, StreamingConfig
from connectors.account_stream import AccountStream
from connectors.errors import RetryPolicy
from connectors.streams import AccountEvent, Crossing, Streams, Watch
from simulator import ExchangeSimulator
from tests.helpers import FIXTURES, SIM_KEYS

SCENARIO = json.loads((FIXTURES / "simulator" / "scenario.json").read_text())
KEYS = SIM_KEYS
VENUES = tuple(KEYS)
BTC, ETH = "BTC/USDT:USDT", "ETH/USDT:USDT"
DEADLINE = 15.0


@dataclass
class Harness:
    sim: ExchangeSimulator
    streams: Streams
    venue: str
    account: str = "acct"
    crossings: list[Crossing] = field(default_factory=list)
    events: list[AccountEvent] = field(default_factory=list)

    @property
    def marks(self) -> Any:
        stream = self.streams.mark_stream(self.account)
        assert stream is not None
        return stream

    def latest(self, symbol: str = BTC) -> float | None:
        latest = self.streams.latest_mark(self.account, symbol)
        return None if latest is None else latest[1]

    def kinds(self) -> list[str]:
        return [e.kind for e in self.events]


async def until(check: Callable[[], bool], what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DEADLINE
    while not check():
        if loop.time() > deadline:
            raise AssertionError(f"not within {DEADLINE} s: {what}")
        await asyncio.sleep(0.01)


@asynccontextmanager
async def streaming(
    venue: str, *, interval: float | None = None, stale_after: float = 30.0, account_streams: bool = False
) -> AsyncIterator[Harness]:
    doc = copy.deepcopy(SCENARIO)
    doc["ohlcv_history_days"] = 1
    doc["streams"] = {"mark_interval_seconds": interval}
    sim = ExchangeSimulator(doc)
    base_url = await sim.start_async()
    settings = StreamingConfig(
        stale_after_seconds=stale_after,
        reconnect_base_seconds=0.05,
        reconnect_cap_seconds=0.2,
        account_streams=account_streams,
    )
    account = AccountConfig(name="acct", exchange=venue, base_url=base_url)
    harness = Harness(sim, None, venue)  # type: ignore[arg-type]
    harness.streams = Streams(
        settings, [account], {"acct": KEYS[venue]}, harness.crossings.append, harness.events.append
    )
    await harness.streams.start()
    try:
        yield harness
    finally:
        await harness.streams.stop()
        await sim.stop_async()


def run(coro: Any) -> None:
    asyncio.run(asyncio.wait_for(coro, timeout=90))


async def watching_btc(h: Harness, low: float, high: float) -> None:
    h.streams.update(h.account, [BTC], [Watch(h.account, BTC, low, high, "critical")])
    await until(lambda: h.latest() is not None, "the first streamed mark")


@pytest.mark.parametrize("venue", VENUES)
def test_a_crossing_is_reported_once_and_late_or_repeated_marks_change_nothing(venue: str) -> None:
    async def test() -> None:
        async with streaming(venue) as h:
            mark = h.sim.state.mark(venue, BTC)
            await watching_btc(h, mark * 0.9, mark * 1.1)
            assert h.latest() == pytest.approx(mark) and h.crossings == []

            # an older mark arriving late (below the band) is refused: no crossing
            h.sim.add_stream_fault(venue, "out_of_order", count=1)
            h.sim.set_mark(venue, BTC, mark * 0.8)  # held back by the fault...
            h.sim.set_mark(venue, BTC, mark * 1.05)  # ...and sent after this newer one
            await until(lambda: h.marks.state.dropped == 1, "the late mark refused")
            assert h.latest() == pytest.approx(mark * 1.05) and h.crossings == []

            # a crossing, sent twice: reported once
            h.sim.add_stream_fault(venue, "duplicate", count=1)
            h.sim.set_mark(venue, BTC, mark * 0.85)
            await until(lambda: h.marks.state.dropped == 2, "the duplicate refused")
            assert [(c.venue, c.account, c.symbol, c.bound, c.watch.label) for c in h.crossings] == [
                (venue, "acct", BTC, "low", "critical")
            ]
            assert h.crossings[0].mark == pytest.approx(mark * 0.85) and h.crossings[0].timestamp is not None

            # an older mark back inside the band, arriving late, does not un-cross
            h.sim.add_stream_fault(venue, "out_of_order", count=1)
            h.sim.set_mark(venue, BTC, mark)
            h.sim.set_mark(venue, BTC, mark * 0.84)
            await until(lambda: h.marks.state.dropped == 3, "the late mark refused")
            assert h.latest() == pytest.approx(mark * 0.84) and len(h.crossings) == 1  # spent until replaced

            # the next poll sets the watches again: armed, they fire at the next mark
            h.streams.update(h.account, [BTC], [Watch(h.account, BTC, mark * 0.9, mark * 1.1, "critical")])
            h.sim.set_mark(venue, BTC, mark * 0.83)
            await until(lambda: len(h.crossings) == 2, "the re-armed watch")

    run(test())


@pytest.mark.parametrize("venue", VENUES)
def test_a_dropped_stream_reconnects_and_resubscribes(venue: str) -> None:
    async def test() -> None:
        async with streaming(venue, account_streams=True) as h:
            mark = h.sim.state.mark(venue, BTC)
            await watching_btc(h, mark * 0.5, mark * 2)
            private = h.streams.accounts[h.account].state
            await until(lambda: private.connected, "the account stream up")
            assert h.sim.drop_streams(venue) == 2  # the mark stream and the account stream
            h.sim.set_mark(venue, BTC, mark * 1.01)  # may fall in the gap: the resubscription brings it
            await until(lambda: h.latest() == pytest.approx(mark * 1.01), "the mark after the drop")
            assert h.marks.state.reconnects == 1 and h.marks.state.connected
            assert "1006" in (h.marks.state.last_error or "")
            await until(lambda: "resumed" in h.kinds(), "the account stream back")
            assert h.kinds().count("gap") == 1 and private.reconnects == 1
            public = [c for c in h.sim.stream_connections() if c["channel"] == "public"]
            assert len(public) == 1 and len(public[0]["subscriptions"]) == 1  # one connection, BTC only
            # the account stream works again: a change is reported
            held = next(a for a in SCENARIO["accounts"] if a["api_key"] == KEYS[venue]["apiKey"])["positions"]
            h.sim.set_positions(venue, KEYS[venue]["apiKey"], held[:1])
            await until(lambda: h.kinds()[-1:] in (["positions"], ["balance"]), "a change after the drop")

    run(test())


@pytest.mark.parametrize("venue", VENUES)
def test_a_silent_stream_is_flagged_stale_and_recovers_when_the_venue_speaks_again(venue: str) -> None:
    async def test() -> None:
        async with streaming(venue, interval=0.05, stale_after=0.5) as h:
            mark = h.sim.state.mark(venue, BTC)
            await watching_btc(h, mark * 0.5, mark * 2)
            state = h.marks.state
            await until(lambda: state.connected and not state.stale, "a live stream")
            h.sim.add_stream_fault(venue, "silent", "public")  # open, no marks, no pongs
            await until(lambda: state.stale, "the stale flag")
            assert not state.connected and "no mark for 0.5 s" in (state.last_error or "")
            h.sim.clear_faults()
            await until(lambda: state.connected and not state.stale, "the stream back")
            assert state.reconnects >= 1

    run(test())


@pytest.mark.parametrize("venue", VENUES)
def test_position_and_balance_changes_are_reported(venue: str) -> None:
    async def test() -> None:
        async with streaming(venue, account_streams=True) as h:
            key = KEYS[venue]["apiKey"]
            private = h.streams.accounts[h.account].state
            await until(lambda: private.connected, "the account stream up")
            if venue == "okx":  # OKX pushes both on subscribe
                await until(lambda: {"positions", "balance"} <= set(h.kinds()), "OKX's snapshots")
            h.events.clear()
            held = next(a for a in SCENARIO["accounts"] if a["api_key"] == key)["positions"]
            h.sim.set_positions(venue, key, held[:1])
            await until(lambda: "positions" in h.kinds(), "the change reported")
            positions = next(e for e in h.events if e.kind == "positions")
            assert set(positions.symbols) == {p["symbol"] for p in held}  # the closed ones too
            assert positions.account == "acct" and positions.timestamp is not None
            # changes pushed twice are reported once each (Binance pushes one frame a change,
            # Bybit and OKX two: positions and wallet)
            h.sim.add_stream_fault(venue, "duplicate", "private", count=2 if venue == "binanceusdm" else 4)
            h.sim.set_positions(venue, key, held[:2])
            h.sim.set_positions(venue, key, held[:1])
            await until(lambda: private.dropped >= 2, "duplicates refused")
            h.sim.set_positions(venue, key, held)  # a last change, its frames after every duplicate
            await until(lambda: h.kinds().count("positions") == 4, "every change")
            assert h.sim.stream_faults.listing() == []
            # the same positions again (as OKX's interval pushes): no change to report
            h.sim.set_positions(venue, key, held)
            # a liquidation moves the wallet: a balance change with its positions change
            liquidated_at = int(time.time() * 1000)
            h.sim.liquidate(venue, key, held[0]["symbol"])

            def liquidation() -> int | None:  # the liquidation's positions event (server time)
                found = [
                    i for i, e in enumerate(h.events) if e.kind == "positions" and (e.timestamp or 0) >= liquidated_at
                ]
                return found[0] if found else None

            # Binance sends one frame (ccxt reads its balance first); Bybit and OKX the
            # positions frame, then the wallet's
            after = 0 if venue == "binanceusdm" else 1
            await until(lambda: (i := liquidation()) is not None and len(h.events) > i + after, "the liquidation")
            i = liquidation()
            assert i is not None
            assert h.events[i - 1 if venue == "binanceusdm" else i + 1].kind == "balance"
            assert h.kinds()[:i].count("positions") == 4  # the repeated positions made none

    run(test())


def test_the_subscribed_symbols_follow_the_positions_held() -> None:
    async def test() -> None:
        async with streaming("okx") as h:

            def subscribed() -> list[str]:
                public = [c for c in h.sim.stream_connections() if c["channel"] == "public"]
                return [json.loads(s)["instId"] for c in public for s in c["subscriptions"]]

            h.streams.update(h.account, [BTC])
            await until(lambda: subscribed() == ["BTC-USDT-SWAP"], "BTC")
            eth = h.sim.state.mark("okx", ETH)
            h.streams.update(h.account, [BTC, ETH], [Watch(h.account, ETH, None, eth * 1.1)])
            await until(lambda: subscribed() == ["BTC-USDT-SWAP", "ETH-USDT-SWAP"], "BTC and ETH")
            h.streams.update(h.account, [ETH], [Watch(h.account, ETH, None, eth * 1.1)])
            await until(lambda: subscribed() == ["ETH-USDT-SWAP"], "ETH only")
            h.sim.set_mark("okx", ETH, eth * 1.2)
            await until(lambda: len(h.crossings) == 1, "the ETH crossing")
            assert (h.crossings[0].symbol, h.crossings[0].bound) == (ETH, "high")
            assert h.marks.state.reconnects == 0  # a resubscription is not a failure

    run(test())


def test_a_failing_callback_does_not_stop_the_stream() -> None:
    async def test() -> None:
        async with streaming("binanceusdm") as h:
            stream = h.marks
            calls: list[Crossing] = []

            def failing(crossing: Crossing) -> None:
                calls.append(crossing)
                raise RuntimeError("the alert path broke")

            stream.on_crossing = failing
            mark = h.sim.state.mark("binanceusdm", BTC)
            h.streams.update(h.account, [BTC, ETH], [Watch(h.account, BTC, mark * 0.9, None)])
            await until(lambda: h.latest() is not None, "the first mark")
            h.sim.set_mark("binanceusdm", BTC, mark * 0.8)
            await until(lambda: len(calls) == 1, "the crossing")
            h.sim.set_mark("binanceusdm", ETH, 1234.5)
            await until(lambda: h.latest(ETH) == pytest.approx(1234.5), "the stream still running")

    run(test())


def test_what_is_not_streamed() -> None:
    off = Streams(StreamingConfig(enabled=False), [AccountConfig(name="a", exchange="okx")], {}, print, print)
    assert off.marks == {} and not off.streamed("a")
    polled_only = Streams(
        StreamingConfig(),
        [AccountConfig(name="h", exchange="hyperliquid"), AccountConfig(name="o", exchange="okx")],
        {},
        print,
        print,
    )
    assert not polled_only.streamed("h") and polled_only.streamed("o")
    assert polled_only.accounts == {}  # no credentials given: no account stream
    polled_only.update("h", [BTC], [Watch("h", BTC, 1.0, 2.0)])  # ignored, no error
    with pytest.raises(ValueError, match="reconnect_cap_seconds"):
        StreamingConfig(reconnect_base_seconds=10, reconnect_cap_seconds=1)


def test_a_binance_listen_key_is_kept_alive_and_replaced_when_it_lapses() -> None:
    """ccxt PUTs a listenKey once only, 20 minutes after the POST: the account stream PUTs
    it every keepalive_seconds (here 0.1 s). When the key has lapsed (deleted here), the PUT
    fails, a gap is reported, and the reconnection POSTs a new key: changes flow again."""

    async def test() -> None:
        doc = copy.deepcopy(SCENARIO)
        doc["ohlcv_history_days"] = 1
        sim = ExchangeSimulator(doc)
        base_url = await sim.start_async()
        events: list[AccountEvent] = []
        stream = AccountStream(
            "acct", "binanceusdm", base_url, KEYS["binanceusdm"], events.append, keepalive_seconds=0.1
        )
        stream.backoff = RetryPolicy(0.05, 0.2)
        task = asyncio.create_task(stream.run())

        def calls(method: str) -> int:
            return sim.requests.count(("binanceusdm", method, "/fapi/v1/listenKey"))

        try:
            await until(lambda: stream.state.keepalives >= 2 and calls("PUT") >= 2, "two keep-alives")
            assert calls("POST") == 1 and stream.state.reconnects == 0
            first_key = sim.state.listen_key("binanceusdm", "bn-key")
            sim.state.delete_listen_key("binanceusdm", "bn-key")  # lapsed
            await until(lambda: [e.kind for e in events] == ["gap", "resumed"], "gap, then resumed")
            assert calls("POST") == 2 and "-1125" in (stream.state.last_error or "")
            assert sim.state.listen_key("binanceusdm", "bn-key") != first_key
            held = next(a for a in SCENARIO["accounts"] if a["api_key"] == "bn-key")["positions"]
            sim.set_positions("binanceusdm", "bn-key", held[:1])
            await until(lambda: "positions" in [e.kind for e in events], "a change on the new key")
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await stream.close()
            await sim.stop_async()

    run(test())
