"""`--metrics-port` of `marginwatch poll` and `marginwatch demo`: the Prometheus endpoint
beside the poller (readmodels.exporter; docs/deploy.md)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.text import Text

from cli.common import fail, open_store
from config.settings import Config

if TYPE_CHECKING:
    from poller.loop import CycleReport
    from readmodels.exporter import MetricsExporter

MetricsPortOption = Annotated[
    int | None,
    typer.Option(
        "--metrics-port",
        min=0,
        max=65535,
        help="Serve Prometheus metrics at http://HOST:PORT/metrics (HOST: the config's metrics_host, "
        "127.0.0.1 by default; 0: any free port). Default: the config's metrics_port; off when neither is set.",
    ),
]


@contextmanager
def metrics_served(
    settings: Config, port: int | None, console: Console, watched: Callable[[str], bool] = lambda _: True
) -> Iterator[MetricsExporter | None]:
    """The exporter serving while in use (None when metrics are off). `port` overrides the
    config's; `watched` picks the accounts this process polls (its shard)."""
    port = port if port is not None else settings.metrics_port
    if port is None:
        yield None
        return
    from readmodels.exporter import MetricsExporter
    from readmodels.metrics import configured_channels
    from store.freshness import staleness

    accounts = {a.name: a.exchange for a in settings.accounts if watched(a.name)}
    exporter = MetricsExporter(
        open_store(settings),
        staleness(settings),
        accounts,
        settings.poll_interval_seconds,
        configured_channels(settings),
    )
    try:
        bound = exporter.serve(settings.metrics_host, port)
    except OSError as exc:
        exporter.close()
        fail(f"metrics: cannot listen on {settings.metrics_host}:{port} ({exc.strerror or exc})")
    exporter.refresh_later()  # what the store holds already (a restart), before the first cycle ends
    host = f"[{settings.metrics_host}]" if ":" in settings.metrics_host else settings.metrics_host
    console.print(Text(f"metrics: http://{host}:{bound}/metrics"))
    try:
        yield exporter
    finally:
        exporter.close()


def observing(exporter: MetricsExporter | None, then: Callable[[CycleReport], None]) -> Callable[[CycleReport], None]:
    """`then`, after handing each cycle's report to the exporter (when metrics are on)."""
    if exporter is None:
        return then

    def on_cycle(cycle: CycleReport) -> None:
        exporter.observe_cycle(cycle.seconds, cycle.failed)
        then(cycle)

    return on_cycle
