"""Market data into a poll: each venue's volatility, betas and funding (cached by
connectors.market_data), written into the snapshot (positions' `volatility`) and kept for
the account rows (touch probability, funding outlook) and for the store (market_stats)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from connectors.market_data import MarketData
from margin.correlation import betas_to_benchmark
from margin.funding import FundingRate
from margin.snapshot import SNAPSHOT_BOUNDS
from margin.volatility import volatility_by_symbol


@dataclass(frozen=True)
class MarketView:
    """One venue's market data this cycle: daily σ and beta per symbol, funding."""

    volatility: Mapping[str, float] = field(default_factory=dict)
    betas: Mapping[str, float] = field(default_factory=dict)
    funding: Mapping[str, FundingRate] = field(default_factory=dict)
    ticks: Mapping[str, float] = field(default_factory=dict)  # price tick per symbol (alert messages)

    def merged(self, newer: MarketView) -> MarketView:
        """This view updated with a newer one's values."""
        return MarketView(
            {**self.volatility, **newer.volatility},
            {**self.betas, **newer.betas},
            {**self.funding, **newer.funding},
            {**self.ticks, **newer.ticks},
        )

    def stats(self, symbols: Iterable[str]) -> dict[str, dict[str, Any]]:
        """market_stats rows for `symbols` (only the values known this cycle)."""
        rows: dict[str, dict[str, Any]] = {}
        for symbol in symbols:
            row: dict[str, Any] = {}
            if symbol in self.volatility:
                row["volatility"] = self.volatility[symbol]
            if symbol in self.betas:
                row["beta"] = self.betas[symbol]
            if symbol in self.ticks:
                row["price_tick"] = self.ticks[symbol]
            rate = self.funding.get(symbol)
            if rate is not None:
                row.update(
                    funding_rate=rate.rate,
                    predicted_funding_rate=rate.predicted_rate,
                    funding_interval_hours=rate.interval_hours,
                    hours_to_funding=rate.hours_to_next,
                )
            rows[symbol] = row
        return rows


async def market_view(market: MarketData, symbols: Iterable[str]) -> MarketView:
    """Volatility and betas from 30 days of hourly closes, and current funding."""
    wanted = sorted(set(symbols))
    closes = await market.hourly_closes(wanted)
    # a σ outside the snapshot's bounds (flat or broken candles) is left out: it would fail the poll
    lowest, highest = SNAPSHOT_BOUNDS["position"]["volatility"]
    volatility = {
        s: v.sigma_daily for s, v in volatility_by_symbol(closes).items() if lowest <= v.sigma_daily <= highest
    }
    try:
        betas = betas_to_benchmark(closes, market.benchmark) if market.benchmark in closes else {}
    except (KeyError, ValueError):
        betas = {}
    funding = await market.funding_rates(wanted)
    return MarketView(volatility, betas, funding, market.price_ticks(wanted))


def with_volatility(document: Mapping[str, Any], view: MarketView) -> dict[str, Any]:
    """The snapshot document with each position's daily σ filled in where it is known (a
    σ the document already carries is kept)."""
    doc = json.loads(json.dumps(document, default=str))
    for position in doc.get("positions", []):
        sigma = view.volatility.get(position.get("symbol"))
        if position.get("volatility") is None and sigma is not None:
            position["volatility"] = sigma
    return doc
