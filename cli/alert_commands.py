"""`marginwatch alerts ...`: test the channels, silence accounts, acknowledge an alert,
list what fires and how each message was delivered."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer

from cli.common import ConfigOption, fail, load_or_fail, open_store
from config.settings import MAX_REPEAT_MINUTES

alerts_app = typer.Typer(help="Alerts: test the channels, silence accounts.", no_args_is_help=True)


@alerts_app.command("test")
def alerts_test(config: ConfigOption = None) -> None:
    """Send a test message through every configured channel (each email recipient, each
    webhook, each Telegram chat), all at once."""
    from alerts.channels import all_recipients, send_direct
    from alerts.messages import channel_test

    settings = load_or_fail(config)
    if not settings.alerts.email and not settings.alerts.webhooks and not settings.alerts.telegram:
        fail("no alert channel configured ([alerts.email], [[alerts.webhooks]] or [[alerts.telegram]])")
    email_config = settings.alerts.email
    message = channel_test(datetime.now(UTC), email_config.sender if email_config else None)
    recipients = all_recipients(settings)
    key = str(message.payload["notification_id"])  # the message's own id: its Message-ID too
    results = send_direct(settings, message.subject, message.text, message.html, message.payload, recipients, key)
    for channel, error in results:
        name = f"email to {', '.join(recipients) or 'nobody'}" if channel == "email" else channel.replace(":", " ", 1)
        print(f"FAILED  {name}: {error}" if error else f"sent    {name}")
    raise typer.Exit(1 if any(error for _, error in results) else 0)


@alerts_app.command("silence")
def alerts_silence(
    account: Annotated[str, typer.Option(help="Account name, or 'all'.")],
    minutes: Annotated[float, typer.Option(help="For how long (at most a year).", min=1, max=MAX_REPEAT_MINUTES)] = 60,
    reason: Annotated[str | None, typer.Option(help="Why (shown on the dashboard).")] = None,
    config: ConfigOption = None,
) -> None:
    """Mute one account (or all) for a while; alert state still advances."""
    from alerts.silences import create_silence

    settings = load_or_fail(config)
    if account != "all" and account not in {a.name for a in settings.accounts}:
        fail(f"--account: no account named {account!r}")
    try:
        silence = create_silence(
            open_store(settings), None if account == "all" else account, datetime.now(UTC), minutes, reason
        )
    except ValueError as exc:  # configured but never polled yet
        fail(str(exc))
    print(f"silence {silence.id}: {account} muted until {silence.ends_at:%Y-%m-%d %H:%M} UTC")


@alerts_app.command("unsilence")
def alerts_unsilence(silence_id: int, config: ConfigOption = None) -> None:
    """End a silence now."""
    from alerts.silences import end_silence

    if not end_silence(open_store(load_or_fail(config)), silence_id, datetime.now(UTC)):
        fail(f"no active silence {silence_id}")
    print(f"silence {silence_id} ended")


@alerts_app.command("list")
def alerts_list(config: ConfigOption = None) -> None:
    """Alerts firing now, and active silences."""
    from alerts.clean import one_line
    from alerts.silences import active_silences, firing

    sessions = open_store(load_or_fail(config))
    now = datetime.now(UTC)
    rows = firing(sessions)
    for row in rows:
        since = "?" if row.since is None else f"{row.since:%Y-%m-%d %H:%M}"
        print(f"{row.level:<8} {row.account:<30} {one_line(row.subject):<40} since {since}")
    if not rows:
        print("no alert firing")
    for silence in active_silences(sessions, now):
        print(
            f"silence {silence.id}: {silence.account or 'all accounts'} until "
            f"{silence.ends_at:%Y-%m-%d %H:%M} UTC ({one_line(silence.reason or 'no reason given')})"
        )


@alerts_app.command("ack")
def alerts_ack(alert_id: int, config: ConfigOption = None) -> None:
    """Stop the repeats of alert ID (its notification's number) until its level changes."""
    from alerts.clean import one_line
    from alerts.silences import acknowledge

    try:
        outcome = acknowledge(open_store(load_or_fail(config)), alert_id, "cli", datetime.now(UTC))
    except ValueError as exc:
        fail(str(exc))
    for subject, level in outcome.acked:
        print(f"acknowledged  {one_line(outcome.account)} {one_line(subject)} {level}: no repeats until it changes")
    for subject, why in outcome.skipped:
        print(f"not acked     {one_line(outcome.account)} {one_line(subject)}: {one_line(why)}")


STATUS_CHOICES = ("pending", "sending", "sent", "failed")


@alerts_app.command("deliveries")
def alerts_deliveries(
    status: Annotated[
        str | None, typer.Option(help="Only rows in this status: pending, sending, sent, failed.")
    ] = None,
    limit: Annotated[int, typer.Option(help="How many rows, newest first.", min=1, max=10_000)] = 50,
    config: ConfigOption = None,
) -> None:
    """How each alert was delivered, per channel: pending (with the next try), sending,
    sent, or failed with the reason; and the attempts made."""
    from alerts.deliveries import delivery_counts, recent_deliveries

    if status is not None and status not in STATUS_CHOICES:
        fail(f"--status: one of {', '.join(STATUS_CHOICES)}; got {status!r}")
    sessions = open_store(load_or_fail(config))
    counts = delivery_counts(sessions)
    print(" · ".join(f"{name} {count}" for name, count in counts.items()))
    rows = recent_deliveries(sessions, limit, status)
    if not rows:
        print("no delivery" + (f" {status}" if status else "") + " recorded")
        return
    for row in rows:
        if row.status == "sent" and row.sent_at:
            when = f"sent {row.sent_at:%Y-%m-%d %H:%M:%S}"
        elif row.status == "pending" and row.next_attempt_at:
            when = f"next try {row.next_attempt_at:%Y-%m-%d %H:%M:%S}"
        else:
            when = ""
        print(
            f"#{row.alert:<6} {row.created_at:%Y-%m-%d %H:%M:%S}  {row.account:<28} {row.channel:<28} "
            f"{row.status:<8} {row.attempts:>2} attempt{'s' if row.attempts != 1 else ' '}  {when}"
        )
        print(f"        {row.subject}")
        if row.error:
            print(f"        error: {row.error}")
