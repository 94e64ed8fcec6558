"""The sentences of an alert: the danger headline, what changed, the remedy, each position.
Every figure carries its unit (USDT, %, σ), prices are at the market's tick, sizes in coins
with contracts beside them, symbols short (BTC, not BTC/USDT:USDT)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from alerts.remedy import Cut, Remedy, TopUp
from alerts.render import figures as f
from alerts.rules import Level, Transition

TOP_POSITIONS = 5  # positions an alert lists, nearest liquidation first
CUTS_SHOWN = 3  # reductions a remedy line names, largest first (the payload has them all)


@dataclass(frozen=True)
class Leg:
    """One position as an alert shows it. Prices in quote currency; `distance` is the signed
    fraction of the mark to the nearest liquidation price (negative: past it)."""

    symbol: str
    side: str  # long | short
    margin_mode: str  # cross | isolated
    contracts: float
    contract_size: float
    mark_price: float
    notional: float
    liquidation_price: float | None = None
    liquidation_side: str | None = None  # down | up
    distance: float | None = None
    sigma: float | None = None  # the distance in daily σ
    chance: float | None = None  # of touching a liquidation price within 24 h
    health: float | None = None  # an isolated position's own pool
    level: Level | None = None
    price_tick: float | None = None
    amount_step: float | None = None  # in contracts

    @property
    def past(self) -> bool:
        return self.distance is not None and self.distance < 0


def danger_order(legs: list[Leg]) -> list[Leg]:
    """Past liquidation first (deepest first), then nearest liquidation first, then the rest."""
    return sorted(legs, key=lambda p: (p.distance is None, p.distance if p.distance is not None else math.inf))


def name(leg: Leg, collateral: str, with_side: bool = True) -> str:
    short = f.short_symbol(leg.symbol, collateral)
    mode = " (isolated)" if leg.margin_mode == "isolated" else ""
    return f"{short} {leg.side}{mode}" if with_side else short


def size(leg: Leg, collateral: str = "") -> str:
    """ "2.97 ETH (29.7 contracts)", or "0.281 BTC" where a contract is one coin; a
    coin-margined contract's size is in its quote currency: "40,000 USD (400 contracts)"."""
    contracts = leg.contracts
    coin = f.quote_of(leg.symbol, collateral) if f.is_inverse_symbol(leg.symbol) else f.base_of(leg.symbol)
    step = None if leg.amount_step is None else leg.amount_step * leg.contract_size
    coins = f"{f.amount(contracts * leg.contract_size, step)} {coin}"
    if leg.contract_size == 1:
        return coins
    return f"{coins} ({f.amount(contracts, leg.amount_step)} contracts)"


def quote(leg: Leg, collateral: str) -> str:
    return f.quote_of(leg.symbol, collateral)


def danger(leg: Leg, collateral: str, compact: bool = False) -> str:
    """ "ETH long 0.9 % (0.3 σ) from liquidation at 3,063.79 USDT (down) · 41 % chance in
    24 h"; once past: "ETH long PAST LIQUIDATION at 3,063.79 USDT, 0.09 % beyond". Compact
    (the subject): "ETH 0.9 % (0.3 σ) from liq 3,063.79 · 41 % in 24 h"."""
    who = name(leg, collateral, with_side=not compact or leg.past or leg.margin_mode == "isolated")
    price = f.price(leg.liquidation_price, leg.price_tick)
    unit = "" if compact else f" {quote(leg, collateral)}"
    if leg.distance is None or leg.liquidation_price is None:
        return f"{who}: no liquidation price"
    if leg.past:
        return f"{who} PAST LIQUIDATION at {price}{unit}, {f.percent(leg.distance)} beyond"
    sigma = "" if leg.sigma is None else f" ({f.sigmas(leg.sigma)})"
    side = "" if compact or not leg.liquidation_side else f" ({leg.liquidation_side})"
    words = "from liq" if compact else "from liquidation at"
    line = f"{who} {f.percent(leg.distance)}{sigma} {words} {price}{unit}{side}"
    if leg.chance is not None:
        line += f" · {f.chance(leg.chance)} in 24 h" if compact else f" · {f.chance(leg.chance)} chance in 24 h"
    return line


def leg_lines(leg: Leg, collateral: str) -> tuple[str, list[str]]:
    """A position as a title and two or three short lines (a phone shows them stacked)."""
    level = f" · {leg.level.name}" if leg.level is not None and leg.level > Level.OK else ""
    title = f"{name(leg, collateral)}{level}"
    currency = quote(leg, collateral)
    lines = []
    if leg.liquidation_price is None or leg.distance is None:
        lines.append("no liquidation price")
    elif leg.past:
        lines.append(
            f"PAST LIQUIDATION at {f.price(leg.liquidation_price, leg.price_tick)} {currency}, "
            f"{f.percent(leg.distance)} beyond"
        )
    else:
        sigma = "" if leg.sigma is None else f" ({f.sigmas(leg.sigma)})"
        chance = "" if leg.chance is None else f" · {f.chance(leg.chance)} in 24 h"
        side = f" ({leg.liquidation_side})" if leg.liquidation_side else ""
        lines.append(
            f"{f.percent(leg.distance)}{sigma} from liq {f.price(leg.liquidation_price, leg.price_tick)} "
            f"{currency}{side}{chance}"
        )
    lines.append(
        f"mark {f.price(leg.mark_price, leg.price_tick)} {currency} · {size(leg, collateral)} "
        f"{f.about(leg.notional, _notional_currency(leg.symbol, currency, collateral))}"
    )
    if leg.margin_mode == "isolated":
        lines.append(f"isolated health {f.health(leg.health)}")
    return title, lines


