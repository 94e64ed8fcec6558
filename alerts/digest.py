"""The daily digest: "all clear: 4 accounts watched, worst 8.1 % / 3.2 σ away, 0 alerts",
once a day at `monitor.digest_at` (UTC), so that silence itself is noticed: a day without
it means the monitor is not running. Sent through the outbox, once whichever poller gets
there first (the day is the key of `alert_digests`)."""

from __future__ import annotations

import html
import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from alerts.messages import Message
from alerts.monitor import LABEL, queue_monitor_message
from alerts.rules import Level
from config.settings import Config
from store import repo
from store.freshness import freshness, staleness
from store.schema import Account, AlertDigest, AlertNotification, AlertState, PositionSnapshot


@dataclass(frozen=True)
class AccountLine:
    label: str
    watched: bool
    health: float | None
    distance: float | None  # nearest liquidation, fraction of the mark
    sigma: float | None  # the same in daily σ
    note: str = ""  # why it is not watched


@dataclass(frozen=True)
class DigestFigures:
    day: str  # YYYY-MM-DD, UTC
    accounts: list[AccountLine] = field(default_factory=list)
    firing: list[str] = field(default_factory=list)  # "binanceusdm/main · health · WARNING"
    told_last_day: int = 0  # notifications created in the last 24 h


def _min(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None and math.isfinite(v)]
    return min(known) if known else None


def compose_digest(figures: DigestFigures) -> Message:
    watched = [a for a in figures.accounts if a.watched]
    unwatched = [a for a in figures.accounts if not a.watched]
    distance, sigma = _min([a.distance for a in watched]), _min([a.sigma for a in watched])
    worst = "no open position"
    if distance is not None:
        worst = f"worst {distance * 100:.1f} %" + (f" / {sigma:.1f} σ" if sigma is not None else "") + " away"
    alerts = f"{len(figures.firing)} alert{'s' if len(figures.firing) != 1 else ''}"
    clear = not figures.firing and not unwatched
    summary = (
        f"{'all clear' if clear else 'attention'}: {len(watched)} account{'s' if len(watched) != 1 else ''} watched"
        + (f", {len(unwatched)} not watched" if unwatched else "")
        + f", {worst}, {alerts}"
    )
    subject = f"DIGEST · {LABEL} · {summary}"
    lines = [f"{LABEL} daily digest, {figures.day}", "", summary, ""]
    for a in figures.accounts:
        if a.watched:
            where = "no position" if a.distance is None else f"nearest liquidation {a.distance * 100:.1f} % away"
            sigmas = f" ({a.sigma:.1f} σ)" if a.sigma is not None and a.distance is not None else ""
            health = "n/a" if a.health is None else f"{a.health:.2f}"
            lines.append(f"  {a.label}: health {health}, {where}{sigmas}")
        else:
            lines.append(f"  {a.label}: NOT WATCHED ({a.note})")
    if figures.firing:
        lines += ["", "Firing now:", *[f"  {f}" for f in figures.firing]]
    lines += ["", f"Alerts told in the last 24 h: {figures.told_last_day}"]
    text = "\n".join(lines) + "\n"
    e = html.escape
    body = (
        f"<html><body><h2>{e(LABEL)} daily digest, {e(figures.day)}</h2><p><b>{e(summary)}</b></p>"
        f"<pre>{e(chr(10).join(lines[4:]))}</pre></body></html>"
    )
    payload = {"account": LABEL, "level": "DIGEST", "subject": subject, "changes": [], "remedy": [], "text": text}
    return Message(Level.OK, subject, text, body, payload)


def digest_figures(session: Session, config: Config, now: datetime) -> DigestFigures:
    rule = staleness(config)
    configured = {a.name: a.label for a in config.accounts}
    lines = []
    for account, snap in repo.latest_snapshots(session):
        if account.name not in configured:
            continue
        fresh = freshness(account.last_success_at, now, rule, account.consecutive_failures)
        watched = account.state == "active" and not fresh.stale
        sigma = None
        if snap is not None:
            sigma = session.scalar(
                select(func.min(PositionSnapshot.distance_sigma)).where(PositionSnapshot.snapshot_id == snap.id)
            )
        note = account.state_reason if account.state != "active" else fresh.reason
        lines.append(
            AccountLine(
                configured[account.name],
                watched,
                snap.health if snap else None,
                snap.nearest_distance if snap else None,
                sigma,
                note or "",
            )
        )
    firing = [
        f"{configured.get(name, name)} · {subject} · {Level(level).name}"
        for name, subject, level in session.execute(
            select(Account.name, AlertState.subject, AlertState.level)
            .join(Account, Account.id == AlertState.account_id)
            .where(AlertState.level > 0)
            .order_by(AlertState.level.desc(), Account.name)
        )
    ]
    told = session.scalar(
        select(func.count())
        .select_from(AlertNotification)
        .where(AlertNotification.created_at >= now - timedelta(days=1), AlertNotification.level > 0)
    )
    return DigestFigures(now.strftime("%Y-%m-%d"), lines, firing, int(told or 0))


def due(config: Config, now: datetime) -> bool:
    """Past today's digest time (UTC)."""
    if config.monitor.digest_at is None:
        return False
    hour, minute = (int(part) for part in config.monitor.digest_at.split(":"))
    return now >= now.replace(hour=hour, minute=minute, second=0, microsecond=0)


def send_digest_if_due(sessions: sessionmaker[Session], config: Config, now: datetime) -> int | None:
    """Queue today's digest if its time has come and no poller has yet. Returns the
    notification id (None: not due, or already sent)."""
    if not due(config, now):
        return None
    day = now.strftime("%Y-%m-%d")
    with sessions() as session:
        if session.get(AlertDigest, day) is not None:
            return None
    try:
        with sessions.begin() as session:
            digest = AlertDigest(day=day, created_at=now)
            session.add(digest)
            session.flush()  # a second poller stops here (the day is taken)
            message = compose_digest(digest_figures(session, config, now))
            digest.notification_id = queue_monitor_message(session, config, message, now)
            return digest.notification_id
    except IntegrityError:
        return None
