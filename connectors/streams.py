"""The streams of a config: one mark stream per venue (and simulator URL) shared by its
accounts, one account stream per account where the venue has them (docs/streaming.md).

The poller's side of it:

    streams = Streams(config.streaming, config.accounts, credentials, on_crossing, on_account_event)
    await streams.start()
    ...after each poll of an account:
    streams.update(account.name, held_symbols, [Watch(account.name, symbol, low, high, "critical"), ...])
    ...
    await streams.stop()

`on_crossing(Crossing)` and `on_account_event(AccountEvent)` are called synchronously from
the stream tasks: hand the work (an alert, a re-poll) to a task, never block.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from config.settings import AccountConfig, StreamingConfig
from connectors.account import SharedMarkets
from connectors.account_stream import AccountEvent, AccountStream
from connectors.errors import RetryPolicy
from connectors.mark_stream import MarkStream
from connectors.stream_support import StreamState, stream_venue
from connectors.triggers import Crossing, Watch
from connectors.venues import is_coin

__all__ = ["AccountEvent", "Crossing", "StreamState", "Streams", "Watch"]

VenueKey = tuple[str, str | None]  # (exchange id, base_url)


class Streams:
    """Every stream of `accounts` that `settings` turns on. Accounts on venues that do not
    stream, or without `credentials` (for the account streams), are left to polling."""

    def __init__(
        self,
        settings: StreamingConfig,
        accounts: Iterable[AccountConfig],
        credentials: Mapping[str, Mapping[str, str]],
        on_crossing: Callable[[Crossing], None],
        on_account_event: Callable[[AccountEvent], None],
        *,
        shared_markets: SharedMarkets | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.marks: dict[VenueKey, MarkStream] = {}
        self.accounts: dict[str, AccountStream] = {}
        self._venue_of: dict[str, VenueKey] = {}
        self._held: dict[str, frozenset[str]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        if not settings.enabled:
            return
        shared = shared_markets or SharedMarkets()
        backoff = RetryPolicy(settings.reconnect_base_seconds, settings.reconnect_cap_seconds)
        for account in accounts:
            venue = stream_venue(account.exchange)
            if venue is None or is_coin(account.collateral):
                continue  # coin-margined accounts are polled only (their streams are not tested)
            key = (account.exchange, account.base_url)
            if key not in self.marks:
                self.marks[key] = MarkStream(
                    account.exchange,
                    account.base_url,
                    on_crossing,
                    stale_after=settings.stale_after_seconds,
                    backoff=backoff,
                    shared_markets=shared,
                    clock=clock,
                )
            self._venue_of[account.name] = key
            if settings.account_streams and venue.account_streams and account.name in credentials:
                self.accounts[account.name] = AccountStream(
                    account.name,
                    account.exchange,
                    account.base_url,
                    credentials[account.name],
                    on_account_event,
                    backoff=backoff,
                    shared_markets=shared,
                    clock=clock,
                )

    # --- lifecycle ---

    async def start(self) -> None:
        """Start every stream's task (they run until `stop`)."""
        if self._tasks:
            raise RuntimeError("the streams are already running")
        for stream in self.marks.values():
            self._tasks.append(asyncio.create_task(stream.run(), name=f"mark-stream-{stream.exchange_id}"))
        for account in self.accounts.values():
            self._tasks.append(asyncio.create_task(account.run(), name=f"account-stream-{account.account}"))

    async def stop(self) -> None:
        """Cancel the tasks and close every client."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        await asyncio.gather(*(s.close() for s in self.marks.values()), *(a.close() for a in self.accounts.values()))

    # --- what to watch (after each poll) ---

    def streamed(self, account: str) -> bool:
        """Whether `account`'s marks are streamed."""
        return account in self._venue_of

    def update(self, account: str, symbols: Iterable[str], watches: Iterable[Watch] = ()) -> None:
        """After a poll of `account`: the symbols it holds (their marks are subscribed) and
        its watches, which replace the previous ones (all armed). Ignored for an account
        that is not streamed."""
        self.update_many({account: (symbols, watches)})

    def update_many(self, updates: Mapping[str, tuple[Iterable[str], Iterable[Watch]]]) -> None:
        """`update` for several accounts at once (each venue's tables rebuilt once)."""
        by_venue: dict[VenueKey, dict[str, list[Watch]]] = {}
        for account, (symbols, watches) in updates.items():
            key = self._venue_of.get(account)
            if key is None:
                continue
            listed = list(watches)
            self._held[account] = frozenset(symbols) | {w.symbol for w in listed}
            by_venue.setdefault(key, {})[account] = listed
        for key, watches_by_account in by_venue.items():
            stream = self.marks[key]
            stream.book.replace(watches_by_account)
            stream.set_symbols(
                frozenset().union(*(held for name, held in self._held.items() if self._venue_of[name] == key))
            )

    # --- what the streams show ---

    def mark_stream(self, account: str) -> MarkStream | None:
        key = self._venue_of.get(account)
        return self.marks.get(key) if key else None

    def latest_mark(self, account: str, symbol: str) -> tuple[int, float] | None:
        """(venue time in ms, mark) of the newest streamed mark of `symbol` on `account`'s venue."""
        stream = self.mark_stream(account)
        return stream.latest(symbol) if stream else None

    def states(self) -> list[StreamState]:
        """Every stream's state: the mark streams, then the account streams."""
        return [s.state for s in self.marks.values()] + [a.state for a in self.accounts.values()]

    def describe(self) -> dict[str, Any]:
        return {
            "marks": [s.state.as_dict() for s in self.marks.values()],
            "accounts": {name: a.state.as_dict() for name, a in self.accounts.items()},
        }
