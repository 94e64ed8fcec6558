"""Alerts from streamed marks (issue 19) through real ccxt.pro against the simulator, to a
loopback SMTP server: a mark that crosses the account's critical alert price is told by
email long before the next poll is due (the poll interval is 30 s), marked as coming from
the mark price with the positions' time, and confirmed by an immediate re-poll; duplicated
frames do not double the alert; the streams' states reach the store. Every wait is on a
condition with a generous deadline."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import select

from config.settings import parse_config
from poller.runtime import run_poller
from store.db import make_engine, session_factory, upgrade
from store.schema import AccountSnapshot, AlertNotification, PositionSnapshot, StreamState
from tests.alert_scenario import SYMBOL, config_doc, scenario
from tests.helpers import SmtpServer, free_port, running_simulator

INTERVAL = 30.0  # the poll interval: every alert here must come from the stream
DEADLINE = 60.0


def wait_for(check: Callable[[], Any], what: str, timeout: float = DEADLINE) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"not within {timeout:g} s: {what}")


class PollerThread:
    def __init__(self, config: Any) -> None:
        self.config = config
        self.cycles: list[Any] = []
        self.error: BaseException | None = None
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        async def main() -> None:
            self.loop = asyncio.get_running_loop()
            self.stop_event = asyncio.Event()
            self.ready.set()
            await run_poller(self.config, stop=self.stop_event, on_cycle=self.cycles.append, secrets_file={})

        try:
            asyncio.run(main())
        except BaseException as exc:  # reported by stop()
            self.error = exc

    def __enter__(self) -> PollerThread:
        self.thread.start()
        assert self.ready.wait(30)
        return self

    def __exit__(self, *exc: object) -> None:
        self.loop.call_soon_threadsafe(self.stop_event.set)
        self.thread.join(60)
        assert not self.thread.is_alive(), "the poller did not stop"
        assert self.error is None, f"the poller failed: {self.error!r}"


@pytest.fixture
def stack(tmp_path: Any, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    doc = scenario()
    doc["streams"] = {"mark_interval_seconds": 0.2}
    doc["ohlcv_history_days"] = 2
    smtp = SmtpServer(free_port())
    smtp.start()
    try:
        with running_simulator(doc) as sim:
            sim.set_mark("binanceusdm", SYMBOL, 96_000.0)  # far from liquidation: OK
            database = f"sqlite:///{tmp_path / 'stream.db'}"
            config = parse_config(
                {
                    **config_doc(sim.base_url, database, smtp.port, interval=INTERVAL, env=monkeypatch),
                    "streaming": {"stale_after_seconds": getattr(request, "param", 30.0)},
                }
            )
            upgrade(database)
            yield {"sim": sim, "smtp": smtp, "config": config, "sessions": session_factory(make_engine(database))}
    finally:
        smtp.stop()


def _snapshots(sessions: Any) -> list[AccountSnapshot]:
    with sessions() as session:
        return list(session.scalars(select(AccountSnapshot).order_by(AccountSnapshot.id)))


def _critical_price(sessions: Any) -> float | None:
    with sessions() as session:
        row = session.scalars(select(PositionSnapshot).order_by(PositionSnapshot.id.desc())).first()
        return None if row is None else row.critical_price_down


def _mark_stream_up(sessions: Any) -> bool:
    with sessions() as session:
        rows = session.scalars(select(StreamState).where(StreamState.kind == "marks")).all()
        return any(r.connected for r in rows) and any(r.name == "marks:main" and r.last_message_at for r in rows)


def _critical_notifications(sessions: Any) -> list[AlertNotification]:
    with sessions() as session:
        return list(session.scalars(select(AlertNotification).where(AlertNotification.level == 2)))


def test_a_streamed_mark_across_the_critical_price_is_emailed_before_the_next_poll(stack: dict[str, Any]) -> None:
    sim, smtp, sessions = stack["sim"], stack["smtp"], stack["sessions"]
    with PollerThread(stack["config"]) as poller:
        wait_for(lambda: _snapshots(sessions), "the first poll stored")
        [first] = _snapshots(sessions)
        assert first.level == 0 and first.source is None, "the scenario starts far from liquidation"
        critical = _critical_price(sessions)
        assert critical is not None and critical < 96_000.0
        wait_for(lambda: _mark_stream_up(sessions), "the mark stream connected and its state stored")
        # every frame sent twice from now on: the crossing must still be told once
        sim.add_stream_fault("binanceusdm", "duplicate", "public")

        sim.set_mark("binanceusdm", SYMBOL, critical * 0.999)
        moved = time.monotonic()
        wait_for(lambda: any("CRITICAL" in m["Subject"] for m in smtp.inbox.messages), "the CRITICAL email")
        told_after = time.monotonic() - moved
        assert len(poller.cycles) == 1, "the alert came from the stream, not from a second cycle"
        assert told_after < INTERVAL

        [message] = [m for m in smtp.inbox.messages if "CRITICAL" in m["Subject"]]
        text = message.get_body(("plain",)).get_content()
        assert "from mark price" in text and "positions as of" in text, text
        estimates = [s for s in _snapshots(sessions) if s.source == "mark_stream"]
        assert estimates and estimates[0].positions_as_of == first.taken_at
        assert estimates[0].level == 2

        # the re-poll confirms it with fresh positions, still inside the first interval
        confirmed = wait_for(
            lambda: [s for s in _snapshots(sessions) if s.source is None and s.id > estimates[0].id],
            "the confirming re-poll",
        )
        assert confirmed[0].level == 2
        assert len(poller.cycles) == 1
    # the duplicated frames came with the crossing, long before the re-poll: told once
    assert len(_critical_notifications(sessions)) == 1
    assert sum("CRITICAL" in m["Subject"] for m in smtp.inbox.messages) == 1


def _view(sessions: Any) -> Any:
    from datetime import UTC, datetime

    from readmodels.accounts import account_views

    with sessions() as session:
        [view] = account_views(session, datetime.now(UTC), 120)
        return view


def _venue_state(sessions: Any) -> StreamState | None:
    with sessions() as session:
        return session.scalars(select(StreamState).where(StreamState.name.like("venue:%"))).first()


@pytest.mark.parametrize("stack", [3.0], indirect=True)
def test_a_dropped_stream_reconnects_and_a_silent_one_is_shown_stale(stack: dict[str, Any]) -> None:
    """What the dashboard reads (the stored stream states): live with a fresh mark, a drop
    reconnected, silence shown as stale (never as "no change"), and live again after."""
    sim, sessions = stack["sim"], stack["sessions"]
    with PollerThread(stack["config"]):
        wait_for(lambda: _mark_stream_up(sessions), "the mark stream connected and its state stored")
        view = wait_for(lambda: (v := _view(sessions)).stream == "live" and v, "the account's stream live")
        assert view.mark_age_seconds is not None and view.mark_age_seconds < 30

        before = _venue_state(sessions)
        assert before is not None
        assert sim.drop_streams("binanceusdm") >= 1
        wait_for(
            lambda: (s := _venue_state(sessions)) is not None and s.reconnects > before.reconnects and s.connected,
            "the dropped stream reconnected",
        )

        sim.add_stream_fault("binanceusdm", "silent", "public")
        wait_for(lambda: _view(sessions).stream == "stale", "the silent stream shown stale")
        sim.clear_faults()
        wait_for(lambda: _view(sessions).stream == "live", "live again once marks flow")


def test_a_position_change_on_the_account_stream_is_polled_at_once(stack: dict[str, Any]) -> None:
    """Binance's user-data stream tells a position change: the account is re-polled long
    before its next poll is due, and the stored position is the new one."""
    sim, sessions = stack["sim"], stack["sessions"]
    with PollerThread(stack["config"]) as poller:
        wait_for(lambda: _snapshots(sessions), "the first poll stored")
        wait_for(lambda: _mark_stream_up(sessions), "the streams up")
        wait_for(lambda: (s := _account_stream(sessions)) is not None and s.connected, "the account stream connected")
        [position] = scenario()["accounts"][0]["positions"]
        sim.set_positions("binanceusdm", "alert-key", [{**position, "contracts": 0.5}])
        wait_for(lambda: any(p.contracts == 0.5 for p in _latest_positions(sessions)), "the change polled at once")
        assert len(poller.cycles) == 1, "the re-poll came from the stream, not from a second cycle"


def _account_stream(sessions: Any) -> StreamState | None:
    with sessions() as session:
        return session.scalars(select(StreamState).where(StreamState.kind == "account")).first()


def _latest_positions(sessions: Any) -> list[PositionSnapshot]:
    with sessions() as session:
        latest = session.scalars(select(AccountSnapshot).order_by(AccountSnapshot.id.desc())).first()
        if latest is None:
            return []
        return list(session.scalars(select(PositionSnapshot).where(PositionSnapshot.snapshot_id == latest.id)))
