"""Risk intelligence through the whole pipe: the simulator's candles, funding and
liquidation history reach the store through ccxt, the engine and the poller."""

from __future__ import annotations

import asyncio
import json
import math
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from alerts.outbox import deliver_due
from config.settings import parse_config
from connectors.errors import RetryPolicy
from poller.loop import Poller
from poller.runtime import build_connectors, build_market_data
from simulator import ExchangeSimulator
from store import repo
from store.db import make_engine, session_factory, upgrade
from store.schema import PositionSnapshot
from tests.alert_scenario import write_toml
from tests.helpers import SmtpServer, keyed_account, run_cli, running_simulator

SCENARIO = Path(__file__).parent / "fixtures" / "simulator" / "market_scenario.json"
CREDS = {
    "binanceusdm": ("bn-mkt-key", "bn-mkt-secret", None),
    "bybit": ("by-mkt-key", "by-mkt-secret", None),
    "okx": ("ok-mkt-key", "ok-mkt-secret", "ok-mkt-pass"),
}


@pytest.fixture
def sim() -> Iterator[ExchangeSimulator]:
    with running_simulator(json.loads(SCENARIO.read_text())) as simulator:
        yield simulator


def _config_doc(sim: ExchangeSimulator, db: str, smtp_port: int, env: pytest.MonkeyPatch) -> dict[str, Any]:
    accounts = [
        keyed_account(
            env,
            f"MW_RISK_{venue.upper()}",
            *keys,
            name=venue,
            exchange=venue,
            base_url=sim.base_url,
            timeout_seconds=5,
            owner="fund",
            target_health=40.0 if venue == "okx" else 1.5,
        )
        for venue, keys in CREDS.items()
    ]
    return {
        "database_url": db,
        "accounts": accounts,
        "alerts": {
            "email": {
                "host": "127.0.0.1",
                "port": smtp_port,
                "security": "none",
                "from": "mw@example.org",
                "to": ["t@example.org"],
            }
        },
    }


def test_volatility_funding_and_a_confirmed_liquidation(
    sim: ExchangeSimulator, smtp_server: SmtpServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = f"sqlite:///{tmp_path / 'risk.db'}"
    doc = _config_doc(sim, db, smtp_server.port, monkeypatch)
    config = parse_config(doc)

    async def main() -> None:
        upgrade(db)
        sessions = session_factory(make_engine(db))
        connectors, _ = build_connectors(config, {})
        markets = build_market_data(config)
        poller = Poller(config, sessions, connectors, alerts_wake=asyncio.Event(), markets=markets)
        try:
            first = await poller.cycle()
            assert sorted(first.stored) == ["binanceusdm", "bybit", "okx"], first.failed
            # Bybit's isolated BTC long goes below its liquidation price: the venue liquidates it
            sim.set_mark("bybit", "BTC/USDT:USDT", 60_000.0)
            second = await poller.cycle()
            assert "bybit" in second.stored, second.failed
            deliver_due(sessions, config, lambda: datetime.now(UTC), RetryPolicy(0.01, 0.02))
        finally:
            await poller.close()
            for market in {id(m): m for m in markets.values()}.values():
                await market.close()
        return sessions

    sessions = asyncio.run(main())
    with sessions() as session:
        stats = {(s.exchange, s.symbol): s for s in repo.market_stats(session)}
        for venue in CREDS:
            sol_beta = stats.get((venue, "ETH/USDT:USDT"))
            assert sol_beta is not None and sol_beta.volatility > 0
            assert sol_beta.beta == pytest.approx(1.2, abs=0.25)  # the scenario's beta for ETH
            assert sol_beta.funding_rate == pytest.approx(0.00025)
            assert sol_beta.price_tick == pytest.approx(0.01)  # the venue's tick, for alert messages
        positions = session.scalars(select(PositionSnapshot)).all()
        assert all(p.volatility and p.volatility > 0 for p in positions)
        assert all(0 <= p.touch_probability <= 1 for p in positions)
        snaps = {a.name: s for a, s in repo.latest_snapshots(session)}
        # a 10-contract ETH long on 5,000 USDT pays 0.025 % every 8 h: health drifts down
        binance = snaps["binanceusdm"]
        assert binance.funding_health_7d < binance.funding_health_1d < binance.health
        events = repo.liquidations(session)
    (event,) = events
    assert (event.symbol, event.side, event.source) == ("BTC/USDT:USDT", "long", "fetch_my_liquidations")
    assert event.price is not None and math.isfinite(event.price)
    subjects = [m["Subject"] for m in smtp_server.inbox.messages]
    # the price at BTC's tick (0.1)
    assert any(re.fullmatch(r"LIQUIDATED · bybit/bybit · BTC long at [\d,]+\.\d", s) for s in subjects), subjects

    # the cross-account views read the same store
    config_path = tmp_path / "marginwatch.toml"
    write_toml(doc, config_path)
    code, out, err = run_cli("stress", "--config", str(config_path))
    assert code == 0, err
    assert "binanceusdm" in out and "to survive" in out and "-40%" in out and "liquidate first" in out, out
    assert re.search(r"at BTC [+-]\d+\.\d+% \((down|up)\)", out), out  # the order names the side (issue 11)
    # prices move both ways: an upward shock is a column of its own, with its healths
    code, out, err = run_cli("stress", "--config", str(config_path), "--shocks", "-0.4,-0.1,0.1,0.4")
    assert code == 0, err
    assert re.search(r"^ account .*-10%\s+\+10%\s+\+40%\s*$", out, re.MULTILINE), out
    assert re.search(r"^ binanceusdm .*\d\.\d\d\s+\d+\.\d\d\s*$", out, re.MULTILINE), out
    code, out, err = run_cli("rebalance", "--config", str(config_path))
    assert code == 0, err
    assert "fund (USDT)" in out and "okx" in out  # the others lend to the one far under its target
