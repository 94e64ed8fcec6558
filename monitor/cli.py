"""The `marginwatch` command line."""

from __future__ import annotations

import asyncio
import json
import logging
import math
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer
from rich.console import Console

from margin.report import DEFAULT_TARGET_HEALTH, risk_report
from margin.stress import DEFAULT_SHOCKS
from monitor.config import Config, ConfigError, config_path, load_config
from monitor.inputs import InputError, load_snapshot
from monitor.risk_table import render_risk
from monitor.secrets import credentials

if TYPE_CHECKING:
    from monitor.poller import CycleReport

app = typer.Typer(
    help="marginwatch: how far each account is from liquidation, and what restores it.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


class OutputFormat(StrEnum):
    table = "table"
    json = "json"


def fail(message: str) -> NoReturn:
    """One line on stderr, exit 2: how every bad input ends."""
    print(f"marginwatch: {message}", file=sys.stderr)
    raise typer.Exit(2)


def parse_shocks(text: str | None) -> tuple[float, ...]:
    if text is None:
        return DEFAULT_SHOCKS
    try:
        shocks = tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError:
        fail(f"--shocks: expected comma-separated fractions like -0.2,-0.1,0.1; got {text!r}")
    if not shocks or any(not math.isfinite(s) or s <= -1 for s in shocks):
        fail(f"--shocks: every shock must be a fraction above -1 (e.g. -0.2); got {text!r}")
    return shocks


@app.callback()
def main() -> None:
    """marginwatch: margin-deficit monitor for crypto derivatives accounts."""


@app.command()
def risk(
    snapshot: Annotated[Path, typer.Argument(help="Snapshot JSON file (docs/snapshot-format.md).")],
    target_health: Annotated[
        float, typer.Option(help="Health the remedies aim for (equity / maintenance).")
    ] = DEFAULT_TARGET_HEALTH,
    shocks: Annotated[
        str | None, typer.Option(help="Uniform price shocks, e.g. -0.2,-0.1,0.1.")
    ] = None,
    slippage: Annotated[
        float, typer.Option(help="Slippage rate paid on reductions, beside the taker fee.")
    ] = 0.0,
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


ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config", help="marginwatch.toml (default: $MARGINWATCH_CONFIG, then ./marginwatch.toml)."
    ),
]


def load_or_fail(path: Path | None) -> Config:
    """The validated config, or every problem on its own line and exit 2."""
    try:
        return load_config(config_path(path))
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"marginwatch: {problem}", file=sys.stderr)
        raise typer.Exit(2) from None


@app.command()
def snapshot(
    account: Annotated[str, typer.Option("--account", help="The account's name in the config.")],
    config: ConfigOption = None,
) -> None:
    """Print one account's current snapshot (docs/snapshot-format.md) as JSON."""
    settings = load_or_fail(config)
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
    shard: Annotated[
        str | None, typer.Option(help="i/n: poll only this process's share of the accounts.")
    ] = None,
    cycles: Annotated[int | None, typer.Option(help="Stop after this many cycles.")] = None,
) -> None:
    """Watch every account: poll each interval, store snapshots and errors, until stopped."""
    from monitor.poller import parse_shard
    from monitor.runtime import run_poller

    settings = load_or_fail(config)
    try:
        chosen_shard = parse_shard(shard)
    except ValueError as exc:
        fail(str(exc))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    console = Console(stderr=True)

    def report(cycle: CycleReport) -> None:
        failed = f", {len(cycle.failed)} failed" if cycle.failed else ""
        console.print(f"cycle: {len(cycle.stored)} stored{failed} in {cycle.seconds:.2f} s")

    asyncio.run(run_poller(settings, shard=chosen_shard, cycles=cycles, on_cycle=report))


@app.command()
def status(config: ConfigOption = None) -> None:
    """Every account's latest health, worst first."""
    from monitor.overview import account_views
    from monitor.status_table import render_status
    from store.db import make_engine, session_factory, upgrade

    settings = load_or_fail(config)
    upgrade(settings.database_url)
    sessions = session_factory(make_engine(settings.database_url))
    with sessions() as session:
        views = account_views(session, datetime.now(UTC), settings.stale_after)
    render_status(views, Console())


