"""Repository functions: every write is one short transaction; reads never lock writers.

Times are aware UTC datetimes (stored as epoch milliseconds, see store.schema.Timestamp).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, case, delete, func, insert, literal, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from store.schema import (
    Account,
    AccountSnapshot,
    HourlySnapshot,
    KeyCheck,
    LiquidationEvent,
    MarketStat,
    PollError,
    PositionSnapshot,
    Timestamp,
)


@dataclass(frozen=True)
class AccountInfo:
    name: str
    exchange: str
    collateral: str
    sub_account: str | None = None


def ensure_accounts(sessions: sessionmaker[Session], accounts: Iterable[AccountInfo]) -> dict[str, int]:
    """Create the accounts not yet stored (and update their labels); returns name -> id.
    Pollers starting at once may race to create one: the loser reads the winner's row."""
    accounts = list(accounts)
    for attempt in range(3):
        try:
            return _ensure_accounts(sessions, accounts)
        except IntegrityError:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def _ensure_accounts(sessions: sessionmaker[Session], accounts: list[AccountInfo]) -> dict[str, int]:
    with sessions.begin() as session:
        existing = {a.name: a for a in session.scalars(select(Account))}
        for info in accounts:
            row = existing.get(info.name)
            if row is None:
                row = Account(
                    name=info.name,
                    exchange=info.exchange,
                    collateral=info.collateral,
                    sub_account=info.sub_account,
                    state="active",
                    consecutive_failures=0,
                )
                session.add(row)
                existing[info.name] = row
            else:
                row.exchange, row.collateral = info.exchange, info.collateral
                row.sub_account = info.sub_account
        session.flush()
        return {name: row.id for name, row in existing.items()}


def record_snapshot(
    sessions: sessionmaker[Session],
    account_id: int,
    snapshot: Mapping[str, Any],
    positions: Sequence[Mapping[str, Any]],
    document: str | None = None,
) -> int:
    """Store one poll's account figures and its positions in one transaction; mark the
    account fresh. Returns the snapshot id."""
    with sessions.begin() as session:
        snapshot_id = session.execute(
            insert(AccountSnapshot).values(account_id=account_id, **snapshot).returning(AccountSnapshot.id)
        ).scalar_one()
        if positions:
            session.execute(insert(PositionSnapshot), [{**p, "snapshot_id": snapshot_id} for p in positions])
        session.execute(
            update(Account)
            .where(Account.id == account_id)
            .values(
                state="active",
                state_reason=None,
                state_since=case(
                    (Account.state != "active", literal(snapshot["taken_at"], Timestamp())), else_=Account.state_since
                ),
                latest_snapshot_id=snapshot_id,
                latest_document=document,
                last_attempt_at=snapshot["taken_at"],
                last_success_at=snapshot["taken_at"],
                consecutive_failures=0,
                last_error=None,
            )
        )
        return int(snapshot_id)


def record_estimates(
    sessions: sessionmaker[Session],
    estimates: Sequence[tuple[int, Mapping[str, Any], Sequence[Mapping[str, Any]], str | None]],
) -> list[int]:
    """Store estimates between polls, (account id, snapshot row, position rows, document)
    each: the last poll's positions at streamed marks (`snapshot["source"]`), as the
    accounts' latest figures, in one transaction. Not a poll: each account's freshness,
    state and failures stay as the polls left them. Nothing is stored for an account that
    is not active (paused or refused since). Returns the ids of the accounts stored."""
    stored = []
    with sessions.begin() as session:
        for account_id, snapshot, positions, document in estimates:
            account = session.get(Account, account_id, with_for_update=True)
            if account is None or account.state != "active":
                continue
            snapshot_id = session.execute(
                insert(AccountSnapshot).values(account_id=account_id, **snapshot).returning(AccountSnapshot.id)
            ).scalar_one()
            if positions:
                session.execute(insert(PositionSnapshot), [{**p, "snapshot_id": snapshot_id} for p in positions])
            account.latest_snapshot_id = snapshot_id
            account.latest_document = document
            stored.append(account_id)
    return stored


