"""What the streams share: which venues stream and how (as data), building a ccxt.pro client,
tapping every parsed ticker, the visible state of a stream, and error text fit to show.

ccxt.pro resolves a watch with the first frame after the call; frames that arrive while
nobody awaits (a burst, or while the caller handles the last one) only update its caches.
`tap_tickers` therefore hooks each connection's `resolve`, which every handler calls once
per parsed update: no mark is lost between two watch calls, and a burst is seen in order.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import ccxt.pro as ccxt_pro

from connectors.errors import RetryPolicy, classify
from connectors.guards import redact, reject_unparseable_json
from connectors.redirect import quiet_ccxt_logger, redirect, redirect_ws
from connectors.venues import profile_for

quiet_ccxt_logger()
log = logging.getLogger(__name__)

CLOSE_TIMEOUT = 2.0  # seconds: a hung connection's closing handshake is not waited for longer
DEFAULT_BACKOFF = RetryPolicy(1.0, 60.0)  # seconds: 0.5-1 after a drop, doubling, up to 30-60


def _unified_wallets(balance: Mapping[str, Any]) -> Any:
    """Binance: ccxt's streamed `total` is the wallet balance (`wb`), which marks do not move."""
    return {code: v.get("total") for code, v in balance.items() if isinstance(v, dict) and "total" in v}


def _bybit_wallets(balance: Mapping[str, Any]) -> Any:
    info = balance.get("info")
    rows = info if isinstance(info, list) else []
    return sorted((c.get("coin"), c.get("walletBalance")) for r in rows for c in r.get("coin") or [])


def _okx_wallets(balance: Mapping[str, Any]) -> Any:
    info = balance.get("info")
    rows = (info.get("data") if isinstance(info, dict) else None) or []
    return sorted((d.get("ccy"), d.get("cashBal")) for r in rows for d in r.get("details") or [])


@dataclass(frozen=True)
class StreamVenue:
    """How a venue streams: the ccxt.pro method that delivers mark prices for a list of
    symbols (Bybit has no mark-price stream: its linear tickers carry markPrice), and the
    options that keep its private watches on the websocket."""

    mark_method: str
    positions_hash: str  # the message hash ccxt resolves watch_positions() with
    balance_hash: str  # ... and watch_balance()
    options: Mapping[str, Any] = field(default_factory=dict)
    account_streams: bool = True  # watch_positions / watch_balance
    keepalive_method: str | None = None  # a REST call that keeps the account stream alive ...
    keepalive_seconds: float | None = None  # ... made this often
    # the part of a streamed balance that marks do not move (OKX also pushes at intervals,
    # with equity and PnL moved by the marks: not a change worth a re-poll)
    wallets: Callable[[Mapping[str, Any]], Any] = _unified_wallets


# Venues streamed (tested against the simulator, docs/streaming.md); others are polled only.
# fetchPositionsSnapshot False: otherwise the first watch_positions answers from REST without
# opening the websocket (Binance), or hangs when one of its two REST calls fails (Bybit).
STREAM_VENUES: dict[str, StreamVenue] = {
    "binanceusdm": StreamVenue(
        "watch_mark_prices",
        "linear:positions",
        "linear:balance",
        {"watchPositions": {"fetchPositionsSnapshot": False}, "watchBalance": {"fetchBalanceSnapshot": False}},
        # the listenKey lives 60 minutes from the last POST or PUT; ccxt PUTs it once only
        keepalive_method="fapiPrivatePutListenKey",
        keepalive_seconds=30 * 60,
    ),
    "bybit": StreamVenue(
        "watch_tickers",
        "positions",
        "balances:unified",
        {"watchPositions": {"fetchPositionsSnapshot": False}},
        wallets=_bybit_wallets,
    ),
    "okx": StreamVenue("watch_mark_prices", "positions", "account", wallets=_okx_wallets),
}


def stream_venue(exchange_id: str) -> StreamVenue | None:
    """How `exchange_id` streams; None: it is polled only."""
    return STREAM_VENUES.get(exchange_id)


