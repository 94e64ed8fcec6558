"""Silences and the "firing now" view, shared by the CLI and the dashboard."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from alerts.rules import Level
from store.schema import Account, AlertState, Silence


@dataclass(frozen=True)
class SilenceView:
    id: int
    account: str | None  # None: all accounts
    starts_at: datetime
    ends_at: datetime
    reason: str | None


@dataclass(frozen=True)
class FiringView:
    account: str
    subject: str
    level: str
    since: datetime
    value: float | None


def create_silence(
    sessions: sessionmaker[Session], account: str | None, now: datetime, minutes: float, reason: str | None = None
) -> SilenceView:
    with sessions.begin() as session:
        account_id = None
        if account is not None:
            account_id = session.scalar(select(Account.id).where(Account.name == account))
            if account_id is None:
                raise ValueError(f"no stored account named {account!r}")
        row = Silence(account_id=account_id, starts_at=now, ends_at=now + timedelta(minutes=minutes), reason=reason)
        session.add(row)
        session.flush()
        return SilenceView(row.id, account, row.starts_at, row.ends_at, reason)


def end_silence(sessions: sessionmaker[Session], silence_id: int, now: datetime) -> bool:
    with sessions.begin() as session:
        row = session.get(Silence, silence_id)
        if row is None or row.ends_at <= now:
            return False
        row.ends_at = now
        return True


def active_silences(sessions: sessionmaker[Session], now: datetime) -> list[SilenceView]:
    with sessions() as session:
        rows = session.execute(
            select(Silence, Account.name)
            .outerjoin(Account, Account.id == Silence.account_id)
            .where(Silence.starts_at <= now, Silence.ends_at > now)
            .order_by(Silence.ends_at)
        )
        return [SilenceView(s.id, name, s.starts_at, s.ends_at, s.reason) for s, name in rows]


def firing(sessions: sessionmaker[Session]) -> list[FiringView]:
    """Every subject above OK, most severe first."""
    with sessions() as session:
        rows = session.execute(
            select(AlertState, Account.name)
            .join(Account, Account.id == AlertState.account_id)
            .where(AlertState.level > 0)
            .order_by(AlertState.level.desc(), AlertState.since)
        )
        return [FiringView(name, s.subject, Level(s.level).name, s.since, s.value) for s, name in rows]
