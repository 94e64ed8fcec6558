"""Staleness that cannot be hidden: a poller whose clock runs an hour fast stamps nothing
in the future (its clock is capped at the database's), so once it stops its data shows as
stale, never as "−3593 s"; and an exchange answering 503 poll after poll raises the
account's data alert after N failed polls even though its last success is recent."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from config.settings import parse_config
from poller.loop import Poller
from poller.runtime import build_connectors
from readmodels.accounts import account_views
from simulator import ExchangeSimulator
from store.db import make_engine, session_factory, upgrade
from store.freshness import staleness
from store.schema import Account, AccountSnapshot, AlertTransition
from tests.alert_scenario import config_doc, scenario
from tests.helpers import running_simulator

HOUR = timedelta(hours=1)


@pytest.fixture
def sim() -> Iterator[ExchangeSimulator]:
    with running_simulator(scenario()) as simulator:
        yield simulator


def _poller(config, now=lambda: datetime.now(UTC)):  # type: ignore[no-untyped-def]
    upgrade(config.database_url)
    sessions = session_factory(make_engine(config.database_url))
    connectors, _ = build_connectors(config, {})
    return Poller(config, sessions, connectors, now=now, alerts_wake=asyncio.Event()), sessions


def test_a_clock_an_hour_fast_stamps_nothing_in_the_future(
    sim: ExchangeSimulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    doc = config_doc(sim.base_url, f"sqlite:///{tmp_path / 'fast.db'}", smtp_port=1, interval=1.0, env=monkeypatch)
    del doc["alerts"]["email"]
    config = parse_config(doc)

    async def run() -> None:
        poller, _ = _poller(config, now=lambda: datetime.now(UTC) + HOUR)
        try:
            for _ in range(3):
                report = await poller.cycle()
                assert report.stored == ["main"], report
        finally:
            await poller.close()

    asyncio.run(run())
    stopped = datetime.now(UTC)
    sessions = session_factory(make_engine(config.database_url))
    with sessions() as session:
        account = session.scalars(select(Account)).one()
        taken = session.scalars(select(AccountSnapshot.taken_at)).all()
        data_alerts = session.scalars(select(AlertTransition).where(AlertTransition.subject == "data")).all()
        assert account.last_success_at is not None and account.last_success_at <= stopped
        assert all(t <= stopped for t in taken)
        assert data_alerts == []  # the fast clock did not make its own data look an hour old
        (view,) = account_views(session, stopped, staleness(config))
        assert not view.stale and view.age_seconds is not None and 0 <= view.age_seconds < 60
        # the poller is gone: after the stale window its data is stale, its age positive
        (later,) = account_views(session, stopped + timedelta(seconds=config.stale_after + 1), staleness(config))
        assert later.stale and later.age_seconds is not None and later.age_seconds > config.stale_after


def test_consecutive_failed_polls_raise_the_data_alert(
    sim: ExchangeSimulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    doc = config_doc(sim.base_url, f"sqlite:///{tmp_path / 'failing.db'}", smtp_port=1, interval=1.0, env=monkeypatch)
    del doc["alerts"]["email"]
    doc.update(stale_after_seconds=3600, stale_after_failed_polls=3)  # age alone would wait an hour
    doc["accounts"][0]["timeout_seconds"] = 0.5
    config = parse_config(doc)

    async def run() -> list[list[str]]:
        poller, sessions = _poller(config)
        kinds = []
        try:
            assert (await poller.cycle()).stored == ["main"]
            sim.add_fault("binanceusdm", "/fapi/v3/positionRisk", "http503")
            for _ in range(4):
                report = await poller.cycle()
                assert list(report.failed) == ["main"]
                with sessions() as session:
                    kinds.append(
                        [
                            f"{t.kind}:{t.to_level}"
                            for t in session.scalars(select(AlertTransition).where(AlertTransition.subject == "data"))
                        ]
                    )
            sim.clear_faults()
            assert (await poller.cycle()).stored == ["main"]
            with sessions() as session:
                kinds.append(
                    [t.kind for t in session.scalars(select(AlertTransition).where(AlertTransition.subject == "data"))]
                )
        finally:
            await poller.close()
        return kinds

    after = asyncio.run(run())
    assert after[:4] == [[], [], ["fired:1"], ["fired:1"]]  # WARNING at the 3rd failure in a row
    assert after[4] == ["fired", "resolved"]  # and resolved by the next success
