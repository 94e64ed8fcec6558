"""The one place a ccxt.async_support client is made: for an account (connectors.account),
for a venue's market data (connectors.market_data), and for the simulator's tests
(`make_client`). Websocket clients (ccxt.pro) are made in connectors.stream_support."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import ccxt.async_support as ccxt_async

from config import redaction
from connectors.guards import cap_answers, guard_client
from connectors.redirect import VENUE_OPTIONS, VENUES, quiet_ccxt_logger, redirect
from connectors.venues import profile_for


def rest_client(
    exchange_id: str,
    *,
    credentials: Mapping[str, str] | None = None,
    timeout_seconds: float | None = None,
    base_url: str | None = None,
    options: Mapping[str, Any] | None = None,
    guard: Callable[[Any], None] = guard_client,
) -> ccxt_async.Exchange:
    """A ccxt.async_support client for `exchange_id`: rate limited, never verbose (verbose
    prints request headers, API key included), guarded (connectors.guards), and pointed at
    `base_url` when given (the simulator). `options` replace the venue profile's ccxt
    options when given; `timeout_seconds` bounds each request (ccxt's default otherwise).
    The caller closes it (``await client.close()``). ccxt's loggers are pinned at INFO when
    the modules that make clients are imported (connectors.redirect.quiet_ccxt_logger), not
    here: a user who turns them to DEBUG on purpose keeps DEBUG."""
    config: dict[str, Any] = {
        **(credentials or {}),
        "enableRateLimit": True,
        "options": dict(profile_for(exchange_id).options if options is None else options),
    }
    if timeout_seconds is not None:
        config["timeout"] = int(timeout_seconds * 1000)
    client = getattr(ccxt_async, exchange_id)(config)
    client.verbose = False
    guard(client)
    if base_url:
        redirect(client, base_url)
    return client


def make_client(
    venue: str, base_url: str, api_key: str, secret: str, password: str | None = None, **options: Any
) -> ccxt_async.Exchange:
    """A ccxt.async_support client for 'binanceusdm', 'bybit', 'okx' or 'hyperliquid'
    talking to the simulator at `base_url`, for tests and the demo. For hyperliquid
    `api_key` is the wallet address and `secret` is ignored: its reads need only the
    address, and a client holding a private key would sign actions (see
    connectors.account). `options` are merged over connectors.redirect.VENUE_OPTIONS (only
    what keeps ccxt on the simulator's endpoints); its answers are capped but not checked
    for unparseable JSON, so that the simulator's tests see ccxt as it is."""
    if venue not in VENUES:
        raise ValueError(f"venue must be one of {', '.join(VENUES)}, got {venue!r}")
    credentials = {"walletAddress": api_key} if venue == "hyperliquid" else {"apiKey": api_key, "secret": secret}
    if password is not None:
        credentials["password"] = password
    quiet_ccxt_logger()
    redaction.install()
    redaction.register([api_key, secret, password])
    return rest_client(
        venue,
        credentials=credentials,
        base_url=base_url,
        options={**VENUE_OPTIONS[venue], **options},
        guard=cap_answers,
    )
