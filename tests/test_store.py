"""The store on SQLite and PostgreSQL: migrations, writes, latest-per-account, retention,
and concurrent readers while the poller writes."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import inspect, select, text

from margin.report import risk_report
from margin.snapshot import parse_snapshot
from poller.rows import Polled, account_rows
from store import repo
from store.db import downgrade, make_engine, session_factory, upgrade
from store.schema import AlertState, HourlySnapshot, PositionSnapshot

ROOT = Path(__file__).parent.parent
DEMO = parse_snapshot(json.loads((ROOT / "examples" / "demo-snapshot.json").read_text()))
T0 = datetime(2026, 11, 1, tzinfo=UTC)


def _store(url: str):
    upgrade(url)
    return session_factory(make_engine(url))


def test_migrations_upgrade_from_empty_and_downgrade(db_url: str) -> None:
    upgrade(db_url)
    tables = set(inspect(make_engine(db_url)).get_table_names())
    assert {
        "accounts",
        "account_snapshots",
        "position_snapshots",
        "account_snapshots_hourly",
        "poll_errors",
        "key_checks",
        "alembic_version",
    } <= tables
    downgrade(db_url)
    assert set(inspect(make_engine(db_url)).get_table_names()) <= {"alembic_version"}
    upgrade(db_url)


def test_migrations_match_the_schema(db_url: str) -> None:
    """store/migrations builds exactly the tables store/schema.py declares."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from store.schema import Base

    upgrade(db_url)
    with make_engine(db_url).connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []


def test_alert_acks_migration_keeps_the_states(db_url: str) -> None:
    """0005 adds the acknowledgement to alert_states, and takes it away, rows kept."""
    upgrade(db_url, "0004")
    engine = make_engine(db_url)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO accounts (id, name, exchange, collateral, state, consecutive_failures) "
                "VALUES (1, 'a', 'okx', 'USDT', 'active', 0)"
            )
        )
        conn.execute(
            text("INSERT INTO alert_states (account_id, subject, level, counts) VALUES (1, 'health', 2, '[1, 1]')")
        )
    upgrade(db_url)
    columns = {c["name"] for c in inspect(make_engine(db_url)).get_columns("alert_states")}
    assert {"acked_level", "acked_at", "acked_by"} <= columns
    sessions = session_factory(make_engine(db_url))
    with sessions.begin() as session:
        state = session.get(AlertState, (1, "health"))
        assert state.level == 2 and state.acked_level is None
        state.acked_level, state.acked_at, state.acked_by = 2, T0, "telegram chat 42"
    with sessions() as session:
        assert session.get(AlertState, (1, "health")).acked_at == T0
    downgrade(db_url, "0004")
    columns = {c["name"] for c in inspect(make_engine(db_url)).get_columns("alert_states")}
    assert "acked_level" not in columns and "acked_by" not in columns
    with make_engine(db_url).connect() as conn:
        assert conn.execute(text("SELECT level, counts FROM alert_states")).one() == (2, "[1, 1]")
    upgrade(db_url)