def record_failure(
    sessions: sessionmaker[Session],
    account_id: int,
    at: datetime,
    kind: str,
    message: str,
    error_class: str | None = None,
    pause_state: str | None = None,
) -> None:
    """Store a failed poll; with `pause_state` ("paused" or "refused") stop polling it."""
    with sessions.begin() as session:
        session.add(
            PollError(account_id=account_id, occurred_at=at, kind=kind, error_class=error_class, message=message)
        )
        values: dict[str, Any] = {
            "last_attempt_at": at,
            "last_error": message,
            "consecutive_failures": Account.consecutive_failures + 1,
        }
        if pause_state:
            values.update(state=pause_state, state_reason=message, state_since=at)
        session.execute(update(Account).where(Account.id == account_id).values(**values))


def record_key_check(
    sessions: sessionmaker[Session],
    account_id: int,
    at: datetime,
    status: str,
    can_trade: bool,
    can_withdraw: bool,
    detail: str | None,
) -> None:
    with sessions.begin() as session:
        session.add(
            KeyCheck(
                account_id=account_id,
                checked_at=at,
                status=status,
                can_trade=can_trade,
                can_withdraw=can_withdraw,
                detail=detail,
            )
        )


def accounts(session: Session) -> list[Account]:
    return list(session.scalars(select(Account).order_by(Account.name)))


def latest_snapshots(session: Session) -> list[tuple[Account, AccountSnapshot | None]]:
    """Every account with its newest snapshot (None before its first success)."""
    rows = session.execute(
        select(Account, AccountSnapshot)
        .outerjoin(AccountSnapshot, AccountSnapshot.id == Account.latest_snapshot_id)
        .order_by(Account.name)
    )
    return [(a, s) for a, s in rows]


def latest_snapshot(session: Session, account_id: int) -> AccountSnapshot | None:
    """One account's newest snapshot."""
    account = session.get(Account, account_id)
    if account is None or account.latest_snapshot_id is None:
        return None
    return session.get(AccountSnapshot, account.latest_snapshot_id)


def latest_positions(session: Session, snapshot_id: int) -> list[PositionSnapshot]:
    return list(
        session.scalars(
            select(PositionSnapshot).where(PositionSnapshot.snapshot_id == snapshot_id).order_by(PositionSnapshot.id)
        )
    )


def latest_key_checks(session: Session) -> dict[int, KeyCheck]:
    newest = select(KeyCheck.account_id, func.max(KeyCheck.id).label("id")).group_by(KeyCheck.account_id).subquery()
    rows = session.scalars(select(KeyCheck).join(newest, KeyCheck.id == newest.c.id))
    return {row.account_id: row for row in rows}


def recent_errors(session: Session, account_id: int, limit: int = 20) -> list[PollError]:
    return list(
        session.scalars(
            select(PollError)
            .where(PollError.account_id == account_id)
            .order_by(PollError.occurred_at.desc())
            .limit(limit)
        )
    )


def snapshot_count(session: Session, account_id: int | None = None) -> int:
    query = select(func.count()).select_from(AccountSnapshot)
    if account_id is not None:
        query = query.where(AccountSnapshot.account_id == account_id)
    return int(session.scalar(query) or 0)


