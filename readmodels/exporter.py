"""The Prometheus endpoint of a poller (docs/deploy.md, "Metrics"): `/metrics` over HTTP on
its own thread, the account figures (readmodels.metrics) re-read from the store after each
cycle on another, and the poller's own figures: how long cycles take, when the last one
ended, the failed polls per account.

Both threads keep the event loop free: a scrape never waits on the poller, and a poller
that stopped cycling still answers scrapes, whose last-cycle time and data ages then tell
that it stopped.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from wsgiref.simple_server import WSGIServer

import prometheus_client
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.core import Metric
from prometheus_client.registry import Collector
from sqlalchemy.orm import Session, sessionmaker

from readmodels.metrics import MetricsState, families, read_state
from store.freshness import Staleness

log = logging.getLogger(__name__)

# From one quick venue to a cycle that waits on slow accounts' budgets (seconds).
CYCLE_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0)


class StoreFigures(Collector):
    """The account and delivery figures of the latest read, aged to the moment of the scrape."""

    def __init__(self, clock: Callable[[], datetime]) -> None:
        self.state: MetricsState | None = None  # replaced whole after each read: a scrape sees one read
        self.clock = clock

    def collect(self) -> Iterator[Metric]:
        return families(self.state, self.clock())

    def describe(self) -> Iterator[Metric]:
        return families(None, self.clock())


class MetricsExporter:
    """The metrics of one poller process, in a registry of its own. `accounts` maps each
    account this process watches (by name) to its exchange; `poll_interval_seconds` is
    exported so that rules can scale "no cycle for a while" to it; `channels` are the
    configured alert channels."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        stale_after_seconds: float | Staleness,
        accounts: Mapping[str, str],
        poll_interval_seconds: float,
        channels: Iterable[str] = (),
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        prometheus_client.disable_created_metrics()  # no *_created series: they only double the counters
        self.sessions = sessions
        self.stale_after_seconds = stale_after_seconds
        self.accounts = dict(accounts)
        self.channels = tuple(channels)
        self.clock = clock
        self.registry = CollectorRegistry()
        self.figures = StoreFigures(clock)
        self.registry.register(self.figures)
        self.cycle_seconds = Histogram(
            "marginwatch_poll_cycle_seconds",
            "Seconds one poll cycle over every account took.",
            buckets=CYCLE_BUCKETS,
            registry=self.registry,
        )
        self.last_cycle = Gauge(
            "marginwatch_last_cycle_timestamp_seconds",
            "When the last poll cycle ended (Unix time); 0 before the first one.",
            registry=self.registry,
        )
        self.poll_interval = Gauge(
            "marginwatch_poll_interval_seconds",
            "The configured poll interval: one cycle starts this often.",
            registry=self.registry,
        )
        self.poll_interval.set(poll_interval_seconds)
        self.poll_errors = Counter(
            "marginwatch_account_poll_errors",
            "Failed polls of the account by this process.",
            ["exchange", "account"],
            registry=self.registry,
        )
        self.refresh_failures = Counter(
            "marginwatch_metrics_refresh_failures",
            "Reads of the store for these metrics that failed (the figures shown are then the previous read's).",
            registry=self.registry,
        )
        for name, exchange in self.accounts.items():  # every account's count exists from 0: rate() sees the first
            self.poll_errors.labels(exchange, name)
        self._reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="marginwatch-metrics")
        self._lock = threading.Lock()
        self._waiting: Future[None] | None = None
        self._server: WSGIServer | None = None
        self._thread: threading.Thread | None = None

    def refresh(self) -> None:
        """Read the figures from the store now; a failure is logged and counted, and the
        previous read stays (its data ages keep growing, so it cannot pass for fresh)."""
        try:
            with self.sessions() as session:
                state = read_state(session, self.clock(), self.stale_after_seconds, self.accounts, self.channels)
        except Exception as exc:  # the poller must outlive a bad read; see the docstring
            self.refresh_failures.inc()
            log.warning("metrics: cannot read the store (%s: %s)", type(exc).__name__, exc)
            return
        self.figures.state = state

    def refresh_later(self) -> Future[None]:
        """`refresh` on the exporter's own thread: the caller (the event loop) does not wait.
        A read still waiting to start is not queued twice (it will read the latest), so a
        slow store never piles reads up behind it."""
        with self._lock:
            waiting = self._waiting
            if waiting is not None and not waiting.running() and not waiting.done():
                return waiting
            self._waiting = self._reader.submit(self.refresh)
            return self._waiting

    def observe_cycle(self, seconds: float, failed: Iterable[str]) -> Future[None]:
        """A poll cycle just ended: it took `seconds`, the accounts named in `failed` failed."""
        self.cycle_seconds.observe(seconds)
        self.last_cycle.set(time.time())
        for name in failed:
            if name in self.accounts:
                self.poll_errors.labels(self.accounts[name], name).inc()
        return self.refresh_later()

    def serve(self, host: str, port: int) -> int:
        """Serve /metrics on host:port (port 0: any free one); returns the port."""
        self._server, self._thread = start_http_server(port, addr=host, registry=self.registry)
        return int(self._server.server_port)

    @property
    def port(self) -> int | None:
        """The port /metrics is served on (None when not serving)."""
        return None if self._server is None else int(self._server.server_port)

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            if self._thread is not None:
                self._thread.join(timeout=10)
            self._server = None
        self._reader.shutdown(wait=True)