def test_watcher_migration_up_and_down_with_a_monitor_alert_stored(db_url: str) -> None:
    """0006: pollers, account leases, digests; monitor alerts with no account. The
    migrations match store/schema.py, and 0006 goes down (dropping the monitor's own
    alerts, which the old schema cannot hold) and up again."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from store.schema import AlertNotification, AlertTransition, Base

    sessions = _store(db_url)
    engine = make_engine(db_url)
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn, opts={"compare_type": False}), Base.metadata) == []
    assert {"pollers", "account_leases", "alert_digests"} <= set(inspect(engine).get_table_names())
    with sessions.begin() as session:
        session.add(
            AlertTransition(
                account_id=None,
                subject="monitor:database",
                kind="fired",
                from_level=0,
                to_level=2,
                value=None,
                at=T0,
                muted=False,
                notification_id=None,
            )
        )
        session.add(
            AlertNotification(
                account_id=None,
                created_at=T0,
                level=2,
                subject_line="s",
                body_text="t",
                body_html="h",
                payload={},
                recipients=[],
            )
        )
    downgrade(db_url, "0005")
    tables = set(inspect(make_engine(db_url)).get_table_names())
    assert "pollers" not in tables and "account_leases" not in tables and "accounts" in tables
    with make_engine(db_url).connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM alert_notifications").scalar() == 0
    upgrade(db_url)
    assert "pollers" in set(inspect(make_engine(db_url)).get_table_names())


def test_snapshot_rows_match_the_scalar_engine() -> None:
    ((row, positions),) = account_rows([Polled(DEMO, T0, 1.5)])
    report = risk_report(DEMO, 1.5)
    assert row["health"] == pytest.approx(report["account"]["health"], rel=1e-12)
    assert row["worst_health"] == pytest.approx(report["account"]["worst_health"], rel=1e-12)
    assert row["topup_to_target"] == pytest.approx(report["account"]["topup_to_target"], abs=1e-9)
    assert row["margin_ratio"] == pytest.approx(report["account"]["margin_ratio"], rel=1e-12)
    for got, want in zip(positions, report["positions"], strict=True):
        assert got["symbol"] == want["symbol"]
        assert got["liquidation_price"] == pytest.approx(want["liquidation_price"], rel=1e-9)
        assert got["distance"] == pytest.approx(want["distance_to_liquidation"], rel=1e-9)
        assert got["distance_sigma"] == pytest.approx(want["distance_sigma"], rel=1e-9)
        assert got["disagrees"] == want["disagrees_with_exchange"]
        assert got["health"] == (None if want["health"] is None else pytest.approx(want["health"]))


def test_writes_latest_failures_and_key_checks(db_url: str) -> None:
    sessions = _store(db_url)
    ids = repo.ensure_accounts(
        sessions, [repo.AccountInfo("a", "binanceusdm", "USDT"), repo.AccountInfo("b", "okx", "USDT")]
    )
    for minute in range(3):
        ((row, positions),) = account_rows([Polled(DEMO, T0 + timedelta(minutes=minute), 1.5)])
        repo.record_snapshot(sessions, ids["a"], row, positions, '{"doc": 1}')
    repo.record_failure(sessions, ids["b"], T0, "temporary", "timed out", "RequestTimeout")
    repo.record_failure(
        sessions,
        ids["b"],
        T0 + timedelta(minutes=1),
        "permanent",
        "bad key",
        "AuthenticationError",
        pause_state="paused",
    )
    repo.record_key_check(sessions, ids["a"], T0, "trade", True, False, "enableFutures")
    with sessions() as session:
        latest = {a.name: (a, s) for a, s in repo.latest_snapshots(session)}
        account, snap = latest["a"]
        assert snap.taken_at == T0 + timedelta(minutes=2)
        assert account.last_success_at == snap.taken_at and account.latest_document == '{"doc": 1}'
        assert len(repo.latest_positions(session, snap.id)) == 3
        failing, none = latest["b"]
        assert none is None and failing.state == "paused" and failing.consecutive_failures == 2
        assert [e.message for e in repo.recent_errors(session, ids["b"])] == ["bad key", "timed out"]
        assert repo.latest_key_checks(session)[ids["a"]].status == "trade"


def test_retention_rolls_old_snapshots_into_hours(db_url: str) -> None:
    sessions = _store(db_url)
    ids = repo.ensure_accounts(sessions, [repo.AccountInfo("a", "binanceusdm", "USDT")])
    ((row, positions),) = account_rows([Polled(DEMO, T0, 1.5)])
    # 3 hours of 10-minute snapshots, health falling, then one recent snapshot
    for step in range(18):
        at = T0 + timedelta(minutes=10 * step)
        repo.record_snapshot(
            sessions, ids["a"], {**row, "taken_at": at, "health": 3.0 - step * 0.1, "equity": 1000.0 + step}, positions
        )
    repo.record_snapshot(sessions, ids["a"], {**row, "taken_at": T0 + timedelta(days=9)}, positions)
    removed = repo.apply_retention(sessions, now=T0 + timedelta(days=9), keep_days=7)
    assert removed == 18
    with sessions() as session:
        hours = session.scalars(select(HourlySnapshot).order_by(HourlySnapshot.hour)).all()
        assert [h.samples for h in hours] == [6, 6, 6]
        assert [h.min_health for h in hours] == pytest.approx([2.5, 1.9, 1.3])
        assert [h.last_equity for h in hours] == [1005.0, 1011.0, 1017.0]
        assert repo.snapshot_count(session) == 1
        assert len(session.scalars(select(PositionSnapshot)).all()) == 3  # the recent one's
        ((_account, latest),) = repo.latest_snapshots(session)
        assert latest is not None and latest.taken_at == T0 + timedelta(days=9)


def test_readers_never_see_database_is_locked(db_url: str) -> None:
    """The poller writes while 8 readers query, as the dashboard does."""
    sessions = _store(db_url)
    names = [f"acct{i}" for i in range(10)]
    ids = repo.ensure_accounts(sessions, [repo.AccountInfo(n, "binanceusdm", "USDT") for n in names])
    ((row, positions),) = account_rows([Polled(DEMO, T0, 1.5)])
    errors: list[BaseException] = []
    stop = threading.Event()
    reads = [0] * 8

    def reader(k: int) -> None:
        try:
            while not stop.is_set():
                with sessions() as session:
                    for _, snap in repo.latest_snapshots(session):
                        if snap is not None:
                            repo.latest_positions(session, snap.id)
                    repo.snapshot_count(session)
                reads[k] += 1
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=reader, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    # A fixed amount of work, not work per second: 30 rounds of writes, and the readers go on
    # until each has read at least 5 times while writes were under way (a generous deadline
    # only guards against a hang).
    writes = 0
    deadline = time.monotonic() + 120.0
    try:
        for _ in range(30):
            for name in names:
                at = T0 + timedelta(seconds=writes)
                repo.record_snapshot(sessions, ids[name], {**row, "taken_at": at}, positions)
                writes += 1
            repo.apply_retention(sessions, now=T0 + timedelta(days=30), keep_days=7)
        while min(reads) < 5 and not errors and time.monotonic() < deadline:
            repo.record_snapshot(
                sessions, ids[names[0]], {**row, "taken_at": T0 + timedelta(seconds=writes)}, positions
            )
            writes += 1
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert not errors, errors[:3]
    assert writes >= 300 and min(reads) >= 5


def test_json_columns_migration_keeps_every_value(db_url: str) -> None:
    """0009 turns the JSON held in text into JSON columns (PostgreSQL's json) and back,
    the values kept: counts, payload, recipients, a stored order book."""
    from store.schema import AlertNotification, MarketStat

    upgrade(db_url, "0008")
    with make_engine(db_url).begin() as conn:
        conn.execute(
            text(
                "INSERT INTO accounts (id, name, exchange, collateral, state, consecutive_failures) "
                "VALUES (1, 'a', 'okx', 'USDT', 'active', 0)"
            )
        )
        conn.execute(
            text("INSERT INTO alert_states (account_id, subject, level, counts) VALUES (1, 'health', 2, '[2, 0]')")
        )
        conn.execute(
            text(
                "INSERT INTO alert_notifications (id, account_id, created_at, level, subject_line, body_text, "
                "body_html, payload, recipients) VALUES (7, 1, 0, 2, 's', 't', 'h', "
                """'{"kind": "alert", "equity": 1.5}', '["risk@example.org"]')"""
            )
        )
        conn.execute(
            text(
                "INSERT INTO market_stats (exchange, symbol, updated_at, order_book) VALUES "
                """('okx', 'BTC/USDT:USDT', 0, '{"bids": [[100.0, 2.0]], "asks": []}')"""
            )
        )
    upgrade(db_url)
    with session_factory(make_engine(db_url))() as session:
        assert session.get(AlertState, (1, "health")).counts == [2, 0]
        notification = session.get(AlertNotification, 7)
        assert notification.payload == {"kind": "alert", "equity": 1.5}
        assert notification.recipients == ["risk@example.org"]
        book = session.get(MarketStat, ("okx", "BTC/USDT:USDT")).order_book
        assert book == {"bids": [[100.0, 2.0]], "asks": []}
    downgrade(db_url, "0008")
    with make_engine(db_url).connect() as conn:
        assert json.loads(conn.execute(text("SELECT counts FROM alert_states")).scalar_one()) == [2, 0]
        payload, recipients = conn.execute(text("SELECT payload, recipients FROM alert_notifications")).one()
        assert json.loads(payload) == {"kind": "alert", "equity": 1.5} and json.loads(recipients) == [
            "risk@example.org"
        ]
    upgrade(db_url)
