"""The Telegram bot's command loop: long-polls getUpdates and answers each command of an
allowed chat (alerts.bot_commands, on a thread: the store is synchronous). A message from
any other chat is ignored and logged with its chat id, never the token."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TypeVar

from sqlalchemy.orm import Session, sessionmaker
from telegram import Update
from telegram.error import Conflict, InvalidToken, TelegramError

from alerts.bot_commands import answer, escape
from alerts.senders import DeliveryError
from alerts.telegram import BotClient, bot_token, make_bot, scrub, send_html
from config.settings import Config, TelegramConfig

log = logging.getLogger(__name__)
T = TypeVar("T")
CONFLICT_WAIT_SECONDS = 60.0


class _Stopped(Exception):
    pass


async def _or_stop(work: Awaitable[T], stop: asyncio.Event) -> T:
    """`work`'s result, or _Stopped (and `work` cancelled) as soon as `stop` is set."""
    task = asyncio.ensure_future(work)
    stopping = asyncio.ensure_future(stop.wait())
    try:
        done, _ = await asyncio.wait({task, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopping.cancel()
    if task not in done:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        raise _Stopped
    return task.result()


async def _handle(
    client: BotClient,
    update: Update,
    sessions: sessionmaker[Session],
    config: Config,
    bot: TelegramConfig,
    username: str,
    token: str,
    now: Callable[[], datetime],
) -> None:
    message = update.message
    if message is None or not message.text:
        return
    chat_id = message.chat.id
    if chat_id not in bot.chat_ids:
        log.warning("telegram %s: ignored a message from chat %s (not in chat_ids)", bot.name, chat_id)
        return
    try:
        reply = await asyncio.to_thread(answer, sessions, config, message.text, chat_id, message.date, now(), username)
    except Exception as exc:  # the store away, say: the chat is told, the loop goes on
        log.exception("telegram %s: could not answer a command", bot.name)
        reply = f"Could not answer: {escape(type(exc).__name__)} (see the poller's log)"
    if reply is None:
        return
    try:
        await send_html(client.bot, chat_id, reply)
    except TelegramError as exc:
        log.warning("telegram %s: reply to chat %s failed: %s", bot.name, chat_id, scrub(str(exc), token))


async def run_commands(
    sessions: sessionmaker[Session],
    config: Config,
    bot: TelegramConfig,
    stop: asyncio.Event,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
    retry_seconds: float = 5.0,
) -> None:
    """Answer `bot`'s commands until `stop`. Network trouble is retried every
    `retry_seconds`; a refused token ends the loop (said in the log)."""
    try:
        token = bot_token(bot)
    except DeliveryError as exc:
        log.error("%s: its commands are not answered", exc)
        return
    client = make_bot(bot, token, long_poll_seconds=bot.poll_timeout_seconds)
    offset: int | None = None
    username: str | None = None
    try:
        while not stop.is_set():
            try:
                if username is None:
                    username = (await _or_stop(client.bot.get_me(), stop)).username or ""
                updates = await _or_stop(
                    client.bot.get_updates(
                        offset=offset, timeout=bot.poll_timeout_seconds, allowed_updates=["message"]
                    ),
                    stop,
                )
            except _Stopped:
                return
            except InvalidToken:
                log.error("telegram %s: the bot token was refused; commands are off until a restart", bot.name)
                return
            except TelegramError as exc:
                wait = retry_seconds
                if isinstance(exc, Conflict):  # Telegram serves one reader per bot
                    wait = max(retry_seconds, CONFLICT_WAIT_SECONDS)
                    log.warning(
                        "telegram %s: another process reads this bot's updates; set commands = false on all "
                        "but one poller",
                        bot.name,
                    )
                else:
                    log.warning("telegram %s: getUpdates failed (%s); retrying", bot.name, scrub(str(exc), token))
                try:
                    await _or_stop(asyncio.sleep(wait), stop)
                except _Stopped:
                    return
                continue
            for update in updates:
                offset = update.update_id + 1  # confirms it with the next getUpdates
                await _handle(client, update, sessions, config, bot, username, token, now)
    finally:
        await client.close()
