"""The watch loop: every interval, fetch every account concurrently, run the engine,
store what came back and what went wrong.

Each account has its own budget (its connector's timeout, retries included); a slow or
broken account delays no other beyond that budget: results that arrive early are
evaluated together (the vectorised engine) and written at once, stragglers as they come.
Writes go through one writer thread in short transactions, so the loop keeps serving the
other fetches. A stop request (SIGTERM/SIGINT) lets the cycle in flight finish.

A database that cannot be written ends no poller: the cycle is reported failed, retried
with backoff, and told through the channels that need no database (poller.outage). The
poller's clock is capped at the database's (a clock running fast never stamps data in
the future), and with several pollers each cycle polls only the accounts this poller
holds the lease of for this interval (poller.membership).
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy.orm import Session, sessionmaker

from alerts.levels import limits_for
from config.settings import AccountConfig, Config
from connectors.errors import ConnectorError, KeyRefused, classify
from connectors.market_data import MarketData
from connectors.permissions import KeyPermissions
from margin.snapshot import parse_snapshot
from poller.aftercare import LiquidationWatch, store_books
from poller.enrich import MarketView, market_view, with_volatility
from poller.heartbeat import Heartbeat
from poller.membership import Membership
from poller.outage import DATABASE_ERRORS, Outage
from poller.report import CycleReport
from poller.rows import Polled, account_rows
from poller.schedule import run_cycles
from poller.shards import in_shard, parse_shard
from poller.startup import start_phase
from poller.streaming import StreamWatch
from store import repo
from store.pollers import database_now

log = logging.getLogger(__name__)

__all__ = ["Connector", "CycleReport", "Poller", "in_shard", "parse_shard"]

# Results that arrive within this long of the first are evaluated in one batch.
BATCH_WINDOW_SECONDS = 0.5
RETENTION_EVERY_SECONDS = 3600.0


class Connector(Protocol):
    async def prepare(self) -> KeyPermissions: ...
    async def fetch_snapshot(self) -> dict[str, Any]: ...
    async def close(self) -> None: ...
    def take_key_check(self) -> KeyPermissions | None: ...
    async def recent_liquidations(self, symbol: str, since: datetime) -> list[dict[str, Any]]: ...


def _document(doc: Mapping[str, Any]) -> str:
    """The snapshot document without the raw exchange payloads (kept small for the store)."""
    slim = {k: v for k, v in doc.items() if k != "info"}
    slim["positions"] = [{k: v for k, v in p.items() if k != "info"} for p in doc.get("positions", [])]
    return json.dumps(slim, allow_nan=False)


class Poller:
    def __init__(
        self,
        config: Config,
        sessions: sessionmaker[Session],
        connectors: Mapping[str, Connector],
        *,
        shard: tuple[int, int] | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        alerts_wake: asyncio.Event | None = None,
        markets: Mapping[str, MarketData] | None = None,
        membership: Membership | None = None,
        heartbeat: Heartbeat | None = None,
        outage: Outage | None = None,
        cap_clock: bool = True,
    ) -> None:
        self.config = config
        self.sessions = sessions
        self.accounts = [a for a in config.accounts if in_shard(a.name, shard) and a.name in connectors]
        self.connectors = connectors
        self.now = now
        self.writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="marginwatch-writer")
        self.ids = repo.ensure_accounts(
            sessions, [repo.AccountInfo(a.name, a.exchange, a.collateral, a.sub_account) for a in self.accounts]
        )
        self.alerts_wake = alerts_wake  # set when alerts are on: wakes the sender
        self.markets = markets or {}  # account name -> its venue's shared market data
        self._views: dict[str, MarketView] = {}
        self._aftercare: list[asyncio.Future[Any]] = []
        self.liquidations = LiquidationWatch(self)
        self._last_retention = 0.0
        self._retry_paused = True  # at start, paused accounts get one more try
        self.membership = membership
        self.heartbeat = heartbeat
        self.outage = outage or Outage(config)
        self._database_offset: float | None = None  # database time - time.monotonic(), seconds
        # off only for tests that move time by hand through `now` (their clock must count)
        self.cap_clock = cap_clock
        self.stream_watch: StreamWatch | None = None  # set by the runtime when streams are on

    def database_clock(self) -> datetime | None:
        """The database's time, estimated from its last reading (None before the first)."""
        if self._database_offset is None:
            return None
        return datetime.fromtimestamp(time.monotonic() + self._database_offset, UTC)

    def clock(self) -> datetime:
        """This poller's time, capped at the database's: a clock that runs fast never
        stamps data in the future (readers would take it for fresh long after)."""
        own = self.now()
        database = self.database_clock()
        return own if database is None or not self.cap_clock else min(own, database)

    async def write(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run `fn` on the one writer thread: SQLite takes one writer at a time, and the
        event loop keeps serving fetches meanwhile."""
        return await asyncio.get_running_loop().run_in_executor(self.writer, fn, *args)

    async def _save_market_stats(self, exchange: str, stats: dict[str, Any]) -> Any:
        return await self.write(repo.upsert_market_stats, self.sessions, exchange, self.clock(), stats)

    async def _poll(self, account: AccountConfig) -> tuple[AccountConfig, Polled | ConnectorError, datetime]:
        started = time.monotonic()
        at = self.clock()
        budget = (account.timeout_seconds or self.config.account_timeout) + 1.0
        try:
            doc = await asyncio.wait_for(self.connectors[account.name].fetch_snapshot(), timeout=budget)
            latency = int((time.monotonic() - started) * 1000)
            view = await self._market_view(account, doc, budget)
            doc = with_volatility(doc, view)
            snapshot = parse_snapshot(doc)
        except Exception as exc:  # every failure is classified and stored; none escapes the poller
            return account, classify(exc), at
        polled = Polled(
            snapshot,
            at,
            self.config.target_for(account),
            latency,
            _document(doc),
            funding=view.funding,
            limits=limits_for(self.config.rules_for(account)),
        )
        return account, polled, at

    async def _market_view(self, account: AccountConfig, doc: Mapping[str, Any], budget: float) -> MarketView:
        """Volatility, betas and funding for the account's symbols (cached per venue); an
        empty view when market data is slow or missing: it enriches a poll, never blocks it."""
        market = self.markets.get(account.name)
        if market is None:
            return MarketView()
        symbols = {p["symbol"] for p in doc.get("positions", [])}
        try:
            view = await asyncio.wait_for(market_view(market, symbols), timeout=budget)
        except Exception as exc:  # see the docstring
            log.warning("%s: market data unavailable: %s", account.label, classify(exc).message)
            return MarketView()
        merged = self._views.get(account.exchange, MarketView())
        self._views[account.exchange] = merged.merged(view)
        return view

    async def cycle(self) -> CycleReport:
        """Poll every active account (of this poller's) once; store snapshots and failures.
        A database that fails a write ends the cycle, reported, never the poller."""
        report = CycleReport(started=self.clock())
        clock = time.monotonic()
        try:
            await self._cycle(report)
            if self.outage.active:  # the database takes writes again: record what was told
                await self.outage.settle()
                told = await self.write(self.outage.record, self.sessions, self.clock())
                if told is not None and self.alerts_wake is not None:
                    self.alerts_wake.set()
        except DATABASE_ERRORS as exc:
            report.database_error = self.outage.failed(exc, self.clock())
        report.seconds = time.monotonic() - clock
        return report

    async def _cycle(self, report: CycleReport) -> None:
        states, owned = await self.write(self._begin)
        mine = [a for a in self.accounts if owned is None or self.ids[a.name] in owned]
        if self.stream_watch is not None:  # a lease gone to another poller: its streams' work too
            self.stream_watch.keep_only({a.name for a in mine})
        due = [a for a in mine if states.get(a.name) == "active" or self._retry_paused]
        report.skipped = [a.name for a in mine if a not in due]
        self._retry_paused = False
        pending = {asyncio.ensure_future(self._poll(a)) for a in due}
        try:
            while pending:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                if pending:  # let the rest of a burst arrive, to evaluate it in one batch
                    more, pending = await asyncio.wait(pending, timeout=BATCH_WINDOW_SECONDS)
                    done |= more
                results = [task.result() for task in done]
                await self._store(results, report)
                await self.alerts_for([account for account, _, _ in results])
        finally:
            for task in pending:  # a failed write ends the cycle: its other polls with it
                task.cancel()
        await self.record_key_checks(due)
        await self.alerts_for([a for a in mine if a not in due])  # repeats, staleness
        await asyncio.gather(*self._aftercare, return_exceptions=True)  # each bounded by its own timeout
        self._aftercare = []
        for exchange, view in self._views.items():
            symbols = set(view.volatility) | set(view.betas) | set(view.funding) | set(view.ticks)
            await self.write(repo.upsert_market_stats, self.sessions, exchange, self.clock(), view.stats(symbols))
        self._views = {}
        if time.monotonic() - self._last_retention >= RETENTION_EVERY_SECONDS:
            self._last_retention = time.monotonic()
            await self.write(repo.apply_retention, self.sessions, self.clock())
        if self.membership is not None:
            await self.write(self.membership.cycle_done)
        await self._digest()

    def _begin(self) -> tuple[dict[str, str], frozenset[int] | None]:
        """The cycle's first transaction: the database's time (the clock's cap), this
        poller seen (a write: a database that cannot take one fails here, before any
        exchange is asked), its accounts for this interval, and the accounts' states."""
        with self.sessions.begin() as session:
            now = database_now(session)
            self._database_offset = now.timestamp() - time.monotonic()
            owned = self.membership.begin(session, now) if self.membership is not None else None
            states = {a.name: a.state for a in repo.accounts(session)}
        return states, owned

    async def _digest(self) -> None:
        """The daily digest, when it is due (once a day, whichever poller gets there)."""
        if self.config.monitor.digest_at is None or self.alerts_wake is None:
            return
        from alerts.digest import send_digest_if_due

        if await self.write(send_digest_if_due, self.sessions, self.config, self.clock()) is not None:
            self.alerts_wake.set()

    async def _store(
        self, results: list[tuple[AccountConfig, Polled | ConnectorError, datetime]], report: CycleReport
    ) -> None:
        good = [(a, r) for a, r, _ in results if isinstance(r, Polled)]
        for (account, polled), (row, positions) in zip(good, account_rows([r for _, r in good]), strict=True):
            previous = await self.liquidations.previous(account)
            await self.write(
                repo.record_snapshot, self.sessions, self.ids[account.name], row, positions, polled.document
            )
            self.liquidations.remember(account, polled.taken_at, positions)
            if self.stream_watch is not None:
                self.stream_watch.polled(account, polled, row, positions)
            report.stored.append(account.name)
            # network look-ups after the write, off the path of the other accounts' writes
            self._aftercare.append(
                asyncio.ensure_future(self.liquidations.check(account, previous, positions, polled.taken_at))
            )
            if row["topup_to_target"] > 0 and account.name in self.markets:
                self._aftercare.append(
                    asyncio.ensure_future(
                        store_books(
                            self.markets[account.name],
                            account,
                            polled,
                            self.config.account_timeout,
                            functools.partial(self._save_market_stats, account.exchange),
                        )
                    )
                )
        for account, error, at in results:
            if isinstance(error, Polled):
                continue
            pause = "refused" if isinstance(error, KeyRefused) else "paused" if error.kind == "permanent" else None
            log.warning("%s: %s", account.label, error.message)
            if self.stream_watch is not None:
                self.stream_watch.forget(account.name)
            await self.write(
                repo.record_failure,
                self.sessions,
                self.ids[account.name],
                at,
                error.kind,
                error.message,
                error.cause,
                pause,
            )
            report.failed[account.name] = error.message

    async def alerts_for(self, accounts: list[AccountConfig]) -> None:
        """Step the alert rules of `accounts` on what was just stored; wake the sender."""
        if self.alerts_wake is None or not accounts:
            return
        from alerts.service import evaluate_account

        for account in accounts:
            notification = await self.write(
                evaluate_account, self.sessions, self.config, account, self.ids[account.name], self.clock()
            )
            if notification is not None:  # the sender starts on it while the others are evaluated
                self.alerts_wake.set()

    async def poll_now(self, accounts: list[AccountConfig]) -> None:
        """Poll `accounts` at once, outside the cycle (a streamed crossing or an account
        change asked for it): stored and alerted on like a cycle's polls."""
        results = list(await asyncio.gather(*(self._poll(a) for a in accounts)))
        await self._store(results, CycleReport(started=self.clock()))
        await self.alerts_for([a for a, _, _ in results])

    async def record_key_checks(self, due: list[AccountConfig]) -> None:
        for account in due:
            check = self.connectors[account.name].take_key_check()
            if check is not None:
                await self.write(
                    repo.record_key_check,
                    self.sessions,
                    self.ids[account.name],
                    self.clock(),
                    check.status,
                    check.can_trade,
                    check.can_withdraw,
                    check.message,
                )

    async def start(self) -> CycleReport:
        """At start, before the first cycle: every key's permissions and every venue's
        markets (poller.startup)."""
        return await start_phase(self)

    async def run(
        self, stop: asyncio.Event, cycles: int | None = None, on_cycle: Callable[[CycleReport], None] | None = None
    ) -> None:
        """Start, then cycle until `stop` is set (or `cycles` have run): poller.schedule."""
        await run_cycles(self, stop, cycles, on_cycle)

    async def close(self) -> None:
        # all at once: each ccxt client waits a moment on close to let connections drain,
        # and 500 of them one after another would hold a stopping poller for minutes
        await asyncio.gather(*(c.close() for c in self.connectors.values()), return_exceptions=True)
        self.writer.shutdown(wait=True)
