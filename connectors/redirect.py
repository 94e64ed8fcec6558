"""Point a ccxt exchange at the local exchange simulator (simulator).

`redirect` rewrites every URL of ``exchange.urls['api']`` from ``https://host/path`` to
``{base_url}/host/path``: the original host stays as the first path segment, so one local
server answers for fapi.binance.com, api.binance.com, api.bybit.com, www.okx.com and
api.hyperliquid.xyz. The ``{hostname}`` placeholders (Bybit, OKX, Hyperliquid) are kept;
ccxt fills them in when it builds the URL.

`redirect_ws` does the same for a ccxt.pro client's websocket URLs
(``urls['api']['ws']``): ``wss://host/path`` becomes ``ws://127.0.0.1:PORT/host/path``, where
the simulator serves the venue's streams.

connectors.client.make_client builds a ccxt.async_support client with the options that
keep it on the endpoints the simulator serves (VENUE_OPTIONS), then redirects it. It is
for tests and the demo: a production client is redirected only when its account has a
`base_url`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any

VENUES = ("binanceusdm", "binancecoinm", "bybit", "okx", "hyperliquid")

# Without these ccxt asks for endpoints the simulator (and marginwatch) do not use:
# Binance's sapi currency list on load_markets, Bybit's and OKX's spot/option/future lists,
# Hyperliquid's spot markets and builder-deployed (HIP-3) perp dexes.
VENUE_OPTIONS: dict[str, dict[str, Any]] = {
    "binanceusdm": {"fetchCurrencies": False},
    "binancecoinm": {"fetchCurrencies": False},
    "bybit": {"fetchMarkets": {"types": ["linear"]}},
    "okx": {"fetchMarkets": {"types": ["swap"]}},
    "hyperliquid": {"fetchMarkets": {"types": ["swap"]}},
}

_URL = re.compile(r"^https?://(?P<rest>.+)$")
_WS_URL = re.compile(r"^wss?://(?P<rest>.+)$")


def _rewrite(url: str, base_url: str, pattern: re.Pattern[str] = _URL) -> str:
    match = pattern.match(url)
    return f"{base_url}/{match['rest']}" if match else url


def _rewrite_all(node: Any, base_url: str, pattern: re.Pattern[str] = _URL) -> Any:
    if isinstance(node, str):
        return _rewrite(node, base_url, pattern)
    if isinstance(node, dict):
        return {k: _rewrite_all(v, base_url, pattern) for k, v in node.items()}
    if isinstance(node, list):
        return [_rewrite_all(v, base_url, pattern) for v in node]
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


def ws_base_url(base_url: str) -> str:
    """The websocket base of a simulator URL: http://h:p -> ws://h:p, https -> wss."""
    base = base_url.rstrip("/")
    if base.startswith("https://"):
        return "wss://" + base.removeprefix("https://")
    if base.startswith("http://"):
        return "ws://" + base.removeprefix("http://")
    if _WS_URL.match(base):
        return base
    raise ValueError(f"not an http(s) or ws(s) base URL: {base_url!r}")


def redirect_ws(exchange: Any, base_url: str) -> None:
    """Rewrite a ccxt.pro client's ``urls['api']['ws']`` in place to go through the
    simulator at `base_url` (its http:// or ws:// form). Binance's must keep ending in
    "/ws" (ccxt derives /market/ws and /private/ws from it) and Bybit's "v5/private"
    (ccxt picks the wallet topic by it): the paths are kept as they are."""
    exchange.urls["api"]["ws"] = _rewrite_all(exchange.urls["api"]["ws"], ws_base_url(base_url), _WS_URL)


def _unredirected(original: Callable[[str, str], dict], base: str) -> Callable[[str, str], dict]:
    def get_exceptions_by_url(url: str, exact_or_broad: str) -> dict:
        if isinstance(url, str) and url.startswith(base + "/"):
            url = "https://" + url[len(base) + 1 :]
        return original(url, exact_or_broad)

    return get_exceptions_by_url


def quiet_ccxt_logger() -> None:
    """ccxt logs request headers (API keys) and signed URLs at DEBUG: pin its loggers at
    INFO or above, whatever the root logger is set to later (a level inherited from the
    root would follow it down to DEBUG)."""
    for name in ("ccxt", "ccxt.base.exchange", "ccxt.async_support.base.exchange"):
        logger = logging.getLogger(name)
        if logger.level == logging.NOTSET or logger.level < logging.INFO:
            logger.setLevel(logging.INFO)
