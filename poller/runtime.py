"""Wiring for the long-running commands: the store, one connector per account, the poller,
and clean shutdown on SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Callable
from datetime import UTC, datetime

from alerts.channels import run_bots
from alerts.outbox import run_sender
from config.secrets import credentials
from config.settings import Config, ConfigError
from connectors.account import AccountConnector, SharedMarkets
from connectors.errors import RetryPolicy
from connectors.market_data import MarketData
from connectors.streams import Streams
from poller.heartbeat import Heartbeat
from poller.loop import CycleReport, Poller, in_shard
from poller.membership import Membership, SqliteLock, sqlite_file
from poller.outage import DATABASE_ERRORS
from poller.streaming import StreamWatch
from store import repo
from store.db import make_engine, session_factory, upgrade

log = logging.getLogger(__name__)


def build_connectors(
    config: Config, secrets_file: dict | None = None
) -> tuple[dict[str, AccountConnector], dict[str, str]]:
    """A connector per account whose credentials resolve; the others with the reason."""
    connectors: dict[str, AccountConnector] = {}
    problems: dict[str, str] = {}
    shared = SharedMarkets()
    for account in config.accounts:
        try:
            creds = credentials(account, secrets_file)
        except ConfigError as exc:
            problems[account.name] = exc.problems[0]
            continue
        connectors[account.name] = AccountConnector(
            account, creds, budget_seconds=config.account_timeout, shared_markets=shared
        )
    return connectors, problems


def build_market_data(config: Config) -> dict[str, MarketData]:
    """One public market-data client per venue (and simulator URL), shared by its accounts."""
    shared: dict[tuple[str, str | None], MarketData] = {}
    result = {}
    for account in config.accounts:
        key = (account.exchange, account.base_url)
        if key not in shared:
            shared[key] = MarketData(account.exchange, account.base_url, budget_seconds=config.account_timeout)
        result[account.name] = shared[key]
    return result


def build_stream_watch(
    config: Config, poller: Poller, secrets_file: dict | None, shared_markets: SharedMarkets | None
) -> StreamWatch:
    """The streams of the poller's accounts (docs/streaming.md): marks checked against the
    alert prices of each poll, account changes and crossings answered by a re-poll."""
    creds: dict[str, dict[str, str]] = {}
    for account in poller.accounts:
        try:
            creds[account.name] = dict(credentials(account, secrets_file))
        except ConfigError:  # already recorded by build_connectors; its marks are still watched
            continue

    def streams_of(on_crossing: Callable[..., None], on_event: Callable[..., None]) -> Streams:
        return Streams(config.streaming, poller.accounts, creds, on_crossing, on_event, shared_markets=shared_markets)

    return StreamWatch(poller, streams_of, poller.poll_now)


def build_heartbeat(config: Config) -> Heartbeat | None:
    """The configured heartbeat (its URL from the config or from its variable), if any."""
    monitor = config.monitor
    url = monitor.heartbeat_url or (os.environ.get(monitor.heartbeat_url_env) if monitor.heartbeat_url_env else None)
    if monitor.heartbeat_url_env and not url:
        log.error("monitor.heartbeat_url_env: variable %s is not set; no heartbeat", monitor.heartbeat_url_env)
    if not url:
        return None
    return Heartbeat(url, monitor.heartbeat_format, monitor.heartbeat_timeout_seconds)


async def run_poller(
    config: Config,
    *,
    shard: tuple[int, int] | None = None,
    cycles: int | None = None,
    on_cycle: Callable[[CycleReport], None] | None = None,
    stop: asyncio.Event | None = None,
    secrets_file: dict | None = None,
) -> None:
    """Poll until SIGTERM/SIGINT (or `stop`, or `cycles`); the cycle in flight finishes.
    Raises AnotherPoller when another poller already polls this SQLite file (and shard)."""
    database_file = sqlite_file(config.database_url)
    lock = SqliteLock(database_file, shard) if database_file is not None else None
    if lock is not None:
        lock.acquire()
    try:
        await _run(config, shard, cycles, on_cycle, stop, secrets_file, leasing=database_file is None)
    finally:
        if lock is not None:
            lock.release()


async def _run(
    config: Config,
    shard: tuple[int, int] | None,
    cycles: int | None,
    on_cycle: Callable[[CycleReport], None] | None,
    stop: asyncio.Event | None,
    secrets_file: dict | None,
    *,
    leasing: bool,
) -> None:
    upgrade(config.database_url)
    sessions = session_factory(make_engine(config.database_url, config.database_busy_timeout_seconds))
    connectors, problems = build_connectors(config, secrets_file)
    ids = repo.ensure_accounts(
        sessions, [repo.AccountInfo(a.name, a.exchange, a.collateral, a.sub_account) for a in config.accounts]
    )
    now = datetime.now(UTC)
    for name, problem in problems.items():  # not polled, and the reason is shown
        log.error("%s", problem)
        repo.record_failure(sessions, ids[name], now, "permanent", problem, "ConfigError", "paused")
    stop = stop or asyncio.Event()
    wake = asyncio.Event()
    markets = build_market_data(config)
    mine = [ids[a.name] for a in config.accounts if in_shard(a.name, shard) and a.name in connectors]
    membership = Membership(sessions, config.poll_interval_seconds, mine, leasing=leasing)
    heartbeat = build_heartbeat(config)
    shared_markets = next((c.shared_markets for c in connectors.values()), None)
    poller = Poller(
        config,
        sessions,
        connectors,
        shard=shard,
        alerts_wake=wake,
        markets=markets,
        membership=membership,
        heartbeat=heartbeat,
    )
    if config.streaming.enabled:
        poller.stream_watch = build_stream_watch(config, poller, secrets_file, shared_markets)
        await poller.stream_watch.start()
    sender_stop = asyncio.Event()
    backoff = RetryPolicy(config.alerts.retry_base_seconds, config.alerts.retry_cap_seconds)
    sender = asyncio.create_task(
        run_sender(sessions, config, sender_stop, wake, lambda: datetime.now(UTC), backoff=backoff)
    )
    bots = asyncio.create_task(run_bots(sessions, config, sender_stop))  # Telegram commands, if configured
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):  # not the main thread, or not POSIX
            pass
    try:
        await poller.run(stop, cycles=cycles, on_cycle=on_cycle)
    finally:
        sender_stop.set()
        wake.set()
        await sender
        await bots
        if poller.stream_watch is not None:
            await poller.stream_watch.stop()
        await poller.close()
        await poller.outage.settle()  # monitor alerts on their way go out before the process ends
        try:
            await asyncio.to_thread(membership.stop)
        except DATABASE_ERRORS as exc:  # stopping with the database down: the leases expire by themselves
            log.warning("could not record the stop: %s", exc)
        if heartbeat is not None:
            await heartbeat.close()
        await asyncio.gather(
            *(m.close() for m in {id(m): m for m in markets.values()}.values()), return_exceptions=True
        )
