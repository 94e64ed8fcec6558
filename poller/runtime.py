"""Wiring for the long-running commands: the store, one connector per account, the poller,
and clean shutdown on SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable
from datetime import UTC, datetime

from alerts.channels import run_bots
from alerts.outbox import Backoff, run_sender
from config.secrets import credentials
from config.settings import Config, ConfigError
from connectors.account import AccountConnector, SharedMarkets
from connectors.market_data import MarketData
from poller.loop import CycleReport, Poller
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


async def run_poller(
    config: Config,
    *,
    shard: tuple[int, int] | None = None,
    cycles: int | None = None,
    on_cycle: Callable[[CycleReport], None] | None = None,
    stop: asyncio.Event | None = None,
    secrets_file: dict | None = None,
) -> None:
    """Poll until SIGTERM/SIGINT (or `stop`, or `cycles`); the cycle in flight finishes."""
    upgrade(config.database_url)
    sessions = session_factory(make_engine(config.database_url))
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
    poller = Poller(config, sessions, connectors, shard=shard, alerts_wake=wake, markets=markets)
    sender_stop = asyncio.Event()
    backoff = Backoff(config.alerts.retry_base_seconds, config.alerts.retry_cap_seconds)
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
        await poller.close()
        await asyncio.gather(
            *(m.close() for m in {id(m): m for m in markets.values()}.values()), return_exceptions=True
        )
