"""Numbers and times as the dashboard shows them: money to cents, prices to about the
market's tick, contracts to the market's amount step, times in the viewer's timezone."""

from __future__ import annotations

import math
from datetime import datetime, tzinfo
from typing import TypeGuard

from margin.inverse import money_places
from readmodels.text import age as age  # re-exported: the CLI and the dashboard say "how long ago" alike

DASH = "—"


def _finite(value: float | None) -> TypeGuard[float]:
    return value is not None and math.isfinite(value)


def money(value: float | None, currency: str = "") -> str:
    """To cents in dollars and stablecoins; a coin (a coin-margined account's BTC) to six
    decimals (margin.inverse.money_places)."""
    if not _finite(value):
        return DASH
    text = f"{value:,.{money_places(currency, value)}f}"
    return f"{text} {currency}" if currency else text


def amount_in(value: float | None, currency: str) -> str:
    """`value` with `currency`'s decimals (six for a coin), without naming the currency (for
    a figure whose label names it)."""
    if not _finite(value):
        return DASH
    return f"{value:,.{money_places(currency, value)}f}"


def money_format(currency: str) -> str:
    """A table column's number format for money in `currency` ("%,.2f"; a coin "%,.6f")."""
    return f"%,.{money_places(currency)}f"


def ratio(value: float | None) -> str:
    """Health and margin ratio: two decimals, enough to see a move toward 1."""
    if value is None:
        return DASH
    if math.isinf(value):
        return "∞"
    return f"{value:,.2f}" if abs(value) < 1000 else f"{value:,.0f}"


def percent(value: float | None, decimals: int = 1) -> str:
    return DASH if not _finite(value) else f"{value * 100:.{decimals}f} %"


def price_decimals(price: float | None, tick: float | None = None) -> int:
    """Decimals of a price: from the tick when known, else six significant digits, which
    is what venues' ticks give for BTC (0.1 at 90,000) down to small coins (1e-5 at 0.15)."""
    if tick:
        return step_decimals(tick)
    if not _finite(price) or price == 0:
        return 2
    return max(0, min(8, 5 - math.floor(math.log10(abs(price)))))


def step_decimals(step: float | None) -> int:
    """Decimals of an order increment (0.001 -> 3, 1 -> 0)."""
    if not step or not _finite(step):
        return 4
    return max(0, min(10, -math.floor(math.log10(step) + 1e-9)))


def price(value: float | None, tick: float | None = None) -> str:
    if not _finite(value):
        return DASH
    return f"{value:,.{price_decimals(value, tick)}f}"


def contracts(value: float | None, step: float | None = None) -> str:
    if not _finite(value):
        return DASH
    return f"{value:,.{step_decimals(step)}f}"


def local(moment: datetime | None, zone: tzinfo) -> datetime | None:
    """An aware UTC time in the viewer's zone (tables show it without the offset)."""
    return None if moment is None else moment.astimezone(zone)


def when(moment: datetime | None, zone: tzinfo) -> str:
    if moment is None:
        return DASH
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S %Z")


def chance(value: float | None) -> str:
    """A probability: one decimal in %, and "< 0.1 %" rather than a misleading "0.0 %"."""
    if not _finite(value):
        return DASH
    if 0 < value < 0.001:
        return "< 0.1 %"
    return f"{value * 100:.1f} %"


def hours(value: float | None) -> str:
    """A horizon in hours, with days beside it past two days."""
    if not _finite(value):
        return DASH
    return f"{value:.0f} h" if value < 48 else f"{value:.0f} h ({value / 24:.1f} d)"


def funding_breach_text(breach_hours: float | None, warning: float) -> str | None:
    """The flag when funding alone crosses the warning level (None when it does not:
    never within 7 days, or health is below it already)."""
    if breach_hours is None or breach_hours <= 0:
        return None
    return f"Funding alone takes health below {warning:g} in {hours(breach_hours)} (prices unchanged)."
