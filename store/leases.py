"""Account leases: several pollers on one PostgreSQL database share the accounts, each
account polled by one poller at a time and never twice in one interval.

Time is cut into numbered intervals of the database's clock (interval_no = database time
// poll interval), and every poller starts its cycles at the same boundaries. At the start
of interval k a poller, in one transaction:

- renews the leases it holds, up to its fair share (ceil(accounts / live pollers); a
  poller is live when it started a cycle within 1.5 intervals), and hands the rest over:
  it polls them this interval and lets their lease end with it;
- claims free leases (ended, and not yet taken for interval k) up to its share, the ones
  polled longest ago first, and any account nobody has polled for two intervals whatever
  its share (so that a wrong count of the live pollers never leaves an account unwatched).

Each claim and renewal is a compare-and-set on (poller, interval_no < k, expiry), with
PostgreSQL's `FOR UPDATE SKIP LOCKED` so that pollers claiming at once do not queue on
each other: an account can go to one poller only for interval k. A held lease lasts to
the end of the interval plus half an interval (a late start does not lose it); a poller
that dies therefore loses its accounts to the others at the second interval boundary
after its last claim: they miss at most one interval.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Executable, and_, func, insert, select, update
from sqlalchemy.orm import Session, sessionmaker

from store.schema import AccountLease, PollerProcess

LIVE_WITHIN_INTERVALS = 1.5
GRACE_INTERVALS = 0.5
STARVING_INTERVALS = 2
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Claim:
    """What one poller polls in interval `interval_no`: account ids."""

    interval_no: int
    accounts: frozenset[int]
    live_pollers: int
    share: int


def interval_no(now: datetime, interval_seconds: float) -> int:
    return math.floor(now.timestamp() / interval_seconds)


def interval_start(number: int, interval_seconds: float) -> datetime:
    return datetime.fromtimestamp(number * interval_seconds, UTC)


def ensure_rows(sessions: sessionmaker[Session], account_ids: Sequence[int]) -> None:
    """A lease row per account (free), for the accounts that have none yet."""
    with sessions.begin() as session:
        have = set(session.scalars(select(AccountLease.account_id)))
        missing = [i for i in account_ids if i not in have]
        if missing:
            rows = [{"account_id": i, "poller_id": None, "interval_no": -1, "expires_at": EPOCH} for i in missing]
            if session.get_bind().dialect.name == "postgresql":
                from sqlalchemy.dialects.postgresql import insert as pg_insert

                session.execute(pg_insert(AccountLease).on_conflict_do_nothing(), rows)
            else:
                session.execute(insert(AccountLease), rows)


def _ids(session: Session, statement: Executable) -> set[int]:
    return set(session.scalars(statement))


def claim(
    session: Session, poller_id: int, account_ids: Sequence[int], now: datetime, interval_seconds: float
) -> Claim:
    """Take this poller's accounts for the interval `now` falls in (see the module doc).
    `now` is the database's time, read in this transaction; the poller's own row must
    have been marked seen at `now` first (store.pollers.seen)."""
    k = interval_no(now, interval_seconds)
    end = interval_start(k + 1, interval_seconds)
    hold = end + timedelta(seconds=GRACE_INTERVALS * interval_seconds)
    live = session.scalar(
        select(func.count())
        .select_from(PollerProcess)
        .where(
            PollerProcess.stopped_at.is_(None),
            PollerProcess.seen_at >= now - timedelta(seconds=LIVE_WITHIN_INTERVALS * interval_seconds),
        )
    )
    live = max(1, int(live or 0))
    share = math.ceil(len(account_ids) / live)
    mine = AccountLease.account_id.in_(account_ids)
    held = sorted(
        session.scalars(
            select(AccountLease.account_id).where(
                mine, AccountLease.poller_id == poller_id, AccountLease.expires_at > now
            )
        )
    )
    keep, extra = held[:share], held[share:]
    taken: set[int] = set()
    for ids, until in ((keep, hold), (extra, end)):
        if ids:
            taken |= _ids(
                session,
                update(AccountLease)
                .where(
                    AccountLease.account_id.in_(ids),
                    AccountLease.poller_id == poller_id,
                    AccountLease.interval_no < k,
                )
                .values(interval_no=k, expires_at=until)
                .returning(AccountLease.account_id),
            )
    # starving accounts first, all of them; then free ones up to the share. Only the rows
    # taken are locked (LIMIT): the others stay free for the pollers claiming beside us.
    starving = _free(session, mine, now, k - STARVING_INTERVALS, None, [])
    chosen = starving + _free(session, mine, now, k, max(0, share - len(keep) - len(starving)), starving)
    if chosen:
        taken |= _ids(
            session,
            update(AccountLease)
            .where(
                and_(
                    AccountLease.account_id.in_(chosen),
                    AccountLease.expires_at <= now,
                    AccountLease.interval_no < k,
                )
            )
            .values(poller_id=poller_id, interval_no=k, expires_at=hold)
            .returning(AccountLease.account_id),
        )
    return Claim(k, frozenset(taken), live, share)


def _free(session: Session, mine: Any, now: datetime, before: int, limit: int | None, besides: list[int]) -> list[int]:
    """Ids of ended leases last taken for an interval before `before`, oldest first, locked
    for this transaction (PostgreSQL skips the ones another poller is locking)."""
    if limit == 0:
        return []
    query = (
        select(AccountLease.account_id)
        .where(
            mine,
            AccountLease.expires_at <= now,
            AccountLease.interval_no < before,
            AccountLease.account_id.not_in(besides),
        )
        .order_by(AccountLease.interval_no, AccountLease.account_id)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    return list(session.scalars(query))


def release(session: Session, poller_id: int, now: datetime, interval_seconds: float) -> None:
    """A clean stop: this poller's leases end with the current interval (the accounts it
    polled in it are not polled again in it by another)."""
    end = interval_start(interval_no(now, interval_seconds) + 1, interval_seconds)
    session.execute(
        update(AccountLease)
        .where(AccountLease.poller_id == poller_id, AccountLease.expires_at > end)
        .values(expires_at=end)
    )
