"""Point a ccxt exchange at the local exchange simulator (simulator).

`redirect` rewrites every URL of ``exchange.urls['api']`` from ``https://host/path`` to
``{base_url}/host/path``: the original host stays as the first path segment, so one local
server answers for fapi.binance.com, api.binance.com, api.bybit.com and www.okx.com. Bybit's
and OKX's ``{hostname}`` placeholders are kept; ccxt fills them in when it signs.

`make_client` builds a ccxt.async_support client with the options that keep it on the
endpoints the simulator serves, then redirects it. It is for tests and the demo: a
production client is never redirected.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any

import ccxt.async_support as ccxt_async

from config import redaction
from connectors.guards import cap_answers

VENUES = ("binanceusdm", "bybit", "okx")

# Without these ccxt asks for endpoints the simulator (and marginwatch) do not use:
# Binance's sapi currency list on load_markets, Bybit's and OKX's spot/option/future lists.
VENUE_OPTIONS: dict[str, dict[str, Any]] = {
    "binanceusdm": {"fetchCurrencies": False},
    "bybit": {"fetchMarkets": {"types": ["linear"]}},
    "okx": {"fetchMarkets": {"types": ["swap"]}},
}

_URL = re.compile(r"^https?://(?P<rest>.+)$")


def _rewrite(url: str, base_url: str) -> str:
    match = _URL.match(url)
    return f"{base_url}/{match['rest']}" if match else url


def _rewrite_all(node: Any, base_url: str) -> Any:
    if isinstance(node, str):
        return _rewrite(node, base_url)
    if isinstance(node, dict):
        return {k: _rewrite_all(v, base_url) for k, v in node.items()}
    if isinstance(node, list):
        return [_rewrite_all(v, base_url) for v in node]
    return node


def redirect(exchange: Any, base_url: str) -> None:
    """Rewrite ``exchange.urls['api']`` in place to go through `base_url`
    ("http://127.0.0.1:PORT"). Do not call set_sandbox_mode afterwards: it replaces the URLs."""
    base = base_url.rstrip("/")
    exchange.urls["api"] = _rewrite_all(exchange.urls["api"], base)
    original = getattr(exchange, "get_exceptions_by_url", None)
    if callable(original):
        # Binance picks its per-market error table (spot, linear, ...) by the request URL's
        # prefix ("https://fapi.binance.com/"); give it the URL it would have used.
        exchange.get_exceptions_by_url = _unredirected(original, base)


def _unredirected(original: Callable[[str, str], dict], base: str) -> Callable[[str, str], dict]:
    def get_exceptions_by_url(url: str, exact_or_broad: str) -> dict:
        if isinstance(url, str) and url.startswith(base + "/"):
            url = "https://" + url[len(base) + 1 :]
        return original(url, exact_or_broad)

    return get_exceptions_by_url


def make_client(
    venue: str, base_url: str, api_key: str, secret: str, password: str | None = None, **options: Any
) -> ccxt_async.Exchange:
    """A ccxt.async_support client for 'binanceusdm', 'bybit' or 'okx' talking to the
    simulator at `base_url`. `options` are merged over the venue's ccxt options. The caller
    closes it (``await client.close()``)."""
    if venue not in VENUES:
        raise ValueError(f"venue must be one of {', '.join(VENUES)}, got {venue!r}")
    quiet_ccxt_logger()
    config: dict[str, Any] = {
        "apiKey": api_key,
        "secret": secret,
        "enableRateLimit": True,
        "options": {**VENUE_OPTIONS[venue], **options},
    }
    if password is not None:
        config["password"] = password
    exchange = getattr(ccxt_async, venue)(config)
    exchange.verbose = False  # verbose prints request headers, API key included
    cap_answers(exchange)  # not reject_unparseable_json: the simulator's tests show raw ccxt
    redaction.install()
    redaction.register([api_key, secret, password])
    redirect(exchange, base_url)
    return exchange


def quiet_ccxt_logger() -> None:
    """ccxt logs request headers (API keys) and signed URLs at DEBUG: pin its loggers at
    INFO or above, whatever the root logger is set to later (a level inherited from the
    root would follow it down to DEBUG)."""
    for name in ("ccxt", "ccxt.base.exchange", "ccxt.async_support.base.exchange"):
        logger = logging.getLogger(name)
        if logger.level == logging.NOTSET or logger.level < logging.INFO:
            logger.setLevel(logging.INFO)
