"""The `marginwatch` command line."""

from __future__ import annotations

import asyncio
import json
import logging
import math
import os
import subprocess
import sys
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.text import Text

from alerts.levels import limits_for
from cli.alert_commands import alerts_app
from cli.common import ConfigOption, fail, load_or_fail, open_store, optional_config, parse_shocks, prepare_store
from cli.db_commands import db_app
from cli.inputs import InputError, load_snapshot
from cli.metrics import MetricsPortOption, metrics_served, observing
from cli.report_table import render_risk
from config.secrets import credentials, load_secrets_file
from config.settings import ConfigError, config_path
from margin.danger import DangerLimits
from margin.report import DEFAULT_TARGET_HEALTH, risk_report

if TYPE_CHECKING:
    from poller.loop import CycleReport

app = typer.Typer(
    help="marginwatch: how far each account is from liquidation, and what restores it.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


class OutputFormat(StrEnum):
    table = "table"
    json = "json"


app.add_typer(alerts_app, name="alerts")
app.add_typer(db_app, name="db")


@app.callback()
def main() -> None:
    """marginwatch: margin-deficit monitor for crypto derivatives accounts."""


@app.command()
def risk(
    snapshot: Annotated[Path, typer.Argument(help="Snapshot JSON file (docs/snapshot-format.md).")],
    target_health: Annotated[
        float | None,
        typer.Option(
            help="Health the remedies aim for (equity / maintenance, > 1). Default: the account's "
            "target in the config (matched by the snapshot's account name), else the config's, else "
            f"{DEFAULT_TARGET_HEALTH:g}."
        ),
    ] = None,
    shocks: Annotated[str | None, typer.Option(help="Uniform price shocks, e.g. -0.2,-0.1,0.1.")] = None,
    slippage: Annotated[float, typer.Option(help="Slippage rate paid on reductions, beside the taker fee.")] = 0.0,
    output: Annotated[
        OutputFormat, typer.Option("--format", help="table (for people) or json (for tools).")
    ] = OutputFormat.table,
    config: ConfigOption = None,
) -> None:
    """Risk level, liquidation prices (both sides), top-up, deleverage plan and stress test of a
    snapshot, with the target and thresholds of its account in the config (if there is one)."""
    if target_health is not None and (not math.isfinite(target_health) or target_health <= 1):
        fail(f"--target-health: must be a number > 1 (health 1 is liquidation); got {target_health}")
    if not math.isfinite(slippage) or not 0 <= slippage < 1:
        fail(f"--slippage: must be a fraction in [0, 1); got {slippage}")
    shock_list = parse_shocks(shocks)
    try:
        parsed = load_snapshot(snapshot)
    except InputError as exc:
        fail(str(exc))
    settings = optional_config(config)
    target = target_health
    limits = DangerLimits()
    if settings is not None:
        target = target or settings.target_for(parsed.account)
        limits = limits_for(settings.rules_named(parsed.account))
    report = risk_report(parsed, target or DEFAULT_TARGET_HEALTH, shock_list, slippage, limits)
    if output is OutputFormat.json:
        print(json.dumps(report, indent=2, allow_nan=False))
    else:
        render_risk(report, Console())


@app.command()
def snapshot(
    account: Annotated[str, typer.Option("--account", help="The account's name in the config.")],
    config: ConfigOption = None,
) -> None:
    """Print one account's current snapshot (docs/snapshot-format.md) as JSON."""
    settings = load_or_fail(config, polling=True)
    from cli.demo import demo_secrets
    from connectors.account import AccountConnector  # ccxt is slow to import: only when needed
    from connectors.errors import ConnectorError

    try:
        chosen = settings.account(account)
        # the running demo's made-up keys for its own config (cli.demo.demo_secrets)
        demo = demo_secrets(config_path(config), chosen)
        creds = credentials(chosen, {**load_secrets_file(), **demo} if demo else None)
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"marginwatch: {problem}", file=sys.stderr)
        raise typer.Exit(2) from None

    async def fetch() -> dict:
        connector = AccountConnector(chosen, creds, budget_seconds=settings.account_timeout)
        try:
            return await connector.fetch_snapshot()
        finally:
            await connector.close()

    try:
        doc = asyncio.run(fetch())
    except ConnectorError as exc:
        print(f"marginwatch: {chosen.label}: {exc.message}", file=sys.stderr)
        raise typer.Exit(1) from None
    print(json.dumps(doc, indent=2, allow_nan=False))


