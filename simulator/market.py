"""Market data the simulator serves: hourly candles, order books and funding times.

Candles. Each market has `ohlcv_history_days` of closed hourly candles before the hour in
which the simulator started (the anchor hour), generated from the scenario seed: hourly log
returns r = beta x sigma_factor x z_factor + sigma_idio x z_own, where z_factor is one
standard normal series per seed (shared by every market of every venue, so markets are
correlated through it) and z_own one per (seed, symbol). The factor is the venue's BTC
market (beta 1, no idiosyncratic part). The series is anchored backwards so that the last
closed candle closes at the market's scenario mark.

From the anchor hour on, candles are built from the marks the simulator actually had, as an
exchange builds them from trades: every mark change (set_mark, the random walk, reset)
updates the candle of the hour it happens in (open = the previous close, high/low = the
extremes seen, close = the latest mark), and an hour without a change is flat at the
previous close. The last candle therefore always closes at the current mark.

Volumes are deterministic too (a quote value of about DEFAULT_QUOTE_VOLUME per hour, larger
when the candle moves more); they are kept in contracts.

Order books are generated from the current mark on every request (see `order_book`).
"""

from __future__ import annotations

import math
import random
import threading
from collections.abc import Mapping
from dataclasses import dataclass

from simulator.scenario import (
    MarketSpec,
    Scenario,
    factor_volatility,
    idiosyncratic_volatility,
)

HOUR_MS = 3_600_000
FUNDING_INTERVAL_MS = 8 * HOUR_MS  # 00:00, 08:00 and 16:00 UTC (Hyperliquid: every hour)
DEFAULT_QUOTE_VOLUME = 20_000_000.0  # quote value traded per hour, before the noise
BOOK_SIZE_GROWTH = 0.2  # each level deeper holds 20 % of the first level more


@dataclass(frozen=True)
class Candle:
    """One candle; `ts` is its open time (ms), `volume` is in contracts."""

    ts: int
    open: float
    high: float
    low: float
    close: float
    volume: float


def hour_of(ms: int) -> int:
    return ms - ms % HOUR_MS