@app.command()
def demo(
    interval: Annotated[float, typer.Option(help="Poll interval, seconds.")] = 5.0,
    port: Annotated[int, typer.Option(help="Simulator port (0: any free port).")] = 0,
    dashboard_port: Annotated[int, typer.Option(help="Dashboard port on 127.0.0.1.")] = 8501,
    no_dashboard: Annotated[bool, typer.Option("--no-dashboard", help="Poll only; no dashboard.")] = False,
    cycles: Annotated[int | None, typer.Option(help="Stop after this many cycles.")] = None,
) -> None:
    """The product on the built-in exchange simulator, with the dashboard: no API keys needed."""
    from monitor.demo import DEMO_DIR, demo_config, demo_scenario, start_simulator
    from monitor.overview import account_views
    from monitor.runtime import run_poller
    from monitor.status_table import render_status
    from store.db import make_engine, session_factory, upgrade

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    DEMO_DIR.mkdir(exist_ok=True)
    database = DEMO_DIR / "marginwatch.db"
    for stale in DEMO_DIR.glob("marginwatch.db*"):  # every demo starts from an empty history
        stale.unlink()
    scenario = demo_scenario()
    simulator, base_url = start_simulator(scenario, port)
    settings = demo_config(scenario, base_url, f"sqlite:///{database.resolve()}", interval)
    upgrade(settings.database_url)
    console = Console()
    dashboard = None
    if not no_dashboard:
        from app.launch import start_dashboard, wait_until_up, write_config

        log_file = (DEMO_DIR / "dashboard.log").open("wb")
        # run where the demo runs: that folder's .streamlit/ (config, a login if any) applies
        dashboard = start_dashboard(write_config(settings, DEMO_DIR / "marginwatch.toml"), dashboard_port,
                                    cwd=Path.cwd(), stdout=log_file, stderr=subprocess.STDOUT)
    console.print(f"exchange simulator: {base_url}   database: {database}   "
                  f"polling {len(settings.accounts)} accounts every {interval:g} s (Ctrl-C stops)")

    waiting_for_dashboard = dashboard is not None

    def show(cycle: CycleReport) -> None:
        nonlocal waiting_for_dashboard
        with session_factory(make_engine(settings.database_url))() as session:
            views = account_views(session, datetime.now(UTC), settings.stale_after)
        render_status(views, console)
        if waiting_for_dashboard:  # after the first cycle: the dashboard opens on data
            waiting_for_dashboard = False
            try:
                wait_until_up(f"http://127.0.0.1:{dashboard_port}", 60, dashboard)
                console.print(f"[bold]dashboard: http://127.0.0.1:{dashboard_port}[/bold]")
            except (TimeoutError, RuntimeError) as exc:
                console.print(f"[red]dashboard did not start ({exc}); see {DEMO_DIR / 'dashboard.log'}[/red]")

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


@app.command()
def stress(
    config: ConfigOption = None,
    shocks: Annotated[str | None, typer.Option(help="BTC shocks, e.g. -0.05,-0.1,-0.2.")] = None,
) -> None:
    """Every account under BTC shocks (each symbol moved by its beta to BTC): health, who
    liquidates first, and the collateral needed to survive each shock."""
    from margin.correlation import DEFAULT_BTC_SHOCKS
    from monitor.risk_tables import render_stress
    from monitor.risk_views import cross_account_stress

    settings = load_or_fail(config)
    chosen = parse_shocks(shocks) if shocks else DEFAULT_BTC_SHOCKS
    with _store(settings)() as session:
        result = cross_account_stress(session, chosen, settings.target_health)
    if not result.accounts:
        fail("no account has a snapshot yet: run `marginwatch poll` first")
    render_stress(result, Console())


@app.command()
def rebalance(config: ConfigOption = None) -> None:
    """For each owner's accounts: the fewest transfers that bring every one to its target."""
    from monitor.risk_tables import render_rebalance
    from monitor.risk_views import rebalance_plans

    settings = load_or_fail(config)
    with _store(settings)() as session:
        plans = rebalance_plans(session, settings)
    if not plans:
        fail("no owner has two accounts with snapshots: set `owner = \"...\"` on the accounts to group")
    render_rebalance(plans, Console())


alerts_app = typer.Typer(help="Alerts: test the channels, silence accounts.", no_args_is_help=True)
app.add_typer(alerts_app, name="alerts")


