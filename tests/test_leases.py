"""store.leases on SQLite and PostgreSQL: pollers that join, share, die and are replaced,
driven interval by interval with explicit database times (no waiting). In every interval
no account goes to two pollers; an account misses at most the one interval after its
poller died; the shares even out."""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from store import leases, pollers, repo
from store.db import make_engine, session_factory, upgrade
from store.schema import AccountLease, PollerProcess

INTERVAL = 10.0
T0 = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)  # an interval boundary (a multiple of 10 s)


def _store(url: str):
    upgrade(url)
    sessions = session_factory(make_engine(url))
    ids = repo.ensure_accounts(sessions, [repo.AccountInfo(f"a{i}", "binanceusdm", "USDT") for i in range(6)])
    leases.ensure_rows(sessions, list(ids.values()))
    return sessions, sorted(ids.values())


def _poller(sessions, name: str) -> int:
    with sessions.begin() as session:
        row = PollerProcess(host=name, pid=1, started_at=T0, seen_at=T0, interval_seconds=INTERVAL)
        session.add(row)
        session.flush()
        return int(row.id)


def _claim(sessions, poller_id: int, accounts: list[int], at: datetime) -> frozenset[int]:
    with sessions.begin() as session:
        pollers.seen(session, poller_id, at)
        return leases.claim(session, poller_id, accounts, at, INTERVAL).accounts


def _at(interval: int, offset: float = 0.2) -> datetime:
    return T0 + timedelta(seconds=interval * INTERVAL + offset)


def test_join_share_die_take_over(db_url: str) -> None:
    sessions, accounts = _store(db_url)
    a, b = _poller(sessions, "a"), _poller(sessions, "b")
    assert _claim(sessions, a, accounts, _at(0)) == frozenset(accounts)  # alone: b not seen yet
    # b starts: a polls all six this interval too, and hands three over at its end
    got = {a: _claim(sessions, a, accounts, _at(1, 0.1)), b: _claim(sessions, b, accounts, _at(1, 0.3))}
    assert got[a] == frozenset(accounts) and got[b] == frozenset()
    got = {b: _claim(sessions, b, accounts, _at(2, 0.1)), a: _claim(sessions, a, accounts, _at(2, 0.3))}
    assert len(got[a]) == len(got[b]) == 3 and got[a].isdisjoint(got[b])
    # a polls twice in one interval (a retry after a database error): nothing twice
    assert _claim(sessions, a, accounts, _at(2, 5.0)) == frozenset()
    # a dies after claiming interval 3; b misses a's accounts in 4 only and has all from 5
    a_had = _claim(sessions, a, accounts, _at(3))
    assert _claim(sessions, b, accounts, _at(3)) == got[b]
    assert _claim(sessions, b, accounts, _at(4)) == got[b]
    assert _claim(sessions, b, accounts, _at(5)) == frozenset(accounts)
    assert a_had == got[a]


def test_random_joins_and_deaths_never_poll_twice_in_an_interval(db_url: str) -> None:
    """40 intervals, three pollers starting each interval in a random order and at random
    moments, one of them dying and a replacement starting later."""
    sessions, accounts = _store(db_url)
    rng = random.Random(15)
    alive = {_poller(sessions, n): 0 for n in ("a", "b", "c")}  # poller -> interval it joined
    polled: dict[int, Counter[int]] = {}
    for k in range(40):
        if k == 15:  # dies during interval 14, after its claim: its accounts miss interval 15
            victim = rng.choice(sorted(alive))
            del alive[victim]
        if k == 25:
            alive[_poller(sessions, "d")] = k
        order = list(alive)
        rng.shuffle(order)
        counts: Counter[int] = Counter()
        for poller_id in order:
            counts.update(_claim(sessions, poller_id, accounts, _at(k, rng.uniform(0.02, 3.0))))
        polled[k] = counts
        assert all(n == 1 for n in counts.values()), f"interval {k}: {counts}"  # never twice
    missed = {k: [a for a in accounts if polled[k][a] == 0] for k in polled}
    # after the start (pollers joining one by one), none but the interval after the death
    assert all(not missed[k] for k in range(3, 40) if k != 15), {k: v for k, v in missed.items() if v}
    assert missed[15]
    per_poller: Counter[int | None] = Counter()
    with sessions() as session:
        for row in session.scalars(select(AccountLease)):
            per_poller[row.poller_id] += 1
    assert sorted(per_poller.values()) == [2, 2, 2]  # evened out again after the replacement