def floor_hour(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def apply_retention(sessions: sessionmaker[Session], now: datetime, keep_days: float = 7.0) -> int:
    """Roll raw snapshots older than `keep_days` into hourly rows (last equity and
    maintenance, min health, max margin ratio, count) and delete them with their
    positions. Works one hour at a time, each in its own short transaction, so the poller
    and the readers are never held up. Returns the raw snapshots removed."""
    cutoff = floor_hour(now - timedelta(days=keep_days))
    removed = 0
    while True:
        with sessions.begin() as session:
            oldest = session.scalar(select(func.min(AccountSnapshot.taken_at)))
            if oldest is None or oldest >= cutoff:
                return removed
            start = floor_hour(oldest)
            removed += _roll_up_hour(session, start, min(start + timedelta(hours=1), cutoff))


def _roll_up_hour(session: Session, start: datetime, end: datetime) -> int:
    raw = AccountSnapshot
    window = (raw.taken_at >= start) & (raw.taken_at < end)
    groups = session.execute(
        select(raw.account_id, func.max(raw.id), func.min(raw.health), func.max(raw.margin_ratio), func.count())
        .where(window)
        .group_by(raw.account_id)
    ).all()
    for account_id, last_id, min_health, max_ratio, samples in groups:
        equity, maintenance = session.execute(select(raw.equity, raw.maintenance_margin).where(raw.id == last_id)).one()
        existing = session.get(HourlySnapshot, (account_id, start))
        if existing is None:
            session.add(
                HourlySnapshot(
                    account_id=account_id,
                    hour=start,
                    last_equity=equity,
                    last_maintenance_margin=maintenance,
                    min_health=min_health,
                    max_margin_ratio=max_ratio,
                    samples=samples,
                )
            )
        else:  # the hour was partly rolled up before (the window was shorter then)
            existing.last_equity, existing.last_maintenance_margin = equity, maintenance
            existing.min_health = _min(existing.min_health, min_health)
            existing.max_margin_ratio = _max(existing.max_margin_ratio, max_ratio)
            existing.samples += samples
    session.flush()
    ids = select(raw.id).where(window)
    session.execute(delete(PositionSnapshot).where(PositionSnapshot.snapshot_id.in_(ids)))
    session.execute(update(Account).where(Account.latest_snapshot_id.in_(ids)).values(latest_snapshot_id=None))
    result = cast(CursorResult[Any], session.execute(delete(raw).where(window)))  # a DML statement's result
    return int(result.rowcount or 0)


def _min(a: float | None, b: float | None) -> float | None:
    values = [v for v in (a, b) if v is not None]
    return min(values) if values else None


def _max(a: float | None, b: float | None) -> float | None:
    values = [v for v in (a, b) if v is not None]
    return max(values) if values else None


def upsert_market_stats(
    sessions: sessionmaker[Session], exchange: str, at: datetime, stats: Mapping[str, Mapping[str, Any]]
) -> None:
    """Latest public data per symbol: keys of each value are MarketStat columns; absent
    keys keep what is stored (a failed refresh does not erase the last good value). Two
    pollers adding one symbol at once: the loser tries again, updating the winner's row."""
    try:
        _upsert_market_stats(sessions, exchange, at, stats)
    except IntegrityError:
        _upsert_market_stats(sessions, exchange, at, stats)


def _upsert_market_stats(
    sessions: sessionmaker[Session], exchange: str, at: datetime, stats: Mapping[str, Mapping[str, Any]]
) -> None:
    with sessions.begin() as session:
        for symbol, values in stats.items():
            row = session.get(MarketStat, (exchange, symbol))
            if row is None:
                row = MarketStat(exchange=exchange, symbol=symbol, updated_at=at)
                session.add(row)
            row.updated_at = at
            for key, value in values.items():
                setattr(row, key, value)


def market_stats(session: Session, exchange: str | None = None) -> list[MarketStat]:
    query = select(MarketStat).order_by(MarketStat.exchange, MarketStat.symbol)
    if exchange is not None:
        query = query.where(MarketStat.exchange == exchange)
    return list(session.scalars(query))


def record_liquidation(sessions: sessionmaker[Session], account_id: int, event: Mapping[str, Any]) -> bool:
    """Store a liquidation once (same account, symbol, side and time): True if new."""
    with sessions.begin() as session:
        seen = session.scalar(
            select(LiquidationEvent.id).where(
                LiquidationEvent.account_id == account_id,
                LiquidationEvent.symbol == event["symbol"],
                LiquidationEvent.side == event["side"],
                LiquidationEvent.occurred_at == event["occurred_at"],
            )
        )
        if seen is not None:
            return False
        session.add(LiquidationEvent(account_id=account_id, **event))
        return True


def liquidations(session: Session, account_id: int | None = None) -> list[LiquidationEvent]:
    query = select(LiquidationEvent).order_by(LiquidationEvent.occurred_at)
    if account_id is not None:
        query = query.where(LiquidationEvent.account_id == account_id)
    return list(session.scalars(query))
