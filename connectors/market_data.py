"""Public market data of one venue — hourly candles, funding rates, order books — shared by
every account on that venue: one ccxt client without keys, its own rate limiter, and caches
sized to how fast each thing changes (candles hourly, funding every 10 minutes, books per
poll). Failures never fail a poll: the caller gets what is known and a warning."""

from __future__ import annotations

import asyncio
import functools
import logging
import math
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from connectors.client import rest_client
from connectors.errors import classify, with_retries
from connectors.redirect import quiet_ccxt_logger
from connectors.venues import profile_for
from margin.funding import FundingRate

quiet_ccxt_logger()
log = logging.getLogger(__name__)

CANDLES_TTL = 3600.0
FUNDING_TTL = 600.0
BOOK_TTL = 10.0
FAILURE_PAUSE = 60.0  # after a failed fetch, the old value (or none) for a minute
HOURS_OF_HISTORY = 720  # 30 days of hourly bars: enough for EWMA and for beta
BOOK_LEVELS = 50


@dataclass
class _Cached:
    value: Any
    at: float


@dataclass
class MarketData:
    """One venue's public data. `benchmark` is the symbol betas are measured against
    (default: the venue profile's, BTC/USDT:USDT or Hyperliquid's BTC/USDC:USDC)."""

    exchange_id: str
    base_url: str | None = None
    budget_seconds: float = 10.0
    benchmark: str = ""
    clock: Callable[[], float] = time.monotonic
    wait_seconds: float = 2.0  # longest a poll waits for market data not yet fetched
    warnings: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        profile = profile_for(self.exchange_id)
        self.benchmark = self.benchmark or profile.benchmark
        self.client = rest_client(self.exchange_id, timeout_seconds=self.budget_seconds, base_url=self.base_url)
        self._candles: dict[str, _Cached] = {}
        self._funding: dict[str, _Cached] = {}
        self._books: dict[str, _Cached] = {}
        self._inflight: dict[str, asyncio.Future[Any]] = {}
        self._failed: dict[str, float] = {}
        self._markets_loaded = False

    async def close(self) -> None:
        for task in list(self._inflight.values()):
            task.cancel()
        await asyncio.gather(*self._inflight.values(), return_exceptions=True)
        await self.client.close()

    async def _call(self, make: Callable[[], Any]) -> Any:
        return await with_retries(make, deadline=self.clock() + self.budget_seconds, clock=self.clock)

    async def _fresh(self, cache: dict[str, _Cached], key: str, ttl: float, fetch: Callable[[], Any]) -> Any:
        """The cached value if younger than `ttl`; else one shared fetch (every account of a
        venue asks at the start of a cycle, and 500 identical requests would bury the
        venue), awaited for at most `wait_seconds`: a slow fetch goes on in the background
        and the caller gets the old value (or None) now, because market data enriches a
        poll and must never hold one up. After a failure, no new attempt for FAILURE_PAUSE."""
        held = cache.get(key)
        if held is not None and self.clock() - held.at < ttl:
            return held.value
        task = self._inflight.get(key)
        if task is None:
            failed_at = self._failed.get(key)
            if failed_at is not None and self.clock() - failed_at < FAILURE_PAUSE:
                return held.value if held else None
            task = asyncio.ensure_future(self._fetch(cache, key, fetch, held))
            self._inflight[key] = task
            task.add_done_callback(lambda _: self._inflight.pop(key, None))
        try:
            return await asyncio.wait_for(asyncio.shield(task), timeout=self.wait_seconds)
        except TimeoutError:
            return held.value if held else None

    async def _fetch(self, cache: dict[str, _Cached], key: str, fetch: Callable[[], Any], held: _Cached | None) -> Any:
        try:
            if not self._markets_loaded:
                await self._call(lambda: self.client.load_markets())
                self._markets_loaded = True
            value = await self._call(fetch)
        except Exception as exc:  # market data enriches a poll, never fails it
            message = f"{self.exchange_id} {key}: {classify(exc).message}"
            log.warning("market data: %s", message)
            self.warnings.append(message)
            self._failed[key] = self.clock()
            return held.value if held else None
        self._failed.pop(key, None)
        cache[key] = _Cached(value, self.clock())
        return value

    async def hourly_closes(self, symbols: Iterable[str]) -> dict[str, list[float]]:
        """The last 30 days of hourly closes of `symbols` and of the benchmark."""
        result = {}
        per_call = profile_for(self.exchange_id).ohlcv_per_call
        wanted = sorted({*symbols, self.benchmark})
        fetched = await asyncio.gather(
            *(
                self._fresh(self._candles, f"ohlcv:{s}", CANDLES_TTL, functools.partial(self._candles_of, s, per_call))
                for s in wanted
            )
        )
        for symbol, rows in zip(wanted, fetched, strict=True):
            closes = [float(r[4]) for r in rows or [] if isinstance(r, list | tuple) and len(r) > 4 and r[4]]
            if len(closes) >= 3:
                result[symbol] = closes
        return result

    async def _candles_of(self, symbol: str, per_call: int) -> list[list[float]]:
        if HOURS_OF_HISTORY <= per_call:
            return await self.client.fetch_ohlcv(symbol, "1h", limit=HOURS_OF_HISTORY)
        # OKX answers 300 bars a call: let ccxt page back from 30 days ago
        since = int((time.time() - HOURS_OF_HISTORY * 3600) * 1000)
        rows = await self.client.fetch_ohlcv(symbol, "1h", since=since, params={"paginate": True})
        return rows[-HOURS_OF_HISTORY:]

    async def funding_rates(self, symbols: Iterable[str]) -> dict[str, FundingRate]:
        """Current (and predicted, where the venue gives it) funding of `symbols`."""
        result = {}
        now_ms = time.time() * 1000
        wanted = sorted(set(symbols))
        fetched = await asyncio.gather(
            *(
                self._fresh(
                    self._funding, f"funding:{s}", FUNDING_TTL, functools.partial(self.client.fetch_funding_rate, s)
                )
                for s in wanted
            )
        )
        for symbol, raw in zip(wanted, fetched, strict=True):
            rate = _funding(symbol, raw, now_ms)
            if rate is not None:
                result[symbol] = rate
        return result

    def price_ticks(self, symbols: Iterable[str]) -> dict[str, float]:
        """Each market's price tick (ccxt's precision.price: the venue's tick size), for
        the symbols whose market is loaded (markets load with the first fetch)."""
        markets = self.client.markets or {}
        result: dict[str, float] = {}
        for symbol in set(symbols):
            precision = (markets.get(symbol) or {}).get("precision") or {}
            raw = precision.get("price")
            try:
                tick = float(raw) if raw is not None else math.nan
            except (TypeError, ValueError):
                continue
            if 0 < tick < float("inf"):
                result[symbol] = tick
        return result

    async def order_books(self, symbols: Iterable[str]) -> dict[str, Mapping[str, Any]]:
        """Order books ({"bids": [[price, amount]], "asks": ...}, amounts in contracts)."""
        result: dict[str, Mapping[str, Any]] = {}
        for symbol in sorted(set(symbols)):
            book = await self._fresh(
                self._books,
                f"book:{symbol}",
                BOOK_TTL,
                functools.partial(self.client.fetch_order_book, symbol, BOOK_LEVELS),
            )
            if isinstance(book, Mapping) and book.get("bids") is not None:
                result[symbol] = {
                    "bids": book.get("bids") or [],
                    "asks": book.get("asks") or [],
                    "timestamp": book.get("timestamp"),
                }
        return result


def _funding(symbol: str, raw: Any, now_ms: float) -> FundingRate | None:
    """ccxt's funding-rate structure -> FundingRate (interval defaults to 8 h)."""
    if not isinstance(raw, Mapping) or raw.get("fundingRate") is None:
        return None
    interval = raw.get("interval")
    hours = 8.0
    if isinstance(interval, str) and interval.endswith("h") and interval[:-1].isdigit():
        hours = float(interval[:-1])
    next_at = raw.get("fundingTimestamp") or raw.get("nextFundingTimestamp")
    try:
        return FundingRate(
            symbol=symbol,
            rate=float(raw["fundingRate"]),
            interval_hours=hours,
            predicted_rate=None if raw.get("nextFundingRate") is None else float(raw["nextFundingRate"]),
            hours_to_next=None if not next_at else max(0.0, (float(next_at) - now_ms) / 3.6e6),
        )
    except (TypeError, ValueError):
        return None
