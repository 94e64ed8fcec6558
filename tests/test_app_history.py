"""store.history on SQLite and PostgreSQL: SQL buckets that keep the worst health and
every sample, epoch-aligned readable widths, the hourly roll-up before the raw data."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert

from store import repo
from store.db import make_engine, session_factory, upgrade
from store.history import bucket_width_ms, history
from store.schema import AccountSnapshot, HourlySnapshot

T0 = datetime(2026, 11, 1, tzinfo=UTC)


def _raw(account_id: int, at: datetime, health: float) -> dict:
    return {
        "account_id": account_id,
        "taken_at": at,
        "wallet_balance": 1000.0,
        "equity": 100.0 * health,
        "maintenance_margin": 100.0,
        "health": health,
        "margin_ratio": 1 / health,
        "worst_health": health,
        "deficit": 0.0,
        "topup_to_target": 0.0,
        "target_health": 1.5,
        "nearest_distance": 0.1,
        "positions": 1,
        "latency_ms": 50,
    }


def test_history_buckets_raw_and_hourly(db_url: str) -> None:
    upgrade(db_url)
    sessions = session_factory(make_engine(db_url))
    ids = repo.ensure_accounts(
        sessions, [repo.AccountInfo("a", "binanceusdm", "USDT"), repo.AccountInfo("b", "okx", "USDT")]
    )
    minutes = 2 * 24 * 60  # two days of 1-minute raw data from T0
    with sessions.begin() as session:
        rows = [_raw(ids["a"], T0 + timedelta(minutes=m), 2.0 + (m % 7) / 10) for m in range(minutes)]
        rows[1000]["health"] = 1.01  # one bad minute must survive the downsampling
        session.execute(insert(AccountSnapshot), rows)
        session.execute(insert(AccountSnapshot), [_raw(ids["b"], T0, 9.0)])  # another account
        session.execute(
            insert(HourlySnapshot),
            [
                {
                    "account_id": ids["a"],
                    "hour": T0 - timedelta(hours=h),
                    "last_equity": 300.0,
                    "last_maintenance_margin": 100.0,
                    "min_health": 3.0,
                    "max_margin_ratio": 0.34,
                    "samples": 60,
                }
                for h in range(1, 25)
            ],
        )
    end = T0 + timedelta(minutes=minutes)
    with sessions() as session:
        raw = history(session, ids["a"], T0, end, buckets=600)
        assert 0 < len(raw) <= 600 and all(r.source == "raw" for r in raw)
        assert sum(r.samples for r in raw) == minutes
        assert min(r.min_health for r in raw) == pytest.approx(1.01)
        assert [r.at for r in raw] == sorted(r.at for r in raw)
        width = bucket_width_ms(T0, end, 600)
        assert all(round(r.at.timestamp() * 1000) % width == 0 for r in raw)  # aligned to the epoch

        both = history(session, ids["a"], T0 - timedelta(hours=24), end, buckets=600)
        hourly = [r for r in both if r.source == "hourly"]
        assert hourly and max(r.at for r in hourly) < T0
        assert sum(r.samples for r in both) == minutes + 24 * 60
        assert hourly[0].equity == pytest.approx(300.0) and hourly[0].min_health == pytest.approx(3.0)

        assert history(session, ids["a"], end, end) == []
        assert history(session, ids["a"], end + timedelta(days=1), end + timedelta(days=2)) == []


def test_bucket_widths_are_readable() -> None:
    assert bucket_width_ms(T0, T0 + timedelta(days=30), 600) == 2 * 3_600_000
    assert bucket_width_ms(T0, T0 + timedelta(hours=6), 600) == 60_000
    assert bucket_width_ms(T0, T0 + timedelta(days=3650), 600) % 86_400_000 == 0
