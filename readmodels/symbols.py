"""Symbols and pools as a trader reads them: the venue's own spelling of a ccxt symbol,
and a pool's name. Pure (no store, no SQLAlchemy): the CLI's quick commands use it too."""

from __future__ import annotations


def symbol_parts(unified: str) -> tuple[str, str, str, str]:
    """(base, quote, settle, expiry) of a ccxt symbol like BTC/USDT:USDT-250328."""
    pair, _, rest = unified.partition(":")
    base, _, quote = pair.partition("/")
    settle, _, expiry = rest.partition("-")
    return base, quote or base, settle or quote, expiry


def native_symbol(exchange: str, unified: str) -> str:
    """The symbol as the venue's own screen spells it (ccxt's unified one when unknown)."""
    base, quote, settle, expiry = symbol_parts(unified)
    venue = exchange.lower()
    if venue.startswith("binance"):
        if settle == base:  # coin-margined
            return f"{base}{quote}_{expiry or 'PERP'}"
        return f"{base}{quote}" + (f"_{expiry}" if expiry else "")
    if venue.startswith("bybit"):
        return f"{base}{quote}" + (f"-{expiry}" if expiry else "")
    if venue.startswith("okx"):
        return f"{base}-{quote}-{expiry or 'SWAP'}"
    if venue.startswith("hyperliquid"):
        return base
    return unified


def pool_name(margin_mode: str, unified: str, side: str) -> str:
    """ "cross", or "isolated · BTC short" for an isolated position's own pool."""
    if margin_mode != "isolated":
        return "cross"
    return f"isolated · {symbol_parts(unified)[0]} {side}"