@dataclass
class StreamState:
    """What a stream shows: `connected` once data (or, for account streams, a working
    subscription) arrived since the last (re)connect; `stale` when a mark stream has been
    silent for `stale_after_seconds` (it is torn down and redialled, and stays stale until
    a mark arrives: silence never counts as "no change"). Times are wall-clock seconds."""

    name: str  # "binanceusdm" (mark stream) or "binanceusdm/account" (account stream)
    base_url: str | None = None
    connected: bool = False
    stale: bool = False
    last_message_at: float | None = None
    connected_at: float | None = None
    reconnects: int = 0
    keepalives: int = 0  # account streams: keep-alive calls made (Binance's listenKey PUT)
    last_error: str | None = None
    messages: int = 0
    dropped: int = 0  # duplicate or out-of-order updates refused
    symbols: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def make_stream_client(
    exchange_id: str, base_url: str | None, credentials: Mapping[str, str] | None = None, **ws_options: Any
) -> Any:
    """A ccxt.pro client for `exchange_id` (keys only for account streams), pointed at the
    simulator when `base_url` is given (REST and websocket URLs)."""
    venue = stream_venue(exchange_id)
    if venue is None:
        raise ValueError(f"{exchange_id} is not streamed (streamed: {', '.join(STREAM_VENUES)})")
    options: dict[str, Any] = {**profile_for(exchange_id).options, **venue.options}
    if ws_options:
        options["ws"] = dict(ws_options)
    client = getattr(ccxt_pro, exchange_id)({**(credentials or {}), "enableRateLimit": True, "options": options})
    client.verbose = False  # verbose prints request headers, API key included
    reject_unparseable_json(client)
    if base_url:
        redirect(client, base_url)
        redirect_ws(client, base_url)
    return client


TickerSink = Callable[[str, float | None, int | None], None]


def tap_tickers(client: Any, sink: TickerSink) -> None:
    """Call `sink(symbol, mark, timestamp_ms)` for every ticker ccxt parses on `client`'s
    connections, once per ticker (Binance resolves each one twice: alone and in a batch)."""

    def on_result(result: Any, message_hash: Any, seen: set[int]) -> None:
        tickers = [result] if _is_ticker(result) else list(result.values()) if isinstance(result, dict) else []
        for ticker in tickers:
            if _is_ticker(ticker) and id(ticker) not in seen:
                seen.add(id(ticker))
                sink(str(ticker["symbol"]), _number(ticker.get("markPrice")), _integer(ticker.get("timestamp")))

    _tap(client, on_result)


def tap_account(
    client: Any, venue: StreamVenue, on_positions: Callable[[Any], None], on_balance: Callable[[Any], None]
):
    """Call `on_positions(list)` / `on_balance(dict)` for every positions or balance update
    ccxt parses on `client`'s connections (each watch call returns only the first frame
    after it: a burst of two changes would otherwise report one)."""

    def on_result(result: Any, message_hash: Any, seen: set[int]) -> None:
        if message_hash == venue.positions_hash and id(result) not in seen:
            seen.add(id(result))
            on_positions(result)
        elif message_hash == venue.balance_hash and id(result) not in seen:
            seen.add(id(result))
            on_balance(result)

    _tap(client, on_result)


def _tap(client: Any, on_result: Callable[[Any, Any, set[int]], None]) -> None:
    """Hook every `resolve` of `client`'s connections; `seen` is emptied at each frame."""
    seen: set[int] = set()
    handle_message = client.handle_message

    def on_frame(connection: Any, message: Any) -> Any:
        seen.clear()
        return handle_message(connection, message)

    make_connection = client.client

    def connection_for(url: str) -> Any:
        connection = make_connection(url)
        if not getattr(connection, "_marginwatch_tapped", False):
            resolve = connection.resolve

            def tapped(result: Any, message_hash: Any) -> Any:
                try:
                    on_result(result, message_hash, seen)
                except Exception:  # the tap must never break ccxt's receive loop
                    log.exception("%s: a streamed update could not be handled", client.id)
                return resolve(result, message_hash)

            connection.resolve = tapped
            connection._marginwatch_tapped = True
        return connection

    # ccxt binds on_message when it creates a connection, so both hooks go in first
    client.handle_message = on_frame
    client.client = connection_for


def _is_ticker(value: Any) -> bool:
    return isinstance(value, dict) and "markPrice" in value and isinstance(value.get("symbol"), str)


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if number > 0 and number != float("inf") else None


def _integer(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


_LISTEN_KEY = re.compile(r"listenKey=[^\s&'\"]+")


def describe_error(exc: BaseException, secrets: tuple[str, ...] = ()) -> str:
    """An error as shown in the stream's state: classified, without credentials (nor a
    Binance listenKey, which ccxt puts in the connection URL)."""
    return redact(_LISTEN_KEY.sub("listenKey=***", classify(exc).message), secrets)


def wall_clock() -> float:
    return time.time()
