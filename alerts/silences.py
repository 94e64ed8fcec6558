"""Silences, acknowledgements and the "firing now" view, shared by the CLI, the dashboard
and the Telegram bot."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from alerts.rules import Level
from store.schema import Account, AlertState, AlertTransition, Silence


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
    since: datetime | None  # None only for a row written before `since` was kept
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


def end_silences(sessions: sessionmaker[Session], account: str | None, now: datetime) -> list[SilenceView]:
    """End every active silence of `account` (None: every active silence); returns them."""
    ended = []
    with sessions.begin() as session:
        query = (
            select(Silence, Account.name)
            .outerjoin(Account, Account.id == Silence.account_id)
            .where(Silence.starts_at <= now, Silence.ends_at > now)
        )
        if account is not None:
            query = query.where(Account.name == account)
        for row, name in session.execute(query).all():
            row.ends_at = now
            ended.append(SilenceView(row.id, name, row.starts_at, now, row.reason))
    return ended


@dataclass(frozen=True)
class AckOutcome:
    """What /ack did: the subjects acknowledged at their level, those it left alone (no
    longer at the level the message told: a newer message stands for them)."""

    account: str
    acked: list[tuple[str, str]]  # (subject, level)
    skipped: list[tuple[str, str]]  # (subject, why)


def acknowledge(sessions: sessionmaker[Session], notification_id: int, by: str, now: datetime) -> AckOutcome:
    """Stop the repeats of what notification `notification_id` told, until its level
    changes. A subject is acknowledged only while it is still at the level the message
    told. ValueError if there is no such notification."""
    with sessions.begin() as session:
        told = session.execute(
            select(AlertTransition.subject, AlertTransition.to_level, Account.name)
            .join(Account, Account.id == AlertTransition.account_id)
            .where(AlertTransition.notification_id == notification_id)
        ).all()
        if not told:
            raise ValueError(f"no alert #{notification_id}")
        account_id = session.scalar(
            select(AlertTransition.account_id).where(AlertTransition.notification_id == notification_id).limit(1)
        )
        acked, skipped = [], []
        for subject, level, _ in told:
            state = session.get(AlertState, (account_id, subject))
            if subject.startswith("liquidation:"):
                skipped.append((subject, "an event: it is never repeated"))
            elif state is None or state.level == Level.OK:
                skipped.append((subject, "resolved since"))
            elif state.level != level:
                skipped.append((subject, f"now {Level(state.level).name}, the message said {Level(level).name}"))
            else:
                state.acked_level, state.acked_at, state.acked_by = state.level, now, by[:120]
                acked.append((subject, Level(state.level).name))
        return AckOutcome(told[0][2], acked, skipped)


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