@app.command()
def poll(
    config: ConfigOption = None,
    shard: Annotated[str | None, typer.Option(help="i/n: poll only this process's share of the accounts.")] = None,
    cycles: Annotated[int | None, typer.Option(help="Stop after this many cycles.")] = None,
    metrics_port: MetricsPortOption = None,
) -> None:
    """Watch every account: poll each interval, store snapshots and errors, until stopped."""
    from poller.loop import in_shard, parse_shard
    from poller.runtime import run_poller

    settings = load_or_fail(config, polling=True)
    try:
        chosen_shard = parse_shard(shard)
    except ValueError as exc:
        fail(str(exc))
    prepare_store(settings)  # a database that cannot be opened: one line, before any poll
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    console = Console(stderr=True)

    def report(cycle: CycleReport) -> None:
        console.print(f"cycle: {cycle.summary} in {cycle.seconds:.2f} s", markup=False)

    from poller.membership import AnotherPoller

    try:
        with metrics_served(settings, metrics_port, console, lambda name: in_shard(name, chosen_shard)) as exporter:
            asyncio.run(run_poller(settings, shard=chosen_shard, cycles=cycles, on_cycle=observing(exporter, report)))
    except AnotherPoller as exc:
        fail(str(exc))


@app.command()
def watchdog(config: ConfigOption = None) -> None:
    """Alert when no poller has completed a cycle for `monitor.watchdog_after_intervals`
    intervals, and when one does again; a database it cannot read is an alert too."""
    from poller.outage import DATABASE_ERRORS
    from poller.watchdog import run_watchdog
    from store.db import make_engine, session_factory, upgrade

    settings = load_or_fail(config)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        upgrade(settings.database_url)
    except DATABASE_ERRORS as exc:  # the watchdog's loop tells this; it does not end here
        logging.getLogger("marginwatch.watchdog").error("cannot migrate the database: %s", exc)
    from sqlalchemy.pool import NullPool

    # a fresh connection each look (a database replaced or restarted is seen as it is now),
    # and a bounded wait for a server that does not answer
    connect: dict[str, Any] = {"connect_args": {"connect_timeout": 5}} if "postgres" in settings.database_url else {}
    sessions = session_factory(make_engine(settings.database_url, poolclass=NullPool, **connect))

    async def main() -> None:
        import signal

        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await run_watchdog(settings, sessions, stop, lambda: datetime.now(UTC))

    asyncio.run(main())


@app.command()
def status(
    config: ConfigOption = None,
    output: Annotated[
        OutputFormat, typer.Option("--format", help="table (for people) or json (for tools).")
    ] = OutputFormat.table,
) -> None:
    """Every account's risk level, worst first: level, chance of liquidation in 24 h,
    nearest liquidation (distance, σ, side), health."""
    settings = load_or_fail(config)
    from cli.status_table import render_status
    from readmodels.accounts import account_views, status_document
    from store.freshness import staleness

    with open_store(settings)() as session:
        views = account_views(session, datetime.now(UTC), staleness(settings))
    if output is OutputFormat.json:
        print(json.dumps(status_document(views), indent=2, allow_nan=False))
    else:
        render_status(views, Console())


@app.command()
def stress(
    config: ConfigOption = None,
    shocks: Annotated[str | None, typer.Option(help="BTC shocks, e.g. -0.05,-0.1,-0.2.")] = None,
) -> None:
    """Every account under BTC shocks (each symbol moved by its beta to BTC): health, who
    liquidates first, and the collateral needed to survive each shock."""
    settings = load_or_fail(config)  # before the heavy imports: a bad config answers at once
    from cli.portfolio_tables import render_stress
    from margin.correlation import DEFAULT_BTC_SHOCKS
    from readmodels.risk import cross_account_stress

    chosen = parse_shocks(shocks) if shocks else DEFAULT_BTC_SHOCKS
    with open_store(settings)() as session:
        result = cross_account_stress(session, chosen, settings.target_health)
    if not result.accounts:
        fail("no account has a snapshot yet: run `marginwatch poll` first")
    bands = {}
    for name in result.accounts:
        rules = settings.rules_named(name)
        bands[name] = {"critical_health": rules.critical_below, "warning_health": rules.warning_below}
    currencies = {a.name: a.collateral for a in settings.accounts}
    render_stress(result, Console(), bands, currencies)


@app.command()
def rebalance(config: ConfigOption = None) -> None:
    """For each owner's accounts: the fewest transfers that bring every one to its target."""
    settings = load_or_fail(config)
    from cli.portfolio_tables import render_rebalance
    from readmodels.risk import rebalance_plans

    with open_store(settings)() as session:
        plans = rebalance_plans(session, settings)
    if not plans:
        fail('no owner has two accounts with snapshots: set `owner = "..."` on the accounts to group')
    render_rebalance(plans, Console())


