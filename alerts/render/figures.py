"""Figures as a trader reads them: prices at the market's tick, coin amounts at the order
step, money with its currency, distances and chances in per cent, durations and the
"as of" line. Pure functions; None reads "n/a"."""

from __future__ import annotations

import math
from datetime import datetime

from margin.inverse import money_places

NA = "n/a"


def decimals_of(step: float | None) -> int | None:
    """Decimal places of a tick or step (0.01 -> 2, 0.5 -> 1, 5 -> 0); None when unknown."""
    if step is None or not step > 0 or not math.isfinite(step):
        return None
    text = f"{step:.12f}".rstrip("0")
    return len(text.partition(".")[2])


def _significant(value: float, figures: int = 5) -> int:
    """Decimals that show `figures` significant figures of `value` (none below the unit
    for large values, at most 8)."""
    if value == 0 or not math.isfinite(value):
        return 2
    return max(0, min(8, figures - 1 - math.floor(math.log10(abs(value)))))


def price(value: float | None, tick: float | None = None) -> str:
    """A price at the market's tick (3,063.79 at 0.01), else to 5 significant figures."""
    if value is None or not math.isfinite(value):
        return NA
    places = decimals_of(tick)
    if places is None:
        places = _significant(value)
    elif tick:
        value = round(value / tick) * tick
    return f"{value:,.{places}f}"


def amount(value: float, step: float | None = None) -> str:
    """A size at its order step (2.97 at 0.01), else to 5 significant figures, trailing
    zeros of the fallback dropped."""
    places = decimals_of(step)
    if places is not None:
        return f"{value:,.{places}f}"
    text = f"{value:,.{_significant(value)}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def money(value: float | None, currency: str) -> str:
    """An account figure: 12,345.67 USDT; 0.020862 BTC in a coin-margined account."""
    if value is None or not math.isfinite(value):
        return NA
    return f"{value:,.{money_places(currency, value)}f} {currency}"


def money_up(value: float, currency: str) -> str:
    """An amount to add, rounded up so that it is enough: three significant figures from
    100 up (529.3 -> 530), cents below (4.195 -> 4.20)."""
    places = money_places(currency, value)
    if places > 2:  # a coin: up to its last shown decimal
        return f"{math.ceil(value * 10**places - 1e-9) / 10**places:,.{places}f} {currency}"
    if value >= 100:
        scale = 10 ** (math.floor(math.log10(value)) - 2)
        return f"{math.ceil(value / scale - 1e-9) * scale:,.0f} {currency}"
    return f"{math.ceil(value * 100 - 1e-9) / 100:,.2f} {currency}"


def about(value: float, currency: str) -> str:
    """A notional, approximately: ≈ 9,350 USDT (three significant figures from 1,000 up)."""
    if abs(value) >= 1000:
        scale = 10 ** (math.floor(math.log10(abs(value))) - 2)
        return f"≈ {round(value / scale) * scale:,.0f} {currency}"
    return f"≈ {value:,.{money_places(currency, value)}f} {currency}"


def percent(fraction: float) -> str:
    """A distance as a fraction of the mark: 0.04 %, 0.9 %, 2.7 %, 14 %."""
    value = abs(fraction) * 100
    if value < 0.1:
        return f"{value:.2f} %"
    if value < 10:
        return f"{value:.1f} %"
    return f"{value:.0f} %"


def sigmas(value: float) -> str:
    """Daily standard deviations: 0.3 σ, 0.05 σ, 12 σ."""
    value = abs(value)
    if value < 0.1:
        return f"{value:.2f} σ"
    if value < 10:
        return f"{value:.1f} σ"
    return f"{value:.0f} σ"


def chance(value: float) -> str:
    """A probability: 41 %, < 1 % (never "0 %" for a chance that is there)."""
    if 0 < value < 0.01:
        return "< 1 %"
    if 0.99 < value < 1:
        return "> 99 %"
    return f"{value * 100:.0f} %"


def health(value: float | None) -> str:
    return NA if value is None or not math.isfinite(value) else f"{value:.2f}"


def duration(seconds: float) -> str:
    """4 s, 12 min, 1 h 05 min, 2 d 3 h."""
    seconds = max(0.0, seconds)
    if seconds < 90:
        return f"{seconds:.0f} s"
    minutes = seconds / 60
    if minutes < 60:
        return f"{minutes:.0f} min"
    hours, rest = divmod(round(minutes), 60)
    if hours < 48:
        return f"{hours} h {rest:02d} min"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h"


def clock(moment: datetime) -> str:
    """13:02:11 UTC."""
    return f"{moment:%H:%M:%S} UTC"


def as_of(taken_at: datetime | None, now: datetime, positions_as_of: datetime | None = None) -> str:
    """ "as of 13:02:11 UTC (data age 4 s)": the time of the figures and how old they were
    when the message was written (a retried delivery can arrive minutes later). With
    `positions_as_of` (figures from a streamed mark price on the last polled positions):
    "from mark price 13:02:11 UTC; positions as of 13:01:50 UTC (data age 4 s)"."""
    if taken_at is None:
        return f"no data yet · written {now:%Y-%m-%d} {clock(now)}"
    day = "" if taken_at.date() == now.date() else f"{taken_at:%Y-%m-%d} "
    age = f"(data age {duration((now - taken_at).total_seconds())})"
    if positions_as_of is not None:
        return f"from mark price {day}{clock(taken_at)}; positions as of {clock(positions_as_of)} {age}"
    return f"as of {day}{clock(taken_at)} {age}"


def base_of(symbol: str) -> str:
    """The coin of a ccxt symbol (BTC/USDT:USDT -> BTC); a venue id is kept as it is."""
    return symbol.partition("/")[0] if "/" in symbol else symbol


def is_inverse_symbol(symbol: str) -> bool:
    """A coin-margined contract: settled in its base (BTC/USD:BTC, BTC/USD:BTC-261225)."""
    pair, _, settle = symbol.partition(":")
    return "/" in pair and settle.partition("-")[0] == pair.partition("/")[0]


def short_symbol(symbol: str, collateral: str) -> str:
    """BTC/USDT:USDT -> BTC when it settles in the account's collateral, else BTC/USDC; a
    dated coin-margined contract keeps its expiry (BTC/USD 261225), so the quarterly is told
    from the perpetual."""
    if "/" not in symbol:
        return symbol
    pair, _, settle = symbol.partition(":")
    if is_inverse_symbol(symbol):
        expiry = settle.partition("-")[2]
        return f"{pair} {expiry}" if expiry else pair
    base, _, quote = pair.partition("/")
    if (settle or quote) == collateral and quote == collateral:
        return base
    return pair


def quote_of(symbol: str, collateral: str) -> str:
    """The currency prices of `symbol` are in."""
    if "/" not in symbol:
        return collateral
    return symbol.partition(":")[0].partition("/")[2] or collateral
