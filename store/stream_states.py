"""The streams' states as the poller last saw them (one row per stream, replaced every few
seconds), for the dashboard and the CLI: a reader never asks a stream itself."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from store.schema import StreamState

FORGET_AFTER = timedelta(minutes=10)
FIELDS = (
    "kind",
    "account_id",
    "connected",
    "stale",
    "last_message_at",
    "connected_at",
    "reconnects",
    "messages",
    "dropped",
    "last_error",
)


def replace_states(sessions: sessionmaker[Session], rows: Sequence[Mapping[str, Any]], now: datetime) -> None:
    """Upsert every row (by `name`), stamped `now`. Rows that nobody has written for
    FORGET_AFTER (a stream no longer run; other pollers write their own rows) are removed."""
    with sessions.begin() as session:
        existing = {s.name: s for s in session.scalars(select(StreamState))}
        for row in rows:
            state = existing.pop(row["name"], None)
            if state is None:
                state = StreamState(name=row["name"])
                session.add(state)
            for name in FIELDS:
                setattr(state, name, row.get(name))
            state.updated_at = now
        gone = [name for name, s in existing.items() if s.updated_at < now - FORGET_AFTER]
        if gone:
            session.execute(delete(StreamState).where(StreamState.name.in_(gone)))


def states(session: Session) -> list[StreamState]:
    return list(session.scalars(select(StreamState).order_by(StreamState.name)))


def account_marks(session: Session) -> dict[int, StreamState]:
    """Per account id, its "marks:<account>" row: the newest streamed mark of its symbols
    (last_message_at) and whether its venue's mark stream is connected or stale."""
    rows = session.scalars(
        select(StreamState).where(StreamState.name.like("marks:%"), StreamState.account_id.is_not(None))
    )
    return {r.account_id: r for r in rows if r.account_id is not None}