@app.command()
def demo(
    interval: Annotated[float, typer.Option(help="Poll interval, seconds.")] = 5.0,
    port: Annotated[int, typer.Option(help="Simulator port (0: any free port).")] = 0,
    dashboard_port: Annotated[int, typer.Option(help="Dashboard port on 127.0.0.1.")] = 8501,
    no_dashboard: Annotated[bool, typer.Option("--no-dashboard", help="Poll only; no dashboard.")] = False,
    cycles: Annotated[int | None, typer.Option(help="Stop after this many cycles.")] = None,
    metrics_port: MetricsPortOption = None,
) -> None:
    """The product on the built-in exchange simulator, with the dashboard: no API keys needed."""

    from cli.demo import DEMO_DIR, demo_config, demo_scenario, start_simulator, write_demo_secrets
    from cli.status_table import render_status
    from config.files import write_config
    from poller.runtime import run_poller
    from readmodels.accounts import account_views
    from store.db import make_engine, session_factory
    from store.freshness import staleness

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    DEMO_DIR.mkdir(mode=0o700, exist_ok=True)
    database = DEMO_DIR / "marginwatch.db"
    for stale in DEMO_DIR.glob("marginwatch.db*"):  # every demo starts from an empty history
        stale.unlink()
    scenario = demo_scenario()
    simulator, base_url = start_simulator(scenario, port)
    settings = demo_config(scenario, base_url, f"sqlite:///{database.resolve()}", interval)
    prepare_store(settings)
    # the CLI in another terminal finds this config by itself (config.settings.config_path)
    config_file = write_config(settings, DEMO_DIR / "marginwatch.toml")
    write_demo_secrets(settings)  # `marginwatch snapshot --account` in another terminal
    console = Console()
    # the watchdog beside the poller, as in production: it tells when the poller goes silent
    watchdog_process = subprocess.Popen(  # noqa: S603 - our own CLI, with our config
        [sys.executable, "-m", "cli.main", "watchdog", "--config", str(config_file)],
        stdout=(DEMO_DIR / "watchdog.log").open("wb"),
        stderr=subprocess.STDOUT,
    )
    dashboard = None
    if not no_dashboard:
        from cli.dashboard import start_dashboard, wait_until_up

        log_file = os.fdopen(os.open(DEMO_DIR / "dashboard.log", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb")
        # run where the demo runs: that folder's .streamlit/ (config, a login if any) applies
        dashboard = start_dashboard(
            config_file, dashboard_port, cwd=Path.cwd(), stdout=log_file, stderr=subprocess.STDOUT
        )
    console.print(
        Text(
            f"exchange simulator: {base_url}   database: {database}   "
            f"polling {len(settings.accounts)} accounts every {interval:g} s, watchdog on (Ctrl-C stops)\n"
            f"In another terminal, from this folder: .venv/bin/marginwatch status (or alerts list, "
            f"stress, rebalance, snapshot --account binance-main, risk examples/demo-snapshot.json); "
            f"they find {config_file} by themselves (or give --config {config_file})"
        )
    )
    engine = make_engine(settings.database_url)

    waiting_for_dashboard = dashboard is not None

    def show(cycle: CycleReport) -> None:
        nonlocal waiting_for_dashboard
        with session_factory(engine)() as session:
            views = account_views(session, datetime.now(UTC), staleness(settings))
        render_status(views, console)
        if waiting_for_dashboard:  # after the first cycle: the dashboard opens on data
            waiting_for_dashboard = False
            try:
                wait_until_up(f"http://127.0.0.1:{dashboard_port}", 60, dashboard)
                console.print(Text(f"dashboard: http://127.0.0.1:{dashboard_port}", style="bold"))
            except (TimeoutError, RuntimeError) as exc:
                console.print(Text(f"dashboard did not start ({exc}); see {DEMO_DIR / 'dashboard.log'}", style="red"))

    try:
        with metrics_served(settings, metrics_port, console) as exporter:
            asyncio.run(run_poller(settings, cycles=cycles, on_cycle=observing(exporter, show), secrets_file={}))
    finally:
        simulator.stop()
        watchdog_process.terminate()
        try:
            watchdog_process.wait(10)
        except subprocess.TimeoutExpired:
            watchdog_process.kill()
        if dashboard is not None:
            dashboard.terminate()
            try:
                dashboard.wait(10)
            except subprocess.TimeoutExpired:
                dashboard.kill()


if __name__ == "__main__":  # pragma: no cover
    app()
