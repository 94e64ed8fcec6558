"""The Telegram bot's commands, answered from the store (alerts.telegram_bot runs the loop):

    /status                          the accounts, worst first (alert level, then health)
    /ack ID                          stop the repeats of alert ID until its level changes
    /silence ACCOUNT|all [MINUTES]   mute (60 minutes by default)
    /unsilence [ACCOUNT|all]         end the silences (all of them by default)
    /help

Replies are Telegram HTML: every value from the store, a config or the user is escaped."""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from alerts.rules import Level
from alerts.silences import acknowledge, active_silences, create_silence, end_silences
from alerts.telegram_text import MESSAGE_LIMIT, escape
from config.settings import Config
from margin.inverse import money_places
from store import repo
from store.freshness import is_stale, staleness
from store.levels import display_level, order_key
from store.schema import AlertState

HELP = (
    "<b>marginwatch</b> commands:\n"
    "/status: the accounts, worst first\n"
    "/ack ID: stop the repeats of alert ID until its level changes\n"
    "/silence ACCOUNT [MINUTES]: mute an account (or all) for 60 minutes, or MINUTES\n"
    "/unsilence [ACCOUNT]: end the silences (of one account, or all)"
)
TOO_OLD = timedelta(minutes=10)  # a command sent while nobody was listening is not run late
MAX_SILENCE_MINUTES = 60 * 24 * 30


def _ago(moment: datetime | None, now: datetime) -> str:
    if moment is None:
        return "never"
    seconds = max(0.0, (now - moment).total_seconds())
    return f"{seconds:.0f} s ago" if seconds < 120 else f"{seconds / 60:.0f} min ago"


def status_html(sessions: sessionmaker[Session], config: Config, now: datetime) -> str:
    """Every configured account in the order of every screen (store.levels: worst risk
    level, then highest chance, then nearest liquidation), its level, the danger in the
    market's terms, and the alert rules firing."""
    labels = {a.name: a.label for a in config.accounts}
    with sessions() as session:
        pairs = [(a, s) for a, s in repo.latest_snapshots(session) if a.name in labels]
        firing = session.scalars(select(AlertState).where(AlertState.level > 0)).all()
    levels: dict[int, list[AlertState]] = {}
    for state in firing:
        levels.setdefault(state.account_id, []).append(state)
    silenced = {s.account for s in active_silences(sessions, now)}
    if not pairs:
        return "<b>Status</b>\nNo account polled yet."

    def level(pair: tuple) -> str:
        account, snapshot = pair
        stale = is_stale(account.last_success_at, now, staleness(config), account.consecutive_failures)
        return display_level(
            account.state, stale, snapshot.level if snapshot else None, snapshot.positions if snapshot else 0
        )

    def worst_first(pair: tuple) -> tuple[int, float, float, float]:
        snapshot = pair[1]
        if snapshot is None:
            return order_key(level(pair), None, None, None)
        return order_key(level(pair), snapshot.touch_probability, snapshot.nearest_distance, snapshot.worst_health)

    lines = [f"<b>Status</b> ({now:%Y-%m-%d %H:%M} UTC)"]
    if None in silenced:
        lines.append("<i>All accounts are silenced.</i>")
    for account, snapshot in sorted(pairs, key=worst_first):
        name = level((account, snapshot)).upper()
        figures = "no snapshot yet"
        if snapshot is not None:
            health = "n/a" if snapshot.worst_health is None else f"{snapshot.worst_health:.2f}"
            places = money_places(account.collateral, snapshot.equity)  # a coin to six decimals
            figures = f"health {health}, equity {snapshot.equity:,.{places}f} {escape(account.collateral)}"
            if snapshot.nearest_distance is not None:
                sigma = "" if snapshot.nearest_sigma is None else f" ({abs(snapshot.nearest_sigma):.1f} σ)"
                chance = (
                    "" if snapshot.touch_probability is None else f", {snapshot.touch_probability * 100:.1f} % in 24 h"
                )
                figures += (
                    f" · {snapshot.nearest_distance * 100:.1f} %{sigma} to liquidation "
                    f"({escape(snapshot.nearest_liquidation_side or '')}){chance}"
                )
        data = f"data {_ago(account.last_success_at, now)}"
        if account.state != "active":
            data = f"NOT POLLED ({escape(account.state)}: {escape(account.state_reason or account.last_error or '')})"
        mute = " · silenced" if account.name in silenced else ""
        lines.append(f"<b>{name}</b> {escape(labels[account.name])}: {figures} · {data}{mute}")
        for state in sorted(levels.get(account.id, []), key=lambda s: -s.level):  # the rules firing
            acked = " (acknowledged)" if state.acked_level == state.level else ""
            lines.append(f"    {escape(state.subject)} {Level(state.level).name}{acked}")
    text = "\n".join(lines)
    if len(text) > MESSAGE_LIMIT:
        cut = text[: MESSAGE_LIMIT - 40].rpartition("\n")[0]
        text = cut + f"\n… and {text.count(chr(10)) - cut.count(chr(10))} more lines"
    return text