def _store(settings: Config):
    from store.db import make_engine, session_factory, upgrade

    upgrade(settings.database_url)
    return session_factory(make_engine(settings.database_url))


@alerts_app.command("test")
def alerts_test(config: ConfigOption = None) -> None:
    """Send a test message through every configured channel."""
    from alerts.senders import DeliveryError, post_webhook, send_email

    settings = load_or_fail(config)
    if not settings.alerts.email and not settings.alerts.webhooks:
        fail("no alert channel configured ([alerts.email] or [[alerts.webhooks]])")
    subject = "TEST · marginwatch · alert channel check"
    text = "This is a test message from marginwatch: this channel delivers alerts.\n"
    failures = 0
    channels: list[tuple[str, Callable[[], None]]] = []
    if settings.alerts.email:
        email_config = settings.alerts.email
        recipients = sorted({r for a in settings.accounts for r in settings.recipients(a)}
                            | set(email_config.to))
        channels.append((f"email to {', '.join(recipients) or 'nobody'}",
                         lambda: send_email(email_config, recipients, subject, text,
                                            f"<p>{text}</p>", message_key="")))
    for hook in settings.alerts.webhooks:
        payload = {"subject": subject, "changes": [], "remedy": [], "text": text}
        channels.append((f"webhook {hook.name}",
                         lambda hook=hook, payload=payload: post_webhook(hook, payload)))
    for name, send in channels:
        try:
            send()
        except DeliveryError as exc:
            failures += 1
            print(f"FAILED  {name}: {exc}")
        else:
            print(f"sent    {name}")
    raise typer.Exit(1 if failures else 0)


@alerts_app.command("silence")
def alerts_silence(
    account: Annotated[str, typer.Option(help="Account name, or 'all'.")],
    minutes: Annotated[float, typer.Option(help="For how long.", min=1)] = 60,
    reason: Annotated[str | None, typer.Option(help="Why (shown on the dashboard).")] = None,
    config: ConfigOption = None,
) -> None:
    """Mute one account (or all) for a while; alert state still advances."""
    from alerts.silences import create_silence

    settings = load_or_fail(config)
    if account != "all" and account not in {a.name for a in settings.accounts}:
        fail(f"--account: no account named {account!r}")
    try:
        silence = create_silence(_store(settings), None if account == "all" else account,
                                 datetime.now(UTC), minutes, reason)
    except ValueError as exc:  # configured but never polled yet
        fail(str(exc))
    print(f"silence {silence.id}: {account} muted until {silence.ends_at:%Y-%m-%d %H:%M} UTC")


@alerts_app.command("unsilence")
def alerts_unsilence(silence_id: int, config: ConfigOption = None) -> None:
    """End a silence now."""
    from alerts.silences import end_silence

    if not end_silence(_store(load_or_fail(config)), silence_id, datetime.now(UTC)):
        fail(f"no active silence {silence_id}")
    print(f"silence {silence_id} ended")


@alerts_app.command("list")
def alerts_list(config: ConfigOption = None) -> None:
    """Alerts firing now, and active silences."""
    from alerts.silences import active_silences, firing

    sessions = _store(load_or_fail(config))
    now = datetime.now(UTC)
    rows = firing(sessions)
    for row in rows:
        print(f"{row.level:<8} {row.account:<30} {row.subject:<40} since {row.since:%Y-%m-%d %H:%M}")
    if not rows:
        print("no alert firing")
    for silence in active_silences(sessions, now):
        print(f"silence {silence.id}: {silence.account or 'all accounts'} until "
              f"{silence.ends_at:%Y-%m-%d %H:%M} UTC ({silence.reason or 'no reason given'})")


db_app = typer.Typer(help="Database schema (Alembic migrations).", no_args_is_help=True)
app.add_typer(db_app, name="db")


@db_app.command("upgrade")
def db_upgrade(config: ConfigOption = None, revision: str = "head") -> None:
    """Create or migrate the schema to `revision`."""
    from store.db import upgrade

    upgrade(load_or_fail(config).database_url, revision)


@db_app.command("downgrade")
def db_downgrade(config: ConfigOption = None, revision: str = "base") -> None:
    """Migrate the schema down to `revision` (base: drop every table)."""
    from store.db import downgrade

    downgrade(load_or_fail(config).database_url, revision)


if __name__ == "__main__":  # pragma: no cover
    app()
