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
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.text import Text

from cli.alert_commands import alerts_app
from cli.common import ConfigOption, fail, load_or_fail, open_store, parse_shocks, prepare_store
from cli.db_commands import db_app
from cli.inputs import InputError, load_snapshot
from cli.report_table import plain, render_risk
from config.secrets import credentials
from config.settings import ConfigError
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
        float, typer.Option(help="Health the remedies aim for (equity / maintenance).")
    ] = DEFAULT_TARGET_HEALTH,
    shocks: Annotated[str | None, typer.Option(help="Uniform price shocks, e.g. -0.2,-0.1,0.1.")] = None,
    slippage: Annotated[float, typer.Option(help="Slippage rate paid on reductions, beside the taker fee.")] = 0.0,
    output: Annotated[
        OutputFormat, typer.Option("--format", help="table (for people) or json (for tools).")
    ] = OutputFormat.table,
) -> None:
    """Health, liquidation prices, top-up, deleverage plan and stress test of a snapshot."""
    if not math.isfinite(target_health) or target_health <= 0:
        fail(f"--target-health: must be a number > 0; got {target_health}")
    if not math.isfinite(slippage) or not 0 <= slippage < 1:
        fail(f"--slippage: must be a fraction in [0, 1); got {slippage}")
    shock_list = parse_shocks(shocks)
    try:
        parsed = load_snapshot(snapshot)
    except InputError as exc:
        fail(str(exc))
    report = risk_report(parsed, target_health, shock_list, slippage)
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
    from connectors.account import AccountConnector  # ccxt is slow to import: only when needed
    from connectors.errors import ConnectorError

    try:
        chosen = settings.account(account)
        creds = credentials(chosen)
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
) -> None:
    """Watch every account: poll each interval, store snapshots and errors, until stopped."""
    from poller.loop import parse_shard
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
        failed = f", {len(cycle.failed)} failed" if cycle.failed else ""
        console.print(f"cycle: {len(cycle.stored)} stored{failed} in {cycle.seconds:.2f} s")

    asyncio.run(run_poller(settings, shard=chosen_shard, cycles=cycles, on_cycle=report))


@app.command()
def status(config: ConfigOption = None) -> None:
    """Every account's latest health, worst first."""
    from cli.status_table import render_status
    from readmodels.accounts import account_views

    settings = load_or_fail(config)
    with open_store(settings)() as session:
        views = account_views(session, datetime.now(UTC), settings.stale_after)
    render_status(views, Console())


@app.command()
def stress(
    config: ConfigOption = None,
    shocks: Annotated[str | None, typer.Option(help="BTC shocks, e.g. -0.05,-0.1,-0.2.")] = None,
) -> None:
    """Every account under BTC shocks (each symbol moved by its beta to BTC): health, who
    liquidates first, and the collateral needed to survive each shock."""
    from cli.portfolio_tables import render_stress
    from margin.correlation import DEFAULT_BTC_SHOCKS
    from readmodels.risk import cross_account_stress

    settings = load_or_fail(config)
    chosen = parse_shocks(shocks) if shocks else DEFAULT_BTC_SHOCKS
    with open_store(settings)() as session:
        result = cross_account_stress(session, chosen, settings.target_health)
    if not result.accounts:
        fail("no account has a snapshot yet: run `marginwatch poll` first")
    render_stress(result, Console())


@app.command()
def rebalance(config: ConfigOption = None) -> None:
    """For each owner's accounts: the fewest transfers that bring every one to its target."""
    from cli.portfolio_tables import render_rebalance
    from readmodels.risk import rebalance_plans

    settings = load_or_fail(config)
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
) -> None:
    """The product on the built-in exchange simulator, with the dashboard: no API keys needed."""
    from cli.demo import DEMO_DIR, demo_config, demo_scenario, start_simulator
    from cli.status_table import render_status
    from poller.runtime import run_poller
    from readmodels.accounts import account_views
    from store.db import make_engine, session_factory

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    DEMO_DIR.mkdir(mode=0o700, exist_ok=True)
    database = DEMO_DIR / "marginwatch.db"
    for stale in DEMO_DIR.glob("marginwatch.db*"):  # every demo starts from an empty history
        stale.unlink()
    scenario = demo_scenario()
    simulator, base_url = start_simulator(scenario, port)
    settings = demo_config(scenario, base_url, f"sqlite:///{database.resolve()}", interval)
    prepare_store(settings)
    console = Console()
    dashboard = None
    if not no_dashboard:
        from cli.dashboard import start_dashboard, wait_until_up
        from config.files import write_config

        log_file = os.fdopen(os.open(DEMO_DIR / "dashboard.log", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb")
        # run where the demo runs: that folder's .streamlit/ (config, a login if any) applies
        dashboard = start_dashboard(
            write_config(settings, DEMO_DIR / "marginwatch.toml"),
            dashboard_port,
            cwd=Path.cwd(),
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    console.print(
        plain(
            f"exchange simulator: {base_url}   database: {database}   "
            f"polling {len(settings.accounts)} accounts every {interval:g} s (Ctrl-C stops)"
        )
    )

    waiting_for_dashboard = dashboard is not None

    def show(cycle: CycleReport) -> None:
        nonlocal waiting_for_dashboard
        if waiting_for_dashboard:  # after the first cycle: the dashboard opens on data
            waiting_for_dashboard = False
            try:
                wait_until_up(f"http://127.0.0.1:{dashboard_port}", 60, dashboard)
                console.print(Text(f"dashboard: http://127.0.0.1:{dashboard_port}", style="bold"))
            except (TimeoutError, RuntimeError) as exc:
                console.print(Text(f"dashboard did not start ({exc}); see {DEMO_DIR / 'dashboard.log'}", style="red"))
        with session_factory(make_engine(settings.database_url))() as session:
            views = account_views(session, datetime.now(UTC), settings.stale_after)
        render_status(views, console)

    try:
        asyncio.run(run_poller(settings, cycles=cycles, on_cycle=show, secrets_file={}))
    finally:
        simulator.stop()
        if dashboard is not None:
            dashboard.terminate()
            try:
                dashboard.wait(10)
            except subprocess.TimeoutExpired:
                dashboard.kill()


if __name__ == "__main__":  # pragma: no cover
    app()