def _ack(sessions: sessionmaker[Session], args: list[str], chat_id: int, now: datetime) -> str:
    if len(args) != 1 or not args[0].lstrip("#").isdigit():
        return "Usage: /ack ID (the number the alert message gives)"
    alert = int(args[0].lstrip("#"))
    try:
        outcome = acknowledge(sessions, alert, f"telegram chat {chat_id}", now)
    except ValueError as exc:
        return escape(exc)
    lines = [f"Alert #{alert} ({escape(outcome.account)}):"]
    lines += [f"acknowledged {escape(s)} {lvl}: no repeats until its level changes" for s, lvl in outcome.acked]
    lines += [f"not acknowledged {escape(s)}: {escape(why)}" for s, why in outcome.skipped]
    return "\n".join(lines)


def _silence(sessions: sessionmaker[Session], config: Config, args: list[str], chat_id: int, now: datetime) -> str:
    if not 1 <= len(args) <= 2:
        return "Usage: /silence ACCOUNT [MINUTES] (ACCOUNT: an account's name, or all)"
    account = args[0]
    names = [a.name for a in config.accounts]
    if account != "all" and account not in names:
        return f"No account named {escape(account)} (accounts: {escape(', '.join(names) or 'none')})"
    try:
        minutes = float(args[1]) if len(args) == 2 else 60.0
    except ValueError:
        minutes = math.nan
    if not 1 <= minutes <= MAX_SILENCE_MINUTES:  # NaN fails too
        return f"MINUTES: a number from 1 to {MAX_SILENCE_MINUTES}"
    try:
        made = create_silence(sessions, None if account == "all" else account, now, minutes, f"telegram chat {chat_id}")
    except ValueError as exc:  # configured but never polled yet
        return escape(exc)
    until = f"{made.ends_at:%Y-%m-%d %H:%M} UTC"
    return f"Silenced {escape(made.account or 'all accounts')} until {until} (silence #{made.id})"


def _unsilence(sessions: sessionmaker[Session], args: list[str], now: datetime) -> str:
    if len(args) > 1:
        return "Usage: /unsilence [ACCOUNT] (none: every silence)"
    account = None if not args or args[0] == "all" else args[0]
    ended = end_silences(sessions, account, now)
    if not ended:
        return "No active silence" + (f" for {escape(account)}" if account else "") + "."
    return "Ended: " + ", ".join(f"#{s.id} ({escape(s.account or 'all accounts')})" for s in ended)


def answer(
    sessions: sessionmaker[Session],
    config: Config,
    text: str,
    chat_id: int,
    sent_at: datetime | None,
    now: datetime,
    username: str = "",
) -> str | None:
    """The reply (Telegram HTML) to one message of an allowed chat; None: not for us
    (plain text, or a command addressed to another bot)."""
    words = text.strip().split()
    if not words or not words[0].startswith("/"):
        return None
    command, _, addressee = words[0][1:].partition("@")
    if addressee and username and addressee.lower() != username.lower():
        return None
    command, args = command.lower(), words[1:]
    if sent_at is not None and now - sent_at > TOO_OLD:
        return f"Ignored /{escape(command)}: sent {_ago(sent_at, now)}, while nobody was answering. Send it again."
    if command in ("help", "start"):
        return HELP
    if command == "status":
        return status_html(sessions, config, now)
    if command == "ack":
        return _ack(sessions, args, chat_id, now)
    if command == "silence":
        return _silence(sessions, config, args, chat_id, now)
    if command == "unsilence":
        return _unsilence(sessions, args, now)
    return f"Unknown command /{escape(command)}.\n\n{HELP}"
