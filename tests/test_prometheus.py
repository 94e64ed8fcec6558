"""Metrics end to end: a poller watching the demo scenario on the exchange simulator serves
/metrics (through the same wiring as `marginwatch poll --metrics-port`), a real Prometheus
scrapes it every second with a copy of the shipped rules, and its HTTP API is asked what a
fund's Prometheus would see. One Prometheus and one poller for the module; the tests run in
file order, the poller's stop last."""

from __future__ import annotations

import asyncio
import json
import os
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from rich.console import Console

from cli.demo import demo_config, demo_scenario
from cli.metrics import metrics_served, observing
from config.settings import Config, parse_config
from poller.runtime import run_poller
from readmodels.exporter import MetricsExporter
from tests.helpers import SmtpServer, free_port, running_simulator
from tests.prometheus_server import Prometheus, finite, sample_value, tool, wait_until

ROOT = Path(__file__).resolve().parents[1]
RULES = ROOT / "examples" / "prometheus" / "marginwatch-rules.yml"
DASHBOARD = ROOT / "examples" / "grafana" / "marginwatch.json"
INTERVAL = 2.0  # the poller's; "poller stopped" is then 3 × 2 s without a cycle
CRITICAL_ACCOUNT = "okx-near-liquidation"  # 1.8 % from liquidation in the demo scenario
UNSET_WEBHOOK = "MW_TEST_METRICS_WEBHOOK_UNSET"  # never set: that channel's deliveries fail for good


def fast_rules() -> str:
    """The shipped rules with every `for:` at 0 s, so a 1 s evaluation shows them at once
    (their timing is promtool's unit tests' job: examples/prometheus/marginwatch-rules.test.yml)."""
    doc = yaml.safe_load(RULES.read_text())
    for group in doc["groups"]:
        for rule in group["rules"]:
            rule["for"] = "0s"
    return yaml.safe_dump(doc, sort_keys=False)


def poller_config(base_url: str, database_url: str, smtp_port: int, env: pytest.MonkeyPatch) -> Config:
    demo = demo_config(demo_scenario(), base_url, database_url, INTERVAL)
    doc = demo.model_dump(mode="json", by_alias=True, exclude_none=True)
    env.delenv(UNSET_WEBHOOK, raising=False)
    doc["alerts"] = {
        "retry_base_seconds": 0.2,
        "retry_cap_seconds": 0.5,
        "email": {"host": "127.0.0.1", "port": smtp_port, "security": "none", "to": ["risk@example.org"]},
        "webhooks": [{"name": "unset", "url_env": UNSET_WEBHOOK, "format": "json"}],
    }
    doc["metrics_port"] = 0
    return parse_config(doc)


class PollerThread:
    """`run_poller` on its own thread and event loop, handing each cycle to the exporter
    as `marginwatch poll` does; `stop()` ends the polling and leaves the exporter serving."""

    def __init__(self, config: Config, exporter: MetricsExporter) -> None:
        self.config = config
        self.on_cycle = observing(exporter, lambda cycle: None)
        self.ready = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="test-poller", daemon=True)

    def _run(self) -> None:
        async def main() -> None:
            self.loop = asyncio.get_running_loop()
            self.stop_event = asyncio.Event()
            self.ready.set()
            await run_poller(self.config, stop=self.stop_event, on_cycle=self.on_cycle, secrets_file={})

        try:
            asyncio.run(main())
        except BaseException as exc:  # shown by the test that stops it
            self.error = exc

    def start(self) -> None:
        self.thread.start()
        assert self.ready.wait(30)

    def stop(self) -> None:
        if self.thread.is_alive():
            self.loop.call_soon_threadsafe(self.stop_event.set)
            self.thread.join(60)
        assert not self.thread.is_alive(), "the poller did not stop"
        assert self.error is None, f"the poller failed: {self.error!r}"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, module_env: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    tool("prometheus")  # skip (or fail under CI) before starting anything
    tmp = tmp_path_factory.mktemp("prometheus")
    smtp = SmtpServer(free_port())
    smtp.start()
    with running_simulator(demo_scenario()) as sim:
        config = poller_config(sim.base_url, f"sqlite:///{tmp / 'marginwatch.db'}", smtp.port, module_env)
        with metrics_served(config, None, Console(file=open(os.devnull, "w"))) as exporter:
            assert exporter is not None
            port = exporter.port
            poller = PollerThread(config, exporter)
            poller.start()
            prometheus = Prometheus(
                tmp / "server",
                yaml.safe_dump(
                    {
                        "global": {"scrape_interval": "1s", "scrape_timeout": "900ms", "evaluation_interval": "1s"},
                        "rule_files": ["marginwatch-rules.yml"],
                        "scrape_configs": [
                            {"job_name": "marginwatch", "static_configs": [{"targets": [f"127.0.0.1:{port}"]}]}
                        ],
                    }
                ),
                {"marginwatch-rules.yml": fast_rules()},
            )
            prometheus.start()
            try:
                yield {"sim": sim, "config": config, "exporter": exporter, "poller": poller, "prometheus": prometheus}
            finally:
                prometheus.stop()
                poller.stop()
    smtp.stop()


