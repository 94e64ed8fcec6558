"""One account's history for a chart: downsampled in SQL to about `buckets` rows, so a
month of 1-minute snapshots never leaves the database as 43,200 rows.

Times are stored as epoch milliseconds (store.schema.Timestamp), so a bucket is plain
integer division of `taken_at` by the bucket width; the (account_id, taken_at) index
bounds the scan. Buckets are aligned to the epoch, not to `start`, so a chart that
refreshes every poll keeps the same buckets and does not shimmer. Ranges older than the
raw data come from the hourly roll-up (store.repo.apply_retention).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import BigInteger, func, select, type_coerce
from sqlalchemy.orm import Session

from store.schema import AccountSnapshot, HourlySnapshot

# Bucket widths a person reads easily (ms): 1 s ... 1 day.
NICE_WIDTHS_MS: tuple[int, ...] = tuple(
    s * 1000
    for s in (
        1,
        5,
        10,
        30,
        60,
        120,
        300,
        600,
        900,
        1800,
        3600,
        7200,
        10800,
        21600,
        43200,
        86400,
    )
)


@dataclass(frozen=True)
class HistoryRow:
    """One bucket: the worst health and margin ratio in it, the average equity and
    maintenance margin, and how many snapshots it summarises."""

    at: datetime  # bucket start, UTC
    min_health: float | None
    max_margin_ratio: float | None
    equity: float | None
    maintenance_margin: float | None
    samples: int
    source: str  # "raw" | "hourly"


def to_ms(moment: datetime) -> int:
    if moment.tzinfo is None:
        raise ValueError("naive datetime: pass aware UTC datetimes")
    return round(moment.timestamp() * 1000)


def bucket_width_ms(start: datetime, end: datetime, buckets: int) -> int:
    """The smallest readable width that gives at most `buckets` buckets over the range."""
    needed = math.ceil(max(1, to_ms(end) - to_ms(start)) / max(1, buckets))
    for width in NICE_WIDTHS_MS:
        if width >= needed:
            return width
    return math.ceil(needed / NICE_WIDTHS_MS[-1]) * NICE_WIDTHS_MS[-1]


def history(session: Session, account_id: int, start: datetime, end: datetime, buckets: int = 600) -> list[HistoryRow]:
    """Buckets of [start, end), oldest first; hourly roll-ups before the oldest raw row."""
    raw, hourly = AccountSnapshot, HourlySnapshot
    # both are the first entry of a primary-key or (account_id, time) index
    oldest_raw = session.scalar(select(func.min(raw.taken_at)).where(raw.account_id == account_id))
    oldest_hour = session.scalar(select(func.min(hourly.hour)).where(hourly.account_id == account_id))
    oldest = min((t for t in (oldest_raw, oldest_hour) if t is not None), default=None)
    if oldest is None:
        return []
    # a young account gets fine buckets over what exists, not 600 empty ones over the window
    start = max(start, oldest)
    if end <= start:
        return []
    width = bucket_width_ms(start, end, buckets)
    merged: dict[int, HistoryRow] = {}
    if oldest_raw is None or oldest_raw > start:
        hourly_end = end if oldest_raw is None else min(end, oldest_raw)
        for row in _hourly(session, account_id, start, hourly_end, width):
            merged[to_ms(row.at)] = row
    if oldest_raw is not None and oldest_raw < end:
        for row in _raw(session, account_id, start, end, width):
            key = to_ms(row.at)
            merged[key] = _combine(merged[key], row) if key in merged else row
    return [merged[k] for k in sorted(merged)]


def _raw(session: Session, account_id: int, start: datetime, end: datetime, width: int) -> list[HistoryRow]:
    raw = AccountSnapshot
    # the stored integer itself, not the datetime the column type turns it into
    ms = type_coerce(raw.taken_at, BigInteger)
    bucket = (ms // width).label("bucket")
    rows = session.execute(
        select(
            bucket,
            func.min(raw.health),
            func.max(raw.margin_ratio),
            func.avg(raw.equity),
            func.avg(raw.maintenance_margin),
            func.count(),
        )
        .where(raw.account_id == account_id, raw.taken_at >= start, raw.taken_at < end)
        .group_by(bucket)
        .order_by(bucket)
    )
    return [_row(b, width, h, r, e, m, n, "raw") for b, h, r, e, m, n in rows]


def _hourly(session: Session, account_id: int, start: datetime, end: datetime, width: int) -> list[HistoryRow]:
    hourly = HourlySnapshot
    ms = type_coerce(hourly.hour, BigInteger)
    bucket = (ms // width).label("bucket")
    # an hour that began before `start` still holds samples inside the range
    first_hour = start.replace(minute=0, second=0, microsecond=0)
    rows = session.execute(
        select(
            bucket,
            func.min(hourly.min_health),
            func.max(hourly.max_margin_ratio),
            func.avg(hourly.last_equity),
            func.avg(hourly.last_maintenance_margin),
            func.sum(hourly.samples),
        )
        .where(hourly.account_id == account_id, hourly.hour >= first_hour, hourly.hour < end)
        .group_by(bucket)
        .order_by(bucket)
    )
    return [_row(b, width, h, r, e, m, n, "hourly") for b, h, r, e, m, n in rows]


def _row(
    bucket: Any, width: int, health: Any, ratio: Any, equity: Any, maintenance: Any, samples: Any, source: str
) -> HistoryRow:
    # PostgreSQL returns avg() and sum() as Decimal: normalise to float and int
    return HistoryRow(
        at=datetime.fromtimestamp(int(bucket) * width / 1000, UTC),
        min_health=_float(health),
        max_margin_ratio=_float(ratio),
        equity=_float(equity),
        maintenance_margin=_float(maintenance),
        samples=int(samples or 0),
        source=source,
    )


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def _combine(a: HistoryRow, b: HistoryRow) -> HistoryRow:
    """One bucket that straddles the roll-up boundary: worst of both, weighted averages."""
    total = a.samples + b.samples or 1

    def avg(x: float | None, y: float | None) -> float | None:
        if x is None or y is None:
            return x if y is None else y
        return (x * a.samples + y * b.samples) / total

    def pick(fn: Callable[[list[float]], float], x: float | None, y: float | None) -> float | None:
        values = [v for v in (x, y) if v is not None]
        return fn(values) if values else None

    return HistoryRow(
        a.at,
        pick(min, a.min_health, b.min_health),
        pick(max, a.max_margin_ratio, b.max_margin_ratio),
        avg(a.equity, b.equity),
        avg(a.maintenance_margin, b.maintenance_margin),
        a.samples + b.samples,
        "raw",
    )
