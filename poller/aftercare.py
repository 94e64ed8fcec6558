"""What follows a stored poll, off the path of the other accounts' writes: the venue's
liquidation history for positions that vanished, and the order books a remedy is priced on."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from config.settings import AccountConfig
from connectors.errors import classify
from connectors.market_data import MarketData
from margin.remedies import deleverage_plan
from poller.rows import Polled
from store import repo

if TYPE_CHECKING:
    from poller.loop import Poller

log = logging.getLogger(__name__)

LIQUIDATION_SLACK = timedelta(minutes=5)  # exchange clocks and ours differ a little
Held = tuple[datetime, list[dict[str, Any]]]


class LiquidationWatch:
    """Remembers each account's positions; one that vanishes is looked up in the venue's
    liquidation history, and what the venue confirms is stored and alerted (a close by the
    trader is not in that history, and is left alone)."""

    def __init__(self, poller: Poller) -> None:
        self.poller = poller
        self._held: dict[str, Held | None] = {}

    async def previous(self, account: AccountConfig) -> Held | None:
        """The positions at the account's previous poll (from memory, or the store after a
        restart)."""
        if account.name not in self._held:
            self._held[account.name] = await self.poller.write(self._stored, account)
        return self._held.get(account.name)

    def remember(self, account: AccountConfig, taken_at: datetime, positions: list[dict[str, Any]]) -> None:
        self._held[account.name] = (taken_at, positions)

    def _stored(self, account: AccountConfig) -> Held | None:
        with self.poller.sessions() as session:
            snapshot = repo.latest_snapshot(session, self.poller.ids[account.name])
            if snapshot is None:
                return None
            return snapshot.taken_at, [
                {"symbol": p.symbol, "side": p.side} for p in repo.latest_positions(session, snapshot.id)
            ]

    async def check(
        self, account: AccountConfig, previous: Held | None, positions: list[dict[str, Any]], now: datetime
    ) -> None:
        # Every position that vanished is looked up, not only those near liquidation at the
        # previous poll: a crash between two polls liquidates a position that looked safe.
        # Positions close rarely, so the look-ups cost little.
        if previous is None:
            return
        since, before = previous
        held = {(p["symbol"], p["side"]) for p in positions}
        for gone in (p for p in before if (p["symbol"], p["side"]) not in held):
            try:
                records = await self.poller.connectors[account.name].recent_liquidations(
                    gone["symbol"], since - LIQUIDATION_SLACK
                )
            except Exception as exc:  # a failed look-up is logged; the poll goes on
                log.warning("%s: liquidation history unavailable: %s", account.label, classify(exc).message)
                continue
            for record in records:
                if record["side"] not in (None, gone["side"]) or record["occurred_at"] is None:
                    continue
                await self._record(account, gone, record, now)

    async def _record(
        self, account: AccountConfig, gone: dict[str, Any], record: dict[str, Any], now: datetime
    ) -> None:
        poller = self.poller
        event = {
            "symbol": gone["symbol"],
            "side": gone["side"],
            "occurred_at": record["occurred_at"],
            "detected_at": now,
            "price": record["price"],
            "contracts": record["contracts"],
            "source": record["source"],
            "detail": None,
        }
        if not await poller.write(repo.record_liquidation, poller.sessions, poller.ids[account.name], event):
            return  # seen before
        log.warning("%s: %s %s liquidated at %s", account.label, gone["symbol"], gone["side"], record["price"])
        if poller.alerts_wake is not None:
            from alerts.service import alert_liquidation

            await poller.write(
                alert_liquidation, poller.sessions, poller.config, account, poller.ids[account.name], event, now
            )
            poller.alerts_wake.set()


async def store_books(
    market: MarketData,
    account: AccountConfig,
    polled: Polled,
    timeout: float,
    save: Callable[[dict[str, Any]], Awaitable[Any]],
) -> None:
    """Order books of the symbols the account's deleverage plan would trade, so that the
    dashboard can price the plan (it never calls an exchange itself)."""
    symbols = {r.symbol for r in deleverage_plan(polled.snapshot, polled.target_health).reductions}
    if not symbols:
        return
    try:
        books = await asyncio.wait_for(market.order_books(symbols), timeout=timeout)
    except Exception as exc:  # books enrich the remedy; their absence is logged, not fatal
        log.warning("%s: order books unavailable: %s", account.label, classify(exc).message)
        return
    stamp = polled.taken_at
    await save({symbol: {"order_book": book, "order_book_at": stamp} for symbol, book in books.items()})