def test_the_critical_demo_account_is_level_2(stack: dict[str, Any]) -> None:
    prometheus: Prometheus = stack["prometheus"]
    [critical] = prometheus.wait_for(
        f'marginwatch_account_level{{account="{CRITICAL_ACCOUNT}"}}', "the critical account's level"
    )
    assert critical["metric"]["exchange"] == "okx"
    assert sample_value(critical) == 2
    # the withdraw-enabled key is refused: the account is not watched (4), never "ok"
    [refused] = prometheus.wait_for('marginwatch_account_level{account="binance-withdraw-key"}', "the refused account")
    assert sample_value(refused) == 4
    # and the rule a fund would page on says so, with the figures in its description
    [alert] = wait_until(
        lambda: (
            prometheus.firing("MarginwatchAccountCritical")
            and [
                a for a in prometheus.firing("MarginwatchAccountCritical") if a["labels"]["account"] == CRITICAL_ACCOUNT
            ]
        ),
        "the critical alert",
    )
    assert alert["labels"]["severity"] == "critical"
    assert re.search(r"Nearest liquidation \d+(\.\d+)?% from the mark", alert["annotations"]["description"])


def test_distance_series_exist_for_every_venue(stack: dict[str, Any]) -> None:
    prometheus: Prometheus = stack["prometheus"]
    venues = {a["venue"] for a in demo_scenario()["accounts"] if a.get("positions")}
    assert venues == {"binanceusdm", "binancecoinm", "bybit", "okx", "hyperliquid"}

    def by_venue(metric: str) -> set[str]:
        return {s["metric"]["exchange"] for s in prometheus.query(f"count by (exchange) ({metric})")}

    wait_until(lambda: by_venue("marginwatch_position_liquidation_distance_ratio") == venues, "position distances")
    assert by_venue("marginwatch_account_liquidation_distance_ratio") == venues
    # one series per open position, each with its symbol and side
    positions = prometheus.query("marginwatch_position_liquidation_distance_ratio")
    expected = sum(len(a.get("positions", [])) for a in demo_scenario()["accounts"])
    assert len(positions) == expected
    assert all(s["metric"]["side"] in ("long", "short") and s["metric"]["symbol"] for s in positions)
    [okx_nearest] = prometheus.query(f'marginwatch_account_liquidation_distance_ratio{{account="{CRITICAL_ACCOUNT}"}}')
    assert 0 < sample_value(okx_nearest) < 0.04  # critical by distance: under 4 % (docs/risk-model.md)


def test_deliveries_by_channel(stack: dict[str, Any]) -> None:
    """The critical accounts' alerts go out by email; the webhook whose URL variable is not
    set fails for good, and that shows as a failed delivery on its channel."""
    prometheus: Prometheus = stack["prometheus"]
    [failed] = prometheus.wait_for(
        'marginwatch_alert_deliveries_failed_total{channel="webhook:unset"} > 0', "a failed webhook delivery"
    )
    assert sample_value(failed) >= 1
    [email] = prometheus.wait_for('marginwatch_alert_deliveries_pending{channel="email"}', "the email queue")
    assert sample_value(email) >= 0
    assert prometheus.query('marginwatch_alert_deliveries_failed_total{channel="email"} > 0') == []
    wait_until(lambda: prometheus.firing("MarginwatchAlertDeliveriesFailed"), "the failed-deliveries alert")


