"""The poller's side of the streams (docs/streaming.md): after each poll, an account's alert
prices become watches on its venue's mark stream; a streamed mark that crosses one is
turned at once into an estimate (the last poll's positions at the streamed marks, stored
and alerted on like a poll, marked "from mark price; positions as of ...") and into an
immediate re-poll that confirms it with fresh positions. Position and balance changes, and
an account stream's gap, trigger a re-poll too. Polling stays the source of truth.

Only the levels above the account's current one are watched (a watch already crossed
would fire at once); the re-poll that follows a crossing sets new watches. Estimates and
re-polls are batched: a cascade that crosses many accounts at once makes one engine pass
and one transaction for their estimates, and one batch of re-polls a second later.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from config.settings import AccountConfig
from connectors.streams import AccountEvent, Crossing, Streams, Watch
from margin.snapshot import parse_snapshot
from poller.outage import DATABASE_ERRORS
from poller.rows import Polled, account_rows
from store import repo
from store.stream_states import replace_states

if TYPE_CHECKING:
    from poller.loop import Poller

log = logging.getLogger(__name__)

# at most one batch of re-polls a second; the first waits as long after its crossing, so the
# alerts of a cascade go out before the confirming polls take the processor
REPOLL_EVERY_SECONDS = 1.0
FLUSH_EVERY_SECONDS = 2.0  # stream states written to the store this often
LEVEL_OF = {"warning": 1, "critical": 2, "liquidation": 3}


def watches_of(account: str, level: int, positions: Sequence[Mapping[str, Any]]) -> list[Watch]:
    """The watches of one account's stored position rows: for each level above `level`
    (the account's current risk level), the band its symbol's mark may move in before
    the pool enters that level (its alert prices, both sides)."""
    found: dict[tuple[str, str, float | None, float | None], Watch] = {}
    for p in positions:
        mark = p["mark_price"]
        for label, rank in LEVEL_OF.items():
            if rank <= level:
                continue
            low, high = p.get(f"{label}_price_down"), p.get(f"{label}_price_up")
            low = low if low is not None and low < mark else None
            high = high if high is not None and high > mark else None
            if low is None and high is None:
                continue
            key = (p["symbol"], label, low, high)
            found.setdefault(key, Watch(account, p["symbol"], low, high, label))
    return list(found.values())


def with_marks(document: str, marks: Mapping[str, tuple[int, float]], polled_at: datetime) -> tuple[dict, datetime]:
    """The polled snapshot document with each position's mark replaced by its newest
    streamed mark (venue ms, price) when that is newer than the poll; and the time of the
    newest mark used (the estimate's time)."""
    doc = json.loads(document)
    newest = polled_at
    for position in doc.get("positions", []):
        streamed = marks.get(position["symbol"])
        if streamed is None:
            continue
        at = datetime.fromtimestamp(streamed[0] / 1000, UTC)
        if at > polled_at:
            position["mark_price"] = streamed[1]
            newest = max(newest, at)
    return doc, newest


class StreamWatch:
    """Streams for one poller: `polled` after each stored poll, `start`/`stop` around the
    run. `repoll(accounts)` is the poller's immediate poll of some accounts."""

    def __init__(
        self,
        poller: Poller,
        streams_of: Callable[[Callable[[Crossing], None], Callable[[AccountEvent], None]], Streams],
        repoll: Callable[[list[AccountConfig]], Awaitable[None]],
        *,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.poller = poller
        self.streams = streams_of(self.on_crossing, self.on_account_event)
        self._repoll_now = repoll
        self._wall_clock = wall_clock
        self._accounts = {a.name: a for a in poller.accounts}
        self._mine: set[str] = set(self._accounts)  # held this interval (poller.membership)
        self._last: dict[str, Polled] = {}
        self._crossed: set[str] = set()  # accounts waiting for an estimate
        self._estimator: asyncio.Task[None] | None = None
        self._wanted: set[str] = set()  # accounts waiting for a re-poll
        self._repoller: asyncio.Task[None] | None = None
        self._last_repoll = -1e9  # time.monotonic() of the last batch (or of a crossing)
        self._flusher: asyncio.Task[None] | None = None
        self.crossings = 0
        self.estimates = 0
        self.repolls = 0

    # --- lifecycle ---

    async def start(self) -> None:
        await self.streams.start()
        self._flusher = asyncio.create_task(self._flush_forever(), name="stream-states")

    async def stop(self) -> None:
        tasks = [t for t in (self._estimator, self._repoller) if t is not None]
        if self._flusher is not None:
            tasks.append(self._flusher)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.streams.stop()

    # --- after a poll ---

    def polled(
        self, account: AccountConfig, polled: Polled, row: Mapping[str, Any], positions: Sequence[Mapping]
    ) -> None:
        """A poll of `account` was stored: keep it (the base of estimates) and set its watches."""
        if not self.streams.streamed(account.name) or polled.document is None:
            return
        self._last[account.name] = polled
        level = int(row.get("level") or 0)
        symbols = {p["symbol"] for p in positions}
        self.streams.update(account.name, symbols, watches_of(account.name, level, positions))

    def forget(self, account: str) -> None:
        """A failed or refused poll: no estimates from a poll that may no longer hold."""
        self._last.pop(account, None)
        if self.streams.streamed(account):
            self.streams.update(account, (), ())

    def keep_only(self, names: set[str]) -> None:
        """This poller's accounts for this interval (leases): the others are forgotten, so a
        crossing of an account another poller now holds is neither estimated nor re-polled here."""
        self._mine = names
        for name in [n for n in self._last if n not in names]:
            self.forget(name)

    # --- stream callbacks (synchronous, in the stream's receive path: never block) ---

    def on_crossing(self, crossing: Crossing) -> None:
        self.crossings += 1
        log.info(
            "%s: %s mark %s crossed its %s %s price",
            crossing.account,
            crossing.symbol,
            crossing.mark,
            crossing.watch.label,
            crossing.bound,
        )
        if crossing.account not in self._accounts or crossing.account not in self._mine:
            return
        self._crossed.add(crossing.account)
        if self._estimator is None or self._estimator.done():
            self._estimator = asyncio.create_task(self._estimate_crossed(), name="stream-estimates")

    def on_account_event(self, event: AccountEvent) -> None:
        last = self._last.get(event.account)
        # not polled yet (the cycle will), or a change the last poll already saw
        if last is None or event.received_at <= last.taken_at.timestamp():
            return
        self._want_repoll([event.account])

    # --- the work ---

    async def _estimate_crossed(self) -> None:
        """Estimate every crossed account, those crossed meanwhile in the next round (a
        cascade crosses many accounts at once: one engine pass and one transaction for
        them all); then re-poll each."""
        while self._crossed:
            names = sorted(self._crossed)
            self._crossed.clear()
            try:
                await self._estimate(names)
            except asyncio.CancelledError:
                raise
            except DATABASE_ERRORS as exc:
                log.warning("the store refused streamed estimates: %s", exc)
            except Exception:  # logged with its trace; the streams and the polls go on
                log.exception("streamed estimates failed for %s", ", ".join(names))
            # the confirming re-polls a second from now: the alerts first
            self._last_repoll = max(self._last_repoll, time.monotonic())
            self._want_repoll(names)

    async def _estimate(self, names: Sequence[str]) -> None:
        """The last polls' positions at the streamed marks, stored and alerted on now."""
        estimates = []
        for name in names:
            last = self._last.get(name)
            if last is None or last.document is None:
                continue
            marks = {
                p.symbol: mark
                for p in last.snapshot.positions
                if (mark := self.streams.latest_mark(name, p.symbol)) is not None
            }
            doc, mark_time = with_marks(last.document, marks, last.taken_at)
            now = self.poller.clock()
            estimates.append(
                (
                    name,
                    replace(
                        last,
                        snapshot=parse_snapshot(doc),
                        taken_at=min(mark_time, now) if mark_time > last.taken_at else now,
                        latency_ms=None,
                        document=json.dumps(doc, allow_nan=False),
                        source="mark_stream",
                        positions_as_of=last.taken_at,
                    ),
                )
            )
        if not estimates:
            return
        rows = account_rows([e for _, e in estimates])
        ids = self.poller.ids
        stored = await self.poller.write(
            repo.record_estimates,
            self.poller.sessions,
            [
                (ids[name], row, positions, e.document)
                for (name, e), (row, positions) in zip(estimates, rows, strict=True)
            ],
        )
        self.estimates += len(stored)
        done = set(stored)
        await self.poller.alerts_for([self._accounts[name] for name, _ in estimates if ids[name] in done])

    def _want_repoll(self, names: Iterable[str]) -> None:
        self._wanted.update(n for n in names if n in self._accounts and n in self._mine)
        if self._wanted and (self._repoller is None or self._repoller.done()):
            self._repoller = asyncio.create_task(self._repoll_wanted(), name="stream-repolls")

    async def _repoll_wanted(self) -> None:
        """Re-poll the accounts that asked, together (one engine pass), at most one batch a
        second; those asking meanwhile go in the next batch."""
        while self._wanted:
            wait = self._last_repoll + REPOLL_EVERY_SECONDS - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            names = sorted(self._wanted)
            self._wanted.clear()
            self._last_repoll = time.monotonic()
            self.repolls += len(names)
            try:
                await self._repoll_now([self._accounts[n] for n in names])
            except asyncio.CancelledError:
                raise
            except DATABASE_ERRORS as exc:
                log.warning("the store refused a re-poll: %s", exc)
            except Exception:  # logged with its trace; the streams and the polls go on
                log.exception("re-poll failed for %s", ", ".join(names))

    # --- states for the dashboard ---

    async def _flush_forever(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_EVERY_SECONDS)
            try:
                await self.flush()
            except DATABASE_ERRORS as exc:
                log.warning("stream states not stored: %s", exc)

    async def flush(self) -> None:
        await self.poller.write(replace_states, self.poller.sessions, self.state_rows(), self.poller.clock())

    def state_rows(self) -> list[dict[str, Any]]:
        """One row per mark stream, per account stream, and per streamed account (its
        newest streamed mark and its venue stream's health)."""
        rows: list[dict[str, Any]] = []

        def stamp(seconds: float | None) -> datetime | None:
            return None if seconds is None else datetime.fromtimestamp(seconds, UTC)

        def row(name: str, kind: str, account_id: int | None, state: Any, **extra: Any) -> dict[str, Any]:
            return {
                "name": name,
                "kind": kind,
                "account_id": account_id,
                "connected": bool(state.connected),
                "stale": bool(state.stale),
                "last_message_at": stamp(state.last_message_at),
                "connected_at": stamp(state.connected_at),
                "reconnects": state.reconnects,
                "messages": state.messages,
                "dropped": state.dropped,
                "last_error": state.last_error,
                **extra,
            }

        for (exchange, base_url), venue in self.streams.marks.items():
            rows.append(row(f"venue:{exchange}" + (f"@{base_url}" if base_url else ""), "marks", None, venue.state))
        for name, account_stream in self.streams.accounts.items():
            rows.append(row(f"account:{name}", "account", self.poller.ids.get(name), account_stream.state))
        for name in self._accounts:
            stream = self.streams.mark_stream(name)
            if stream is None:
                continue
            held = self._last.get(name)
            times = [
                mark[0] / 1000
                for p in (held.snapshot.positions if held else ())
                if (mark := self.streams.latest_mark(name, p.symbol)) is not None
            ]
            latest = max(times) if times else None
            rows.append(
                row(f"marks:{name}", "marks", self.poller.ids.get(name), stream.state, last_message_at=stamp(latest))
            )
        return rows
