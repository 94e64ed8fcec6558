"""Telegram: the Bot API client (python-telegram-bot's `telegram.Bot` on its own, no
Application), sending one message, and the error mapping onto our temporary / permanent
delivery errors.

The bot token is a secret that controls the bot: it comes from the environment variable
the config names, and it is cut out of every error we store or log. httpx logs each
request's URL at INFO and PTB its API URL at DEBUG, token included: their loggers are held
at WARNING here."""

from __future__ import annotations

import asyncio
import logging
import os
import warnings
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from typing import TypeVar

from telegram import Bot, LinkPreviewOptions
from telegram.constants import ParseMode
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Conflict,
    EndPointNotFound,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
    TimedOut,
)
from telegram.request import HTTPXRequest

from alerts.clean import one_line
from alerts.senders import DeliveryError, PermanentDeliveryError, TemporaryDeliveryError
from config.settings import TelegramConfig

# httpx logs each request's URL at INFO, and PTB the API URL at DEBUG: the token is in both
for _name in ("httpx", "httpcore", "telegram"):
    logging.getLogger(_name).setLevel(logging.WARNING)
# RetryAfter.retry_after as a timedelta (PTB 23's form; the int form warns since 22.2)
os.environ.setdefault("PTB_TIMEDELTA", "true")

T = TypeVar("T")


def bot_token(config: TelegramConfig) -> str:
    token = os.environ.get(config.bot_token_env, "").strip()
    if not token:
        raise PermanentDeliveryError(f"telegram {config.name}: variable {config.bot_token_env} not set")
    return token


@dataclass
class BotClient:
    """A Bot and the two HTTP clients it owns (one for getUpdates' long polls)."""

    bot: Bot
    requests: tuple[HTTPXRequest, HTTPXRequest]

    async def close(self) -> None:
        # Bot.shutdown() skips a bot never initialized, and initialize() would call getMe
        await asyncio.gather(*(r.shutdown() for r in self.requests), return_exceptions=True)


def make_bot(config: TelegramConfig, token: str, long_poll_seconds: int = 0) -> BotClient:
    """A Bot for `config`'s API server; requests time out after `timeout_seconds` (the
    getUpdates client waits the long poll on top)."""
    timeout = config.timeout_seconds
    request = HTTPXRequest(
        connection_pool_size=4,
        connect_timeout=timeout,
        read_timeout=timeout,
        write_timeout=timeout,
        pool_timeout=timeout,
    )
    updates = HTTPXRequest(
        connection_pool_size=1,
        connect_timeout=timeout,
        read_timeout=timeout + long_poll_seconds,
        write_timeout=timeout,
        pool_timeout=timeout,
    )
    bot = Bot(
        token,
        base_url=f"{config.api_base_url.rstrip('/')}/bot",  # the token is appended: .../bot<token>/<method>
        request=request,
        get_updates_request=updates,
    )
    return BotClient(bot, (request, updates))


def scrub(text: str, token: str) -> str:
    """`text` without the token (PTB puts it in some messages), on one line."""
    return one_line(text.replace(token, "<token>") if token else text, 500)


def delivery_error(exc: TelegramError, token: str, name: str) -> DeliveryError:
    """A Bot API failure as a delivery error: flood control, time-outs and network trouble
    are retried; a refused token, a bot blocked or not in the chat, a bad request are not."""
    what = f"telegram {name}: {scrub(str(exc), token)}"
    if isinstance(exc, RetryAfter):
        with warnings.catch_warnings():  # PTB 22 warns that the int form is deprecated
            warnings.simplefilter("ignore")
            wait = exc.retry_after
        seconds = wait.total_seconds() if isinstance(wait, timedelta) else float(wait)
        return TemporaryDeliveryError(what, retry_after=seconds)
    if isinstance(exc, InvalidToken):
        return PermanentDeliveryError(f"telegram {name}: the bot token was refused (401)")
    if isinstance(exc, ChatMigrated):
        return PermanentDeliveryError(f"{what}; put {exc.new_chat_id} in chat_ids")
    if isinstance(exc, BadRequest | Forbidden | EndPointNotFound):  # BadRequest is a NetworkError: first
        return PermanentDeliveryError(what)
    if isinstance(exc, TimedOut | NetworkError | Conflict):
        return TemporaryDeliveryError(what)
    return TemporaryDeliveryError(what)


async def send_html(bot: Bot, chat_id: int, text: str) -> None:
    """One message in Telegram's HTML parse mode, without link previews."""
    await bot.send_message(
        chat_id=chat_id,
        text=text,
        parse_mode=ParseMode.HTML,
        link_preview_options=LinkPreviewOptions(is_disabled=True),
    )


def _run(make: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine to completion from synchronous code (the outbox's threads); from
    inside a running event loop, on a thread of its own."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(make())  # type: ignore[arg-type]
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(lambda: asyncio.run(make())).result()  # type: ignore[arg-type]


def send_alert(config: TelegramConfig, chat_id: int, text: str) -> None:
    """Send `text` (Telegram HTML) to one chat; raises a DeliveryError."""
    token = bot_token(config)

    async def send() -> None:
        client = make_bot(config, token)
        try:
            await send_html(client.bot, chat_id, text)
        except TelegramError as exc:
            raise delivery_error(exc, token, f"{config.name} chat {chat_id}") from None
        finally:
            await client.close()

    _run(send)