SUBJECT_NAMES = {
    "health": "cross health",
    "chance": "chance of touching liquidation in 24 h",
    "distance": "nearest liquidation (no volatility yet)",
    "target": "health under target",
    "data": "data",
}


def change_line(subject: str, t: Transition, collateral: str, ticks: Mapping[str, float | None]) -> str:
    """ "WARNING → CRITICAL: cross health 1.08"; "still CRITICAL: ..." for a repeat."""
    if t.kind == "repeat":
        arrow = f"still {t.to_level.name}"
    elif t.kind == "liquidated":
        arrow = "LIQUIDATED"
    else:
        arrow = f"{t.from_level.name} → {t.to_level.name}"
    return f"{arrow}: {_what(subject, t, collateral, ticks)}"


def _what(subject: str, t: Transition, collateral: str, ticks: Mapping[str, float | None]) -> str:
    value = None if t.value is None or not math.isfinite(t.value) else t.value
    if subject == "data":
        return {Level.OK: "data fresh again", Level.WARNING: "data stale", Level.CRITICAL: "not polled"}[t.to_level]
    if subject.startswith("position:") or subject.startswith("liquidation:"):
        kind, _, rest = subject.partition(":")
        symbol, _, side = rest.rpartition(":")
        short = f.short_symbol(symbol, collateral)
        if kind == "liquidation":
            at = "an unknown price" if value is None else f"{f.price(value, ticks.get(symbol))}"
            return f"{short} {side} liquidated at {at}"
        if value is None:
            return f"{short} {side} (isolated) closed"
        past = " — PAST LIQUIDATION" if value < 1 else ""
        return f"{short} {side} (isolated) health {f.health(value)}{past}"
    if value is None:
        return f"{SUBJECT_NAMES.get(subject, subject)}: no position"
    if subject == "health":
        return f"cross health {f.health(value)}"
    if subject == "chance":
        return f"{f.chance(max(0.0, 1.0 - value))} chance of touching liquidation in 24 h"
    if subject == "distance":
        return f"nearest liquidation {f.percent(value)} away (no volatility yet)"
    if subject == "target":
        return f"health at {value * 100:.0f} % of the target"
    return f"{SUBJECT_NAMES.get(subject, subject)} {value:g}"


def remedy_lines(remedy: Remedy | None, legs: Mapping[tuple[str, str], Leg], collateral: str) -> list[str]:
    """ "add 530 USDT → health 1.50, ETH liq moves to 2,901.2 USDT (6.1 % away)", "or reduce
    ETH long by 2.97 ETH (29.7 contracts, ≈ 9,350 USDT) → health 1.50, nearest liq 6.1 %
    away"."""
    if remedy is None:
        return []
    cut_line = ""
    if remedy.cuts:
        largest = sorted(remedy.cuts, key=lambda c: -c.notional)[:CUTS_SHOWN]
        cuts = ", ".join(_cut_words(c, collateral) for c in largest)
        if len(remedy.cuts) > CUTS_SHOWN:
            rest = sum(c.notional for c in remedy.cuts) - sum(c.notional for c in largest)
            cuts += f" and {len(remedy.cuts) - CUTS_SHOWN} more positions ({f.about(rest, collateral)})"
        after = [f"health {f.health(remedy.health_after_cuts)}"] if remedy.health_after_cuts is not None else []
        if remedy.distance_after_cuts is not None:
            after.append(f"nearest liq {f.percent(remedy.distance_after_cuts)} away")
        if remedy.chance_after_cuts is not None:
            after.append(f"{f.chance(remedy.chance_after_cuts)} in 24 h")
        cut_line = f"reduce {cuts}" + (f" → {', '.join(after)}" if after else "")
    lines = []
    for topup in remedy.topups:
        lines.append(_topup_line(topup, legs, collateral))
        if not topup.isolated and cut_line:
            lines.append(f"or {cut_line}")  # the alternative to adding to the cross wallet
            cut_line = ""
    if cut_line:
        lines.append(cut_line)
    if remedy.note:
        lines.append(remedy.note)
    return lines


def _topup_line(t: TopUp, legs: Mapping[tuple[str, str], Leg], collateral: str) -> str:
    leg = legs.get((t.symbol or "", t.side or ""))
    short = f.short_symbol(t.symbol or "", collateral)
    where = f" to the isolated margin of {short} {t.side}" if t.isolated else ""
    after = [f"health {f.health(t.health_after)}"]
    if t.liquidation_after is not None:
        tick = leg.price_tick if leg else None
        currency = f.quote_of(t.symbol or "", collateral)
        away = ""
        if leg is not None and leg.mark_price > 0:
            away = f" ({f.percent(abs(leg.mark_price - t.liquidation_after) / leg.mark_price)} away)"
        after.append(f"{short} liq moves to {f.price(t.liquidation_after, tick)} {currency}{away}")
    return f"add {f.money_up(t.amount, collateral)}{where} → {', '.join(after)}"


def _notional_currency(symbol: str, currency: str, collateral: str) -> str:
    """A notional's currency: the quote, or for a coin-margined contract the collateral coin."""
    return collateral if f.is_inverse_symbol(symbol) and collateral else currency


def _cut_words(c: Cut, collateral: str) -> str:
    short = f.short_symbol(c.symbol, collateral)
    currency = f.quote_of(c.symbol, collateral)
    coin = currency if f.is_inverse_symbol(c.symbol) else f.base_of(c.symbol)
    step = None if c.amount_step is None else c.amount_step * c.contract_size
    coins = f"{f.amount(c.coins, step)} {coin}"
    contracts = "" if c.contract_size == 1 else f"{f.amount(c.contracts, c.amount_step)} contracts, "
    notional = f.about(c.notional, _notional_currency(c.symbol, currency, collateral))
    return f"{short} {c.side} by {coins} ({contracts}{notional})"
