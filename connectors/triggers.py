"""Mark-price triggers: who wants to hear when a symbol's mark leaves a price band, and
the gate that keeps a stream's duplicate and out-of-order marks out.

A `Watch(account, symbol, low, high)` says "tell me when the mark leaves (low, high)":
it fires once, at the first accepted mark <= low or >= high (None: no bound on that side),
and is then spent until the account's watches are replaced (`TriggerBook.set_account`,
after each poll: the engine recomputes the alert prices from fresh positions). A watch set
while the mark is already outside its band fires at the next mark.

Checking a mark is O(1) while it lies inside every band of its symbol (the tightest bounds
are kept at hand); a crossing costs O(log n + k) for k watches fired. Prices are in the
quote currency; timestamps are the venue's event times in ms.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

Bound = Literal["low", "high"]


@dataclass(frozen=True)
class Watch:
    """Fire when `symbol`'s mark leaves (low, high). `label` is the caller's (e.g.
    "critical"); several watches per (account, symbol) are fine."""

    account: str
    symbol: str
    low: float | None = None
    high: float | None = None
    label: str = ""

    def __post_init__(self) -> None:
        if self.low is not None and self.high is not None and not self.low < self.high:
            raise ValueError(f"watch {self.account}/{self.symbol}: need low < high, got {self.low} and {self.high}")


@dataclass(frozen=True)
class Crossing:
    """`watch`'s band was left: `mark` (quote currency) at `timestamp` (venue ms; None when
    the venue sent none) is at or beyond its `bound`."""

    venue: str
    account: str
    symbol: str
    mark: float
    timestamp: int | None
    bound: Bound
    watch: Watch


@dataclass
class _SymbolTriggers:
    """One symbol's armed watches: lows and highs sorted, keyed by a sequence number."""

    lows: list[tuple[float, int]] = field(default_factory=list)
    highs: list[tuple[float, int]] = field(default_factory=list)
    watches: dict[int, Watch] = field(default_factory=dict)

    def inside(self, mark: float) -> bool:
        """Whether `mark` is strictly inside every armed band (the O(1) common case)."""
        self._purge()
        return (not self.lows or mark > self.lows[-1][0]) and (not self.highs or mark < self.highs[0][0])

    def fire(self, mark: float) -> list[tuple[Watch, Bound]]:
        """Disarm and return the watches whose band `mark` leaves."""
        fired: list[tuple[Watch, Bound]] = []
        cut = bisect.bisect_left(self.lows, (mark, -1))
        for _, seq in self.lows[cut:]:
            watch = self.watches.pop(seq, None)
            if watch is not None:
                fired.append((watch, "low"))
        del self.lows[cut:]
        cut = bisect.bisect_right(self.highs, (mark, float("inf")))
        for _, seq in self.highs[:cut]:
            watch = self.watches.pop(seq, None)
            if watch is not None:
                fired.append((watch, "high"))
        del self.highs[:cut]
        return fired

    def _purge(self) -> None:
        # a watch fired by one side stays in the other list until it reaches the end
        while self.lows and self.lows[-1][1] not in self.watches:
            self.lows.pop()
        while self.highs and self.highs[0][1] not in self.watches:
            self.highs.pop(0)


class TriggerBook:
    """The watches of one venue's accounts, by symbol."""

    def __init__(self) -> None:
        self._by_account: dict[str, list[Watch]] = {}
        self._symbols: dict[str, _SymbolTriggers] = {}
        self._seq = itertools.count()

    def set_account(self, account: str, watches: Iterable[Watch]) -> None:
        """Replace every watch of `account` (an empty iterable removes them); the new ones
        are armed."""
        self.replace({account: watches})

    def replace(self, watches_by_account: Mapping[str, Iterable[Watch]]) -> None:
        """`set_account` for several accounts, rebuilding each symbol's table once."""
        touched: set[str] = set()
        for account, watches in watches_by_account.items():
            new = list(watches)
            for watch in new:
                if watch.account != account:
                    raise ValueError(f"a watch of account {watch.account!r} given for {account!r}")
            touched |= {w.symbol for w in self._by_account.get(account, [])} | {w.symbol for w in new}
            if new:
                self._by_account[account] = new
            else:
                self._by_account.pop(account, None)
        for symbol in touched:
            self._rebuild(symbol)

    def _rebuild(self, symbol: str) -> None:
        table = _SymbolTriggers()
        for watches in self._by_account.values():
            for watch in watches:
                if watch.symbol != symbol:
                    continue
                seq = next(self._seq)
                table.watches[seq] = watch
                if watch.low is not None:
                    table.lows.append((watch.low, seq))
                if watch.high is not None:
                    table.highs.append((watch.high, seq))
        table.lows.sort()
        table.highs.sort()
        if table.watches:
            self._symbols[symbol] = table
        else:
            self._symbols.pop(symbol, None)

    def check(self, venue: str, symbol: str, mark: float, timestamp: int | None) -> list[Crossing]:
        """The crossings `mark` makes (each watch at most once); [] in the common case."""
        table = self._symbols.get(symbol)
        if table is None or table.inside(mark):
            return []
        return [
            Crossing(venue, watch.account, symbol, mark, timestamp, bound, watch) for watch, bound in table.fire(mark)
        ]

    def armed(self, symbol: str | None = None) -> list[Watch]:
        """The watches not yet fired (of one symbol, or all)."""
        tables = [self._symbols[symbol]] if symbol in self._symbols else [] if symbol else self._symbols.values()
        return [w for table in tables for w in table.watches.values()]

    def symbols(self) -> set[str]:
        """Symbols with at least one watch set (fired or not)."""
        return {w.symbol for watches in self._by_account.values() for w in watches}


class MarkGate:
    """Per symbol, the newest mark accepted. A mark older than it (out of order) or equal
    to it in time and price (a duplicate) is refused; at the same time with another price it
    is accepted (the venue's clock cannot order them; the later arrival wins)."""

    def __init__(self) -> None:
        self._last: dict[str, tuple[int, float]] = {}

    def accept(self, symbol: str, mark: float, timestamp: int | None) -> bool:
        if timestamp is None:  # nothing to order by: take it as it comes
            return True
        last = self._last.get(symbol)
        if last is not None and (timestamp < last[0] or (timestamp == last[0] and mark == last[1])):
            return False
        self._last[symbol] = (timestamp, mark)
        return True

    def latest(self, symbol: str) -> tuple[int, float] | None:
        """(timestamp, mark) of the newest accepted mark."""
        return self._last.get(symbol)
