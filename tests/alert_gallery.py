"""Every kind of alert message, made the way the poller makes them: snapshot documents
through the engine's rows into the store (SQLite), alerts.service.evaluate_account on an
injected clock, the outbox to a loopback SMTP server. Used by the message, channel and
browser tests.

The account: Binance USD-M, a cross BTC long (1 contract of 1 BTC at 100, 10 % maintenance:
requirement 10, so the cross health is wallet / 10) and, for the past-liquidation case, an
isolated ETH long (10 contracts of 0.1 ETH)."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

from sqlalchemy import select

from alerts.outbox import deliver_due
from alerts.service import evaluate_account
from config.settings import Config, parse_config
from connectors.errors import RetryPolicy
from margin.snapshot import parse_snapshot
from poller.rows import Polled, account_rows
from store import repo
from store.db import make_engine, session_factory, upgrade
from store.schema import AlertNotification

T0 = datetime(2026, 11, 1, 13, 0, tzinfo=UTC)
BTC = "BTC/USDT:USDT"
ETH = "ETH/USDT:USDT"
STALE_ERROR = (
    "exchange unavailable: binanceusdm GET /fapi/v2/account 503 <html><head><title>503 Service Temporarily "
    "Unavailable</title></head><body><center><h1>503 Service Temporarily Unavailable</h1></center><hr>"
    "<center>nginx</center></body></html> at 2026-11-01T13:01:02.123456+00:00"
)
REFUSED = "key can withdraw funds: refused, the account is not polled; create a read-only key"


def config(smtp_port: int, webhooks: list[dict[str, Any]] | None = None, **alerts: Any) -> Config:
    return parse_config(
        {
            "poll_interval_seconds": 60,
            "alerts": {
                "email": {
                    "host": "127.0.0.1",
                    "port": smtp_port,
                    "security": "none",
                    "from": "marginwatch@example.org",
                    "to": ["desk@example.org"],
                },
                "webhooks": webhooks or [],
                **alerts,
            },
            "accounts": [{"name": "main", "exchange": "binanceusdm", "key_env": "K", "secret_env": "S"}],
        }
    )


def document(health: float, isolated_health: float | None = None) -> dict[str, Any]:
    """The cross pool at `health` (at a BTC mark of 100); with `isolated_health`, an
    isolated ETH long whose own pool is at that health (below 1: past its liquidation)."""
    positions: list[dict[str, Any]] = [
        {
            "symbol": BTC,
            "side": "long",
            "contracts": 1.0,
            "contract_size": 1.0,
            "entry_price": 100.0,
            "mark_price": 100.0,
            "margin_mode": "cross",
            "maintenance_margin_rate": 0.1,
            "amount_step": 0.001,
        }
    ]
    if isolated_health is not None:
        # 1 ETH (10 contracts of 0.1) at 48, entered at 50, 5 % maintenance: requirement 2.4,
        # equity = margin - 2
        positions.append(
            {
                "symbol": ETH,
                "side": "long",
                "contracts": 10.0,
                "contract_size": 0.1,
                "entry_price": 50.0,
                "mark_price": 48.0,
                "margin_mode": "isolated",
                "isolated_margin": 2.0 + 2.4 * isolated_health,
                "maintenance_margin_rate": 0.05,
                "amount_step": 1.0,
            }
        )
    return {
        "exchange": "binanceusdm",
        "account": "main",
        "collateral": "USDT",
        "wallet_balance": 10.0 * health,
        "taker_fee": 0.0005,
        "positions": positions,
    }


class Desk:
    """One account in a fresh store, polled by hand on an injected clock."""

    def __init__(self, path: Path, settings: Config, name: str = "alerts.db") -> None:
        url = f"sqlite:///{path / name}"
        upgrade(url)
        self.sessions = session_factory(make_engine(url))
        self.config = settings
        self.account = settings.accounts[0]
        info = repo.AccountInfo("main", "binanceusdm", "USDT")
        self.id = repo.ensure_accounts(self.sessions, [info])["main"]
        self.now = T0
        # the markets' price ticks, as the poller stores them from the venue's precision
        ticks = {BTC: {"price_tick": 0.01}, ETH: {"price_tick": 0.01}}
        repo.upsert_market_stats(self.sessions, "binanceusdm", T0, ticks)

    def poll(self, doc: dict[str, Any], minutes: float = 1.0) -> int | None:
        """A successful poll `minutes` after the last, then the alert rules."""
        self.now += timedelta(minutes=minutes)
        ((row, positions),) = account_rows([Polled(parse_snapshot(doc), self.now, 1.5)])
        repo.record_snapshot(self.sessions, self.id, row, positions, json.dumps(doc))
        return self.evaluate()

    def fail(self, message: str, minutes: float = 1.0, pause: str | None = None) -> int | None:
        """A failed poll (`pause`: "refused" or "paused" stops polling), then the rules."""
        self.now += timedelta(minutes=minutes)
        kind = "permanent" if pause else "temporary"
        repo.record_failure(self.sessions, self.id, self.now, kind, message, None, pause)
        return self.evaluate()

    def evaluate(self) -> int | None:
        return evaluate_account(self.sessions, self.config, self.account, self.id, self.now)

    def deliver(self) -> dict[str, int]:
        return deliver_due(self.sessions, self.config, lambda: self.now, RetryPolicy(0.01, 0.02))

    def notifications(self) -> list[AlertNotification]:
        with self.sessions() as session:
            return list(session.scalars(select(AlertNotification).order_by(AlertNotification.id)))


def gallery(path: Path, smtp_port: int, webhooks: list[dict[str, Any]] | None = None) -> dict[str, AlertNotification]:
    """One notification of each kind — warning, critical, resolved, stale data, refused key,
    past liquidation — each from its own account history, delivered through the outbox."""
    settings = config(smtp_port, webhooks)
    made: dict[str, AlertNotification] = {}

    desk = Desk(path, settings, "walk.db")
    desk.poll(document(3.0))
    desk.poll(document(1.4))
    assert desk.poll(document(1.4)) is not None  # the 2nd poll under 1.5: WARNING
    assert desk.poll(document(1.08)) is not None  # CRITICAL at once
    for _ in range(3):
        desk.poll(document(3.0))  # the recovery dwell: 3 minutes of polls fitting OK
    assert desk.poll(document(3.0)) is not None
    warning, critical, resolved = desk.notifications()
    made.update(warning=warning, critical=critical, resolved=resolved)
    desk.deliver()

    desk = Desk(path, settings, "stale.db")
    desk.poll(document(3.0))
    desk.fail(STALE_ERROR, minutes=1)
    assert desk.fail(STALE_ERROR, minutes=4) is not None  # stale after 3 intervals
    (made["stale"],) = desk.notifications()
    desk.deliver()

    desk = Desk(path, settings, "refused.db")
    desk.poll(document(3.0))
    assert desk.fail(REFUSED, pause="refused") is not None
    (made["refused"],) = desk.notifications()
    desk.deliver()

    desk = Desk(path, settings, "past.db")
    assert desk.poll(document(1.3, isolated_health=0.94)) is not None
    (made["past_liquidation"],) = desk.notifications()
    desk.deliver()
    return made


class Hook:
    """A webhook receiver on loopback: records the JSON bodies; answers `status` (200)."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.paths: list[str] = []
        self.status = 200
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # the name http.server calls
                length = int(self.headers["Content-Length"])
                hook.bodies.append(json.loads(self.rfile.read(length)))
                hook.paths.append(self.path)
                self.send_response(hook.status)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: object) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def by_path(self, path: str) -> list[dict[str, Any]]:
        return [b for b, p in zip(self.bodies, self.paths, strict=True) if p == path]
