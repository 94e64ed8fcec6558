"""`marginwatch alerts ...`: test the channels, silence accounts, list what fires."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated

import typer

from cli.common import ConfigOption, fail, load_or_fail, open_store
from config.settings import MAX_REPEAT_MINUTES

alerts_app = typer.Typer(help="Alerts: test the channels, silence accounts.", no_args_is_help=True)


@alerts_app.command("test")
def alerts_test(config: ConfigOption = None) -> None:
    """Send a test message through every configured channel."""
    from alerts.senders import DeliveryError, post_webhook, send_email

    settings = load_or_fail(config)
    if not settings.alerts.email and not settings.alerts.webhooks:
        fail("no alert channel configured ([alerts.email] or [[alerts.webhooks]])")
    subject = "TEST · marginwatch · alert channel check"
    text = "This is a test message from marginwatch: this channel delivers alerts.\n"
    failures = 0
    channels: list[tuple[str, Callable[[], None]]] = []
    if settings.alerts.email:
        email_config = settings.alerts.email
        recipients = sorted({r for a in settings.accounts for r in settings.recipients(a)} | set(email_config.to))
        channels.append(
            (
                f"email to {', '.join(recipients) or 'nobody'}",
                lambda: send_email(email_config, recipients, subject, text, f"<p>{text}</p>", message_key=""),
            )
        )
    for hook in settings.alerts.webhooks:
        payload = {"subject": subject, "changes": [], "remedy": [], "text": text}
        channels.append((f"webhook {hook.name}", lambda hook=hook, payload=payload: post_webhook(hook, payload)))
    for name, send in channels:
        try:
            send()
        except DeliveryError as exc:
            failures += 1
            print(f"FAILED  {name}: {exc}")
        else:
            print(f"sent    {name}")
    raise typer.Exit(1 if failures else 0)


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
    from alerts.silences import active_silences, firing

    sessions = open_store(load_or_fail(config))
    now = datetime.now(UTC)
    rows = firing(sessions)
    for row in rows:
        print(f"{row.level:<8} {row.account:<30} {row.subject:<40} since {row.since:%Y-%m-%d %H:%M}")
    if not rows:
        print("no alert firing")
    for silence in active_silences(sessions, now):
        print(
            f"silence {silence.id}: {silence.account or 'all accounts'} until "
            f"{silence.ends_at:%Y-%m-%d %H:%M} UTC ({silence.reason or 'no reason given'})"
        )
