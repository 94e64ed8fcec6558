"""One account's private stream: ccxt.pro's watch_positions and watch_balance on the
account's own client (a listenKey, auth or login belongs to one key), reported to
`on_event` as AccountEvents so that the poller can re-poll the account at once.

Every positions or balance update ccxt parses is seen (tap_account: a watch call returns
only the first frame after it), as the list that frame carried (ccxt's position cache
keeps closed positions under stale side labels). An update is reported when what the
positions are (symbol, side, contracts, entry, margin mode, leverage) or the wallet
balances differ from the last one reported — not when only the mark-driven figures moved
(OKX also pushes at intervals) — and is not older than it (a late frame). When the
connection breaks, one "gap" event says changes may have been missed meanwhile; "resumed"
follows once the watches run again. Binance and Bybit push only on change, so silence
here is normal: a dead connection is found by ccxt's ping/pong keep-alive instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import ccxt

from connectors.account import SharedMarkets
from connectors.errors import RetryPolicy
from connectors.stream_support import (
    CLOSE_TIMEOUT,
    DEFAULT_BACKOFF,
    StreamState,
    describe_error,
    make_stream_client,
    stream_venue,
    tap_account,
)

log = logging.getLogger(__name__)

POSITION_FIELDS = ("symbol", "side", "contracts", "entryPrice", "marginMode", "leverage")
RESUMED_AFTER = 1.0  # seconds a re-established watch must run without error to count as back
EventKind = Literal["positions", "balance", "gap", "resumed"]


@dataclass(frozen=True)
class AccountEvent:
    """Something changed on `account` (positions, balance), or its stream broke ("gap":
    changes may have been missed) or came back ("resumed"). `timestamp` is the venue's (ms)
    when it gave one; `received_at` wall-clock seconds; `symbols` those in a positions
    update (a closed position included)."""

    account: str
    kind: EventKind
    received_at: float
    timestamp: int | None = None
    symbols: tuple[str, ...] = ()
    detail: str = ""


class AccountStream:
    """Positions and balance of one account. Start with `run()` in a task."""

    def __init__(
        self,
        account: str,
        exchange_id: str,
        base_url: str | None,
        credentials: Mapping[str, str],
        on_event: Callable[[AccountEvent], None],
        *,
        backoff: RetryPolicy | None = None,
        shared_markets: SharedMarkets | None = None,
        clock: Callable[[], float] = time.time,
        keepalive_seconds: float | None = None,
    ) -> None:
        self.account = account
        self.exchange_id = exchange_id
        self.base_url = base_url
        self.on_event = on_event
        self.backoff = backoff or DEFAULT_BACKOFF
        self.state = StreamState(f"{exchange_id}/{account}", base_url)
        self._secrets = tuple(str(v) for v in credentials.values())
        self._shared = shared_markets
        self._clock = clock
        self._last: dict[str, tuple[int, str]] = {}  # kind -> (venue time, content) last reported
        self._gap = False
        venue = stream_venue(exchange_id)
        if venue is None or not venue.account_streams:
            raise ValueError(f"{exchange_id} has no account stream")
        self.venue = venue
        self.keepalive_seconds = keepalive_seconds if keepalive_seconds is not None else venue.keepalive_seconds
        self.client = make_stream_client(exchange_id, base_url, credentials)
        tap_account(self.client, venue, self._on_positions, self._on_balance)

    def _report(
        self, kind: EventKind, timestamp: int | None = None, symbols: tuple[str, ...] = (), detail: str = ""
    ) -> None:
        event = AccountEvent(self.account, kind, self._clock(), timestamp, symbols, detail)
        try:
            self.on_event(event)
        except Exception:  # one failing callback must not stop the stream
            log.exception("%s: account event callback failed", self.account)

    def _fresh(self, kind: str, timestamp: int | None, content: str) -> bool:
        """Whether an update differs from, and is not older than, the last one reported."""
        last = self._last.get(kind)
        stamp = timestamp or 0
        if last is not None and (stamp < last[0] or content == last[1]):
            self.state.dropped += 1
            return False
        self._last[kind] = (max(stamp, last[0] if last else 0), content)
        return True

    def _received(self) -> None:
        now = self._clock()
        self.state.last_message_at = now
        self.state.messages += 1
        self._connected(now)

    def _connected(self, now: float) -> None:
        if not self.state.connected:
            self.state.connected, self.state.connected_at = True, now
        if self._gap:
            self._gap = False
            self._report("resumed")

    # --- every parsed update ---

    def _on_positions(self, positions: Any) -> None:
        self._received()
        rows = [p for p in positions or [] if isinstance(p, Mapping)]
        stamp = max((_time_of(p) for p in rows), default=None)
        # what the position is, not what the mark makes of it (PnL, liquidation price)
        content = json.dumps(sorted([[p.get(k) for k in POSITION_FIELDS] for p in rows], key=str), default=str)
        if self._fresh("positions", stamp, content):
            self._report("positions", stamp, tuple(sorted({str(p.get("symbol")) for p in rows})))

    def _on_balance(self, balance: Any) -> None:
        self._received()
        if not isinstance(balance, Mapping):
            return
        stamp = _integer(balance.get("timestamp"))
        if self._fresh("balance", stamp, json.dumps(self.venue.wallets(balance), sort_keys=True, default=str)):
            self._report("balance", stamp)

    async def _watch(self, method: str) -> None:
        watch = getattr(self.client, method)
        while True:
            await watch()  # the updates themselves arrive through the tap

    async def _keep_alive(self) -> None:
        """Binance: ccxt keeps a listenKey alive once only (one PUT 20 minutes after the
        POST) and POSTs again only on a watch call made later, which a quiet account never
        makes: its key would expire after 60 minutes, the stream silent. So: a PUT every
        `keepalive_seconds`; when it fails, the key is forgotten (ccxt POSTs a new one on
        reconnect) and the session ends."""
        assert self.venue.keepalive_method is not None and self.keepalive_seconds  # noqa: S101 - started only so
        while True:
            await asyncio.sleep(self.keepalive_seconds)
            try:
                await getattr(self.client, self.venue.keepalive_method)()
            except Exception:
                forget_listen_key(self.client)
                raise
            self.state.keepalives += 1

    # --- the connection loop ---

    async def run(self) -> None:
        failures = 0
        while True:
            try:
                await self._session()
            except asyncio.CancelledError:
                await self._disconnect()
                raise
            except Exception as exc:  # every failure means: reconnect (auth failures slowly)
                error = exc
            else:
                error = RuntimeError("the account watch ended")
            await self._disconnect()
            healthy = self.state.connected
            self.state.connected = False
            self.state.reconnects += 1
            self.state.last_error = describe_error(error, self._secrets)
            if not self._gap:
                self._gap = True
                self._report("gap", detail=self.state.last_error)
            failures = 0 if healthy else failures + 1
            if isinstance(error, ccxt.AuthenticationError):
                failures = max(failures, 10)  # a refused key: retry at the cap, not in a burst
            delay = self.backoff.delay(failures)
            log.warning("%s account stream: %s; reconnecting in %.1f s", self.account, self.state.last_error, delay)
            await asyncio.sleep(delay)

    async def _session(self) -> None:
        """Watch until a watch (or the keep-alive) fails."""
        if not self.client.markets:
            if self._shared is None:
                await self.client.load_markets()
            else:
                await self._shared.load(f"{self.exchange_id} {self.base_url}", self.client, self.client.load_markets)
        watches = [
            asyncio.create_task(self._watch("watch_positions"), name=f"positions-{self.account}"),
            asyncio.create_task(self._watch("watch_balance"), name=f"balance-{self.account}"),
        ]
        if self.venue.keepalive_method and self.keepalive_seconds:
            watches.append(asyncio.create_task(self._keep_alive(), name=f"keepalive-{self.account}"))
        try:
            done, _ = await asyncio.wait(watches, timeout=RESUMED_AFTER, return_when=asyncio.FIRST_EXCEPTION)
            if not done:
                self._connected(self._clock())  # subscribed and not refused: the stream is up
            done, _ = await asyncio.wait(watches, return_when=asyncio.FIRST_EXCEPTION)
            for task in done:
                task.result()
        finally:
            for task in watches:
                task.cancel()
            await asyncio.gather(*watches, return_exceptions=True)

    async def _disconnect(self) -> None:
        try:
            await asyncio.wait_for(self.client.close_ws_clients(), timeout=CLOSE_TIMEOUT)
        except Exception as exc:  # a hung close: forget the connections
            log.debug("%s: closing the account stream: %r", self.account, exc)
            self.client.clients = {}

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.client.close()


def forget_listen_key(client: Any) -> None:
    """Make ccxt POST a new listenKey at the next private watch (its own bookkeeping:
    options[<type>]["lastAuthenticatedTime"], as it does when its keep-alive fails)."""
    for options in client.options.values():
        if isinstance(options, dict) and "listenKey" in options:
            options["lastAuthenticatedTime"] = 0


def _time_of(position: Mapping[str, Any]) -> int:
    return _integer(position.get("lastUpdateTimestamp")) or _integer(position.get("timestamp")) or 0


def _integer(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