def next_funding_ms(now_ms: int) -> int:
    """The next funding settlement after `now_ms` (every 8 h from 00:00 UTC)."""
    return (now_ms // FUNDING_INTERVAL_MS + 1) * FUNDING_INTERVAL_MS


def round_to(value: float, step: float) -> float:
    """`value` on the grid of `step` (a tick or a lot), without float residue."""
    return round(round(value / step) * step, 12)


def _volume(market: MarketSpec, close: float, ret: float, noise: float) -> float:
    """Contracts traded in one hour: about DEFAULT_QUOTE_VOLUME of quote, more on a move."""
    quote = DEFAULT_QUOTE_VOLUME * (0.5 + noise) * (1.0 + 30.0 * abs(ret))
    return max(market.amount_step, round_to(quote / (close * market.contract_size), market.amount_step))


def history(market: MarketSpec, factor_sigma: float, seed: int, anchor_ms: int, hours: int) -> list[Candle]:
    """The `hours` closed hourly candles before `anchor_ms`, oldest first, the last closing
    at the market's scenario mark."""
    factor = random.Random(f"{seed}:factor")  # noqa: S311 - a seeded simulation
    own = random.Random(f"{seed}:{market.symbol}")  # noqa: S311
    extra = random.Random(f"{seed}:{market.symbol}:shape")  # noqa: S311
    idio = idiosyncratic_volatility(market, factor_sigma)
    beta = 1.0 if market.is_factor else market.beta
    sigma_factor = market.hourly_volatility if market.is_factor else factor_sigma
    returns = [beta * sigma_factor * factor.gauss(0.0, 1.0) + idio * own.gauss(0.0, 1.0) for _ in range(hours)]
    # Closes backwards from the scenario mark: close[k-1] = close[k] x exp(-r[k]).
    closes = [0.0] * hours
    log_close = math.log(market.mark_price)
    for k in range(hours - 1, -1, -1):
        closes[k] = math.exp(log_close)
        log_close -= returns[k]
    first_open = math.exp(log_close)
    tick = market.price_tick
    sigma = max(market.hourly_volatility, 1e-6)
    candles = []
    previous = round_to(first_open, tick)
    for k in range(hours):
        close = round_to(closes[k], tick) if k < hours - 1 else market.mark_price
        open_ = previous
        wick_up, wick_down, noise = (
            abs(extra.gauss(0.0, 0.5 * sigma)),
            abs(extra.gauss(0.0, 0.5 * sigma)),
            extra.random(),
        )
        high = max(open_, close, math.ceil(max(open_, close) * math.exp(wick_up) / tick - 1e-9) * tick)
        low = min(open_, close, max(tick, math.floor(min(open_, close) * math.exp(-wick_down) / tick + 1e-9) * tick))
        candles.append(
            Candle(
                anchor_ms - (hours - k) * HOUR_MS,
                open_,
                round(high, 12),
                round(low, 12),
                close,
                _volume(market, close, returns[k], noise),
            )
        )
        previous = close
    return candles


class CandleBook:
    """Every market's hourly candles: the generated history, then the candles built from
    the marks since the anchor hour. Safe to use from any thread."""

    def __init__(self, scenario: Scenario, anchor_ms: int) -> None:
        self.scenario = scenario
        self.anchor_ms = hour_of(anchor_ms)
        self.hours = scenario.ohlcv_history_days * 24
        self._lock = threading.Lock()
        self._history: dict[tuple[str, str], list[Candle]] = {}
        # (venue, symbol) -> hour -> [open, high, low, close], for hours >= the anchor
        self._live: dict[tuple[str, str], dict[int, list[float]]] = {}

    def _market(self, venue: str, symbol: str) -> MarketSpec:
        return self.scenario.markets[venue][symbol]

    def _history_of(self, venue: str, symbol: str) -> list[Candle]:
        key = (venue, symbol)
        if key not in self._history:
            markets: Mapping[str, MarketSpec] = self.scenario.markets[venue]
            self._history[key] = history(
                markets[symbol], factor_volatility(markets), self.scenario.seed, self.anchor_ms, self.hours
            )
        return self._history[key]

    def reset(self) -> None:
        """Forget the candles built since the anchor (the history stays)."""
        with self._lock:
            self._live.clear()

    def touch(self, venue: str, symbol: str, price: float, now_ms: int) -> None:
        """A mark change at `now_ms`: update the candle of that hour."""
        hour = max(hour_of(now_ms), self.anchor_ms)
        with self._lock:
            records = self._live.setdefault((venue, symbol), {})
            record = records.get(hour)
            if record is None:
                earlier = [h for h in records if h < hour]
                previous = records[max(earlier)][3] if earlier else self._market(venue, symbol).mark_price
                records[hour] = [previous, max(previous, price), min(previous, price), price]
            else:
                record[1], record[2], record[3] = max(record[1], price), min(record[2], price), price

    def hourly(self, venue: str, symbol: str, now_ms: int) -> list[Candle]:
        """Every hourly candle up to the one holding `now_ms`, oldest first."""
        market = self._market(venue, symbol)
        with self._lock:
            candles = list(self._history_of(venue, symbol))
            records = dict(self._live.get((venue, symbol), {}))
        previous = candles[-1].close if candles else market.mark_price
        for hour in range(self.anchor_ms, max(hour_of(now_ms), self.anchor_ms) + 1, HOUR_MS):
            o, h, low, c = records.get(hour, (previous, previous, previous, previous))
            noise = random.Random(f"{self.scenario.seed}:{symbol}:{hour}").random()  # noqa: S311
            candles.append(Candle(hour, o, h, low, c, _volume(market, c, math.log(c / o), noise)))
            previous = c
        return candles

    def candles(self, venue: str, symbol: str, now_ms: int, hours: int = 1, offset_ms: int = 0) -> list[Candle]:
        """Candles of `hours` hours (1, 2, 4, 6, 8, 12, 24), aligned on UTC (plus
        `offset_ms`: OKX's Hong Kong-time bars), oldest first; a first bar that the
        history only partly covers is left out."""
        hourly = self.hourly(venue, symbol, now_ms)
        if hours == 1:
            return hourly
        width = hours * HOUR_MS
        groups: dict[int, list[Candle]] = {}
        for c in hourly:
            groups.setdefault((c.ts + offset_ms) // width * width - offset_ms, []).append(c)
        bars = []
        for start, members in groups.items():
            if members[0].ts != start:
                continue  # the oldest bar, cut by the start of the history
            bars.append(
                Candle(
                    start,
                    members[0].open,
                    max(m.high for m in members),
                    min(m.low for m in members),
                    members[-1].close,
                    round(sum(m.volume for m in members), 12),
                )
            )
        return bars


Level = tuple[float, float]  # (price, contracts)


def order_book(market: MarketSpec, mark: float) -> tuple[list[Level], list[Level]]:
    """(bids, asks), best first, as (price, contracts). The best bid is the mark rounded
    down to the tick, the best ask one tick above it (so bid <= mark < ask); then a level
    every `book_level_ticks` ticks, `book_depth_levels` levels a side (bids stop above 0).
    Level i holds book_level_size x (1 + 0.2 i) contracts, rounded to the lot."""
    tick, spacing = market.price_tick, market.book_level_ticks
    best_bid = math.floor(mark / tick + 1e-9)  # in ticks
    bids, asks = [], []
    for i in range(market.book_depth_levels):
        size = max(
            market.amount_step, round_to(market.book_level_size * (1 + BOOK_SIZE_GROWTH * i), market.amount_step)
        )
        bid = best_bid - i * spacing
        if bid > 0:
            bids.append((round(bid * tick, 12), size))
        asks.append((round((best_bid + 1 + i * spacing) * tick, 12), size))
    return bids, asks


def window(
    candles: list[Candle], *, start: int | None = None, end: int | None = None, limit: int, oldest_first: bool
) -> list[Candle]:
    """Candles whose open time is in [start, end], cut to `limit` from the oldest side
    (`oldest_first`) or the newest side; oldest first."""
    chosen = [c for c in candles if (start is None or c.ts >= start) and (end is None or c.ts <= end)]
    return chosen[:limit] if oldest_first else chosen[-limit:] if limit > 0 else []
