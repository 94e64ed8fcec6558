"""The watch loop: every interval, fetch every account concurrently, run the engine,
store what came back and what went wrong.

Each account has its own budget (its connector's timeout, retries included); a slow or
broken account delays no other beyond that budget: results that arrive early are
evaluated together (the vectorised engine) and written at once, stragglers as they come.
Writes go through one writer thread in short transactions, so the loop keeps serving the
other fetches. A stop request (SIGTERM/SIGINT) lets the cycle in flight finish.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import zlib
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy.orm import Session, sessionmaker

from config.settings import AccountConfig, Config
from connectors.errors import ConnectorError, KeyRefused, classify
from connectors.market_data import MarketData
from connectors.permissions import KeyPermissions
from margin.snapshot import parse_snapshot
from poller.aftercare import LiquidationWatch, store_books
from poller.enrich import MarketView, market_view, with_volatility
from poller.rows import Polled, account_rows
from store import repo

log = logging.getLogger(__name__)

# Results that arrive within this long of the first are evaluated in one batch.
BATCH_WINDOW_SECONDS = 0.5
RETENTION_EVERY_SECONDS = 3600.0


class Connector(Protocol):
    async def prepare(self) -> KeyPermissions: ...
    async def fetch_snapshot(self) -> dict[str, Any]: ...
    async def close(self) -> None: ...
    def take_key_check(self) -> KeyPermissions | None: ...


@dataclass
class CycleReport:
    """What one cycle did: accounts stored, failed (name -> message), skipped (paused)."""

    started: datetime
    seconds: float = 0.0
    stored: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)


def parse_shard(text: str | None) -> tuple[int, int] | None:
    """ "i/n" (1 <= i <= n) -> (i, n)."""
    if not text:
        return None
    try:
        i, n = (int(part) for part in text.split("/"))
    except ValueError:
        raise ValueError(f"--shard: expected i/n like 1/2, got {text!r}") from None
    if not 1 <= i <= n:
        raise ValueError(f"--shard: need 1 <= i <= n, got {text!r}")
    return i, n


def in_shard(name: str, shard: tuple[int, int] | None) -> bool:
    """Stable across processes and restarts (crc32, not Python's salted hash)."""
    if shard is None:
        return True
    i, n = shard
    return zlib.crc32(name.encode()) % n == i - 1


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

    def retry_paused(self) -> None:
        """Give paused accounts one more try next cycle (as at start: credentials or key
        permissions may have been fixed since)."""
        self._retry_paused = True

    async def write(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run `fn` on the one writer thread: SQLite takes one writer at a time, and the
        event loop keeps serving fetches meanwhile."""
        return await asyncio.get_running_loop().run_in_executor(self.writer, fn, *args)

    def _target(self, account: AccountConfig) -> float:
        return account.target_health or self.config.target_health

    async def _poll(self, account: AccountConfig) -> tuple[AccountConfig, Polled | ConnectorError, datetime]:
        started = time.monotonic()
        at = self.now()
        budget = (account.timeout_seconds or self.config.account_timeout) + 1.0
        try:
            doc = await asyncio.wait_for(self.connectors[account.name].fetch_snapshot(), timeout=budget)
            latency = int((time.monotonic() - started) * 1000)
            view = await self._market_view(account, doc, budget)
            doc = with_volatility(doc, view)
            snapshot = parse_snapshot(doc)
        except Exception as exc:  # every failure is classified and stored; none escapes the poller
            return account, classify(exc), at
        warning = self.config.rules_for(account).warning_below
        polled = Polled(
            snapshot, at, self._target(account), latency, _document(doc), funding=view.funding, warning_health=warning
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
        self._views[account.exchange] = MarketView(
            {**merged.volatility, **view.volatility}, {**merged.betas, **view.betas}, {**merged.funding, **view.funding}
        )
        return view

    async def cycle(self) -> CycleReport:
        """Poll every active account once; store snapshots and failures."""
        report = CycleReport(started=self.now())
        clock = time.monotonic()
        states = await self.write(self._states)
        due = [a for a in self.accounts if states.get(a.name) == "active" or self._retry_paused]
        report.skipped = [a.name for a in self.accounts if a not in due]
        self._retry_paused = False
        pending = {asyncio.ensure_future(self._poll(a)) for a in due}
        while pending:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            if pending:  # let the rest of a burst arrive, to evaluate it in one batch
                more, pending = await asyncio.wait(pending, timeout=BATCH_WINDOW_SECONDS)
                done |= more
            results = [task.result() for task in done]
            await self._store(results, report)
            await self._alerts([account for account, _, _ in results])
        await self._record_key_checks(due)
        await self._alerts([a for a in self.accounts if a not in due])  # repeats, staleness
        await asyncio.gather(*self._aftercare, return_exceptions=True)  # each bounded by its own timeout
        self._aftercare = []
        for exchange, view in self._views.items():
            symbols = set(view.volatility) | set(view.betas) | set(view.funding)
            await self.write(repo.upsert_market_stats, self.sessions, exchange, self.now(), view.stats(symbols))
        self._views = {}
        if time.monotonic() - self._last_retention >= RETENTION_EVERY_SECONDS:
            self._last_retention = time.monotonic()
            await self.write(repo.apply_retention, self.sessions, self.now())
        report.seconds = time.monotonic() - clock
        return report

    def _states(self) -> dict[str, str]:
        with self.sessions() as session:
            return {a.name: a.state for a in repo.accounts(session)}

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
                            lambda stats, exchange=account.exchange: self.write(
                                repo.upsert_market_stats, self.sessions, exchange, self.now(), stats
                            ),
                        )
                    )
                )
        for account, error, at in results:
            if isinstance(error, Polled):
                continue
            pause = "refused" if isinstance(error, KeyRefused) else "paused" if error.kind == "permanent" else None
            log.warning("%s: %s", account.label, error.message)
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

    async def _alerts(self, accounts: list[AccountConfig]) -> None:
        """Step the alert rules of `accounts` on what was just stored; wake the sender."""
        if self.alerts_wake is None or not accounts:
            return
        from alerts.service import evaluate_account

        told = False
        for account in accounts:
            notification = await self.write(
                evaluate_account, self.sessions, self.config, account, self.ids[account.name], self.now()
            )
            told = told or notification is not None
        if told:
            self.alerts_wake.set()

    async def _record_key_checks(self, due: list[AccountConfig]) -> None:
        for account in due:
            check = self.connectors[account.name].take_key_check()
            if check is not None:
                await self.write(
                    repo.record_key_check,
                    self.sessions,
                    self.ids[account.name],
                    self.now(),
                    check.status,
                    check.can_trade,
                    check.can_withdraw,
                    check.message,
                )

    async def start(self) -> CycleReport:
        """At start, before the first cycle: every key's permissions and every venue's
        markets, all at once. A refused or rejected key is stored and its account paused
        now; a passing fault is left to the first cycle."""
        report = CycleReport(started=self.now())
        clock = time.monotonic()

        async def prepare(account: AccountConfig) -> tuple[AccountConfig, ConnectorError | None]:
            connector = self.connectors[account.name]
            budget = (account.timeout_seconds or self.config.account_timeout) * 3
            try:
                permissions = await asyncio.wait_for(connector.prepare(), timeout=budget)
            except Exception as exc:  # classified and stored below; none escapes
                return account, classify(exc)
            return account, KeyRefused(permissions.message) if permissions.status == "refused" else None

        for account, error in await asyncio.gather(*(prepare(a) for a in self.accounts)):
            if error is None or error.kind == "temporary":
                report.stored.append(account.name)
                continue
            pause = "refused" if isinstance(error, KeyRefused) else "paused"
            await self.write(
                repo.record_failure,
                self.sessions,
                self.ids[account.name],
                self.now(),
                error.kind,
                error.message,
                error.cause,
                pause,
            )
            report.failed[account.name] = error.message
        await self._record_key_checks(self.accounts)
        report.seconds = time.monotonic() - clock
        log.info(
            "start: %d keys checked, %d refused or rejected, in %.1f s",
            len(report.stored) + len(report.failed),
            len(report.failed),
            report.seconds,
        )
        return report

    async def run(
        self, stop: asyncio.Event, cycles: int | None = None, on_cycle: Callable[[CycleReport], None] | None = None
    ) -> None:
        """Start, then cycle every poll interval until `stop` is set (or `cycles` have run)."""
        await self.start()
        done = 0
        while not stop.is_set() and (cycles is None or done < cycles):
            started = time.monotonic()
            report = await self.cycle()
            done += 1
            if on_cycle:
                try:
                    on_cycle(report)
                except Exception:
                    # a report that cannot be shown (a display bug, hostile text) must not
                    # stop the watching: it is logged, and the next cycle comes on time
                    log.exception("the cycle report could not be shown")
            wait = self.config.poll_interval_seconds - (time.monotonic() - started)
            if wait > 0 and (cycles is None or done < cycles):
                try:
                    await asyncio.wait_for(stop.wait(), timeout=wait)
                except TimeoutError:
                    pass

    async def close(self) -> None:
        # all at once: each ccxt client waits a moment on close to let connections drain,
        # and 500 of them one after another would hold a stopping poller for minutes
        await asyncio.gather(*(c.close() for c in self.connectors.values()), return_exceptions=True)
        self.writer.shutdown(wait=True)