def _dashboard_expressions() -> list[tuple[str, str]]:
    doc = json.loads(DASHBOARD.read_text())
    return [(f"{p['title']} / {t['refId']}", t["expr"]) for p in doc["panels"] for t in p["targets"]]


def test_every_dashboard_expression_returns_data(stack: dict[str, Any]) -> None:
    prometheus: Prometheus = stack["prometheus"]
    doc = json.loads(DASHBOARD.read_text())
    # the template variables: label_values(metric, label) as Grafana asks Prometheus for them
    values: dict[str, list[str]] = {}
    for variable in doc["templating"]["list"]:
        metric, label = re.fullmatch(r"label_values\((.+), (\w+)\)", variable["query"]["query"]).groups()
        metric = metric.replace("$exchange", ".*")
        values[variable["name"]] = prometheus.api(f"label/{label}/values", **{"match[]": metric})
        assert values[variable["name"]], variable["name"]
    assert CRITICAL_ACCOUNT in values["account"]
    # every panel's every query, with "All" selected (as Grafana sends it: the allValue)
    # and then with one exchange and account picked
    for selection in ({"exchange": ".*", "account": ".*"}, {"exchange": "okx", "account": CRITICAL_ACCOUNT}):
        for where, expr in _dashboard_expressions():
            text = expr.replace("$exchange", selection["exchange"]).replace("$account", selection["account"])
            assert "$" not in text, where
            # a rate() needs two scrapes that saw a cycle in between: NaN until then
            samples = wait_until(
                lambda text=text: [s for s in prometheus.query(text) if finite([s])],
                f"finite data for {where}: {text}",
                timeout=30,
            )
            assert finite(samples), (where, samples)


def test_a_closed_position_drops_its_series(stack: dict[str, Any]) -> None:
    prometheus: Prometheus = stack["prometheus"]
    [account] = [a for a in demo_scenario()["accounts"] if a["name"] == "bybit-isolated"]
    kept, closed = account["positions"][0], account["positions"][1]

    def series(symbol: str) -> str:
        return f'marginwatch_position_liquidation_distance_ratio{{account="bybit-isolated",symbol="{symbol}"}}'

    prometheus.wait_for(series(closed["symbol"]), "the position's series before it closes")
    stack["sim"].set_positions("bybit", account["api_key"], [kept])
    wait_until(lambda: prometheus.query(series(closed["symbol"])) == [], "the closed position's series to go", 30)
    assert prometheus.query(series(kept["symbol"]))


def test_a_stopped_poller_trips_poller_stopped(stack: dict[str, Any]) -> None:
    prometheus: Prometheus = stack["prometheus"]
    prometheus.wait_for("marginwatch_last_cycle_timestamp_seconds > 0", "a finished cycle")
    assert prometheus.firing("MarginwatchPollerStopped") == []
    stack["poller"].stop()  # no more cycles; /metrics still answers, as a hung poller's would
    [alert] = wait_until(lambda: prometheus.firing("MarginwatchPollerStopped"), "poller stopped (no cycle)")
    assert alert["labels"]["severity"] == "critical" and alert["labels"]["job"] == "marginwatch"
    assert [sample_value(s) for s in prometheus.query('up{job="marginwatch"}')] == [1]
    # nothing is fresh any more: every watched account reads stale (3), the critical one too
    wait_until(
        lambda: {sample_value(s) for s in prometheus.query("marginwatch_account_level")} == {3.0, 4.0},
        "every account stale or not watched",
        timeout=30,
    )
    # the process gone too: the target is down, and the alert holds
    stack["exporter"].close()
    prometheus.wait_for('up{job="marginwatch"} == 0', "the target down")
    assert prometheus.query("marginwatch_last_cycle_timestamp_seconds") == []
    assert prometheus.firing("MarginwatchPollerStopped")
