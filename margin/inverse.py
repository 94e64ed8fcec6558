"""Inverse (coin-margined) contracts as linear ones in the reciprocal price.

An inverse position (Binance COIN-M, Bybit inverse, OKX coin-margined swaps) of size
S = contracts x contract_size (quote currency, e.g. USD), entry E and mark P, margined in
its base coin, has (all in the coin):

- notional = S / P;
- unrealized PnL = side x S x (1/E - 1/P);
- maintenance = notional x rate - amount (tiers and amounts in the coin, as Binance
  publishes COIN-M brackets), plus the venue's fees in the coin.

In u = 1/P each is linear: PnL = (-side) x S x (u - 1/E), notional = S x u. So the position
is exactly a linear position of the opposite side, size S, entry 1/E and mark 1/P: its
*linear twin*. Every rule and solver of the linear engine applies to the twin unchanged
and gives coin amounts; only prices map back (P = 1/u), and with them the sides: the
twin's liquidation above its mark is the position's below. The venues' published inverse
formulas are this rule (margin.rules cites them):

- Binance COIN-M (cross, one-way and hedge): LP = [N x MMR + side x N] / [WB + cum +
  side x N / EP] with N = contracts x contract size, i.e. equity(u) = maintenance(u) solved
  for u = 1/LP.
- Bybit inverse isolated: LP(long) = Qty / [Qty / Entry + (IM - MM)], LP(short) =
  Qty / [Qty / Entry - (IM - MM)], the same equation with MM on entry value.
"""

from __future__ import annotations

import functools
from dataclasses import replace

from margin.snapshot import Position, Snapshot


def linear_twin(pos: Position) -> Position:
    """The linear position in u = 1/price that has `pos`'s PnL and requirement (coin);
    a linear position is its own twin (returned without hashing it: the hot path)."""
    return _twin_of(pos) if pos.inverse else pos


@functools.lru_cache(maxsize=8192)
def _twin_of(pos: Position) -> Position:
    return replace(
        pos,
        side="short" if pos.side == "long" else "long",
        entry_price=1.0 / pos.entry_price,
        mark_price=1.0 / pos.mark_price,
        exchange_liquidation_price=(
            1.0 / pos.exchange_liquidation_price if pos.exchange_liquidation_price else pos.exchange_liquidation_price
        ),
        contract_type="linear",
    )


def twin_price(pos: Position, price: float) -> float:
    """The price in the twin's terms: 1/price for an inverse position (inf at 0)."""
    if not pos.inverse:
        return price
    return 1.0 / price if price > 0 else float("inf")


def from_twin_price(pos: Position, u: float | None) -> float | None:
    """A twin price back in quote currency: 1/u (None when u is not a positive price). The
    twin's own mark maps back to the position's mark exactly."""
    if u is None or not pos.inverse:
        return u
    if u == linear_twin(pos).mark_price:
        return pos.mark_price
    return 1.0 / u if u > 0 else None


def notional(pos: Position, price: float | None = None) -> float:
    """Notional in the collateral currency at `price` (default: mark): size x price for a
    linear contract, size / price (coin) for an inverse one."""
    price = pos.mark_price if price is None else price
    return pos.size / price if pos.inverse else pos.size * price


def contracts_notional(pos: Position, contracts: float) -> float:
    """Notional at mark of `contracts` of `pos`, in the collateral (quote, or the coin)."""
    size = contracts * pos.contract_size
    return size / pos.mark_price if pos.inverse else size * pos.mark_price


# Currencies whose money reads in cents; any other collateral is a coin (BTC, ETH, ...).
CENT_CURRENCIES = frozenset({"USD", "USDT", "USDC", "BUSD", "FDUSD", "TUSD", "DAI", "USDE", "EUR", "USD1"})


def money_places(currency: str, value: float = 0.0) -> int:
    """Decimals to show an amount of `currency` with: cents for dollars and stablecoins,
    six for a coin under 100 (0.020862 BTC; a cent of BTC is hundreds of dollars), four above."""
    if currency.upper() in CENT_CURRENCIES or not currency:
        return 2
    return 6 if abs(value) < 100 else 4


def is_inverse(snapshot: Snapshot) -> bool:
    """True for a coin-margined snapshot (its positions are inverse)."""
    return any(p.inverse for p in snapshot.positions)


def valuation_price(snapshot: Snapshot) -> float | None:
    """The quote-currency price of one collateral coin, for showing coin amounts in USD:
    the mark of the snapshot's first inverse position (None for a linear snapshot)."""
    for p in snapshot.positions:
        if p.inverse:
            return p.mark_price
    return None


def quote_currency(snapshot: Snapshot) -> str | None:
    """The currency inverse contracts are quoted in (the quote of BTC/USD:BTC), or None."""
    for p in snapshot.positions:
        if p.inverse:
            base_quote = p.symbol.split(":")[0]
            return base_quote.split("/")[1] if "/" in base_quote else "USD"
    return None
