"""The simulator's live state: marks, accounts by API key, the mark random walk, funding
rates, the candles built from the marks, and liquidations.

The server runs in its own thread while tests and the admin API change marks and
positions, so every access goes through one lock; readers get consistent copies.

Every mark change goes through `_mark_moved`: it updates the hour's candle and, with
`auto_liquidate`, liquidates the pools the move took to health <= 1 (liquidation.py).

Listeners (`subscribe`) hear every mark move and every change of an account's positions or
wallet, in order, as it happens (the websocket streams push them, ws_common.py). They are
called with the lock held, so they must only hand the event on, never block.
"""

from __future__ import annotations

import dataclasses
import math
import random
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from simulator import hyperliquid_margin
from simulator.figures import (
    AccountFigures,
    ContractTier,
    account_figures,
    okx_contract_tiers,
)
from simulator.liquidation import (
    LiquidationRecord,
    execution_price,
    pools_holding,
    settle,
    unhealthy_pools,
)
from simulator.market import CandleBook
from simulator.scenario import (
    HYPERLIQUID,
    AccountSpec,
    MarketSpec,
    Scenario,
    ScenarioError,
    parse_positions,
)


def account_key(venue: str, api_key: str) -> tuple[str, str]:
    """How an account is found: (venue, API key); a Hyperliquid wallet address in any case."""
    return (venue, api_key.lower() if venue == HYPERLIQUID else api_key)


@dataclass(frozen=True)
class MarkMoved:
    """A mark as of `ts_ms`: event times are strictly increasing per (venue, symbol)."""

    venue: str
    symbol: str
    price: float
    ts_ms: int


@dataclass(frozen=True)
class AccountChanged:
    """An account's positions or wallet changed (admin, liquidation, reset): `spec` is the
    account as it became (two quick changes are pushed as two states, not the last twice)."""

    venue: str
    api_key: str
    spec: AccountSpec


StateEvent = MarkMoved | AccountChanged
Listener = Callable[[StateEvent], None]


class SimState:
    """Marks and accounts of one scenario; safe to use from any thread."""

    def __init__(self, scenario: Scenario) -> None:
        self.scenario = scenario
        self.markets: dict[str, dict[str, MarketSpec]] = scenario.markets
        self.started_ms = int(time.time() * 1000)
        self._lock = threading.RLock()
        self._rng = random.Random(scenario.seed)  # noqa: S311 - a seeded simulation, not crypto
        self._marks = {
            (venue, symbol): m.mark_price
            for venue, markets in scenario.markets.items()
            for symbol, m in markets.items()
        }
        self._accounts = {(a.venue, a.api_key): a for a in scenario.accounts}
        self._revoked: set[tuple[str, str]] = set()
        self._funding = {
            (venue, symbol): m.funding_rate
            for venue, markets in scenario.markets.items()
            for symbol, m in markets.items()
        }
        self.candles = CandleBook(scenario, self.started_ms)
        self._liquidations: dict[tuple[str, str], list[LiquidationRecord]] = {}
        self._next_liquidation = 1
        self._next_event = 1
        self._mark_ts: dict[tuple[str, str], int] = {}
        self._listeners: list[Listener] = []
        self._listen_keys: dict[tuple[str, str], str] = {}  # (venue, api_key) -> Binance listenKey
        # OKX publishes tiers in contracts; they are fixed once, at the initial marks.
        self.okx_tiers: dict[str, tuple[ContractTier, ...]] = {
            symbol: okx_contract_tiers(m) for symbol, m in scenario.markets.get("okx", {}).items()
        }
        for i, account in enumerate(scenario.accounts):
            try:
                self.figures(account)  # the venue's figures accept every account, or the scenario is refused
            except ValueError as exc:
                raise ScenarioError(f"accounts[{i}]", str(exc)) from None

    def reset(self) -> None:
        """Back to the scenario's marks, positions, wallets and funding rates (and
        random-walk seed), without liquidation records; the candle history stays, the
        candles since the start are forgotten."""
        with self._lock:
            self._rng.seed(self.scenario.seed)
            for venue, symbol in self._marks:
                self._marks[(venue, symbol)] = self.markets[venue][symbol].mark_price
            self._accounts = {(a.venue, a.api_key): a for a in self.scenario.accounts}
            self._revoked.clear()
            self._funding = {key: self.markets[key[0]][key[1]].funding_rate for key in self._funding}
            self._liquidations.clear()
            self._next_liquidation = self._next_event = 1
            self.candles.reset()
            now = int(time.time() * 1000)
            for (venue, symbol), price in self._marks.items():
                self.candles.touch(venue, symbol, price, now)
                self._emit(MarkMoved(venue, symbol, price, self._stamp(venue, symbol, now)))
            for (venue, api_key), spec in self._accounts.items():
                self._emit(AccountChanged(venue, api_key, spec))

    # --- listeners ---------------------------------------------------------------------

    def subscribe(self, listener: Listener) -> None:
        """Call `listener(event)` on every MarkMoved and AccountChanged (lock held)."""
        with self._lock:
            self._listeners.append(listener)

    def unsubscribe(self, listener: Listener) -> None:
        with self._lock:
            if listener in self._listeners:
                self._listeners.remove(listener)

    def _emit(self, event: StateEvent) -> None:
        for listener in self._listeners:
            listener(event)

    def _stamp(self, venue: str, symbol: str, now_ms: int) -> int:
        """The next event time of a market's mark (lock held): now, or 1 ms after the last
        one, so that a stream's timestamps never repeat or go back."""
        ts = max(now_ms, self._mark_ts.get((venue, symbol), 0) + 1)
        self._mark_ts[(venue, symbol)] = ts
        return ts

    def repeat_mark(self, venue: str, symbol: str, to: Callable[[MarkMoved], None] | None = None) -> None:
        """The unchanged mark again, with a fresh event time, to `to` (a subscription's
        first push) or to every listener (a periodic push). Stamped and handed on under
        the lock, so that no listener ever sees a mark's event times go back."""
        with self._lock:
            price = self._marks[(venue, symbol)]
            event = MarkMoved(venue, symbol, price, self._stamp(venue, symbol, int(time.time() * 1000)))
            if to is not None:
                to(event)
            else:
                self._emit(event)

    # --- marks -------------------------------------------------------------------------

    def mark(self, venue: str, symbol: str) -> float:
        with self._lock:
            return self._marks[(venue, symbol)]

    def marks(self, venue: str) -> dict[str, float]:
        """symbol -> mark for one venue."""
        with self._lock:
            return {s: p for (v, s), p in self._marks.items() if v == venue}

    def set_mark(self, venue: str, symbol: str, price: object) -> None:
        """Move one mark; a KeyError names an unknown market, ValueError a bad price (any
        value is checked here: it comes from an admin request)."""
        if isinstance(price, bool) or not isinstance(price, int | float) or not math.isfinite(price) or price <= 0:
            raise ValueError(f"price must be a positive number, got {price!r}")
        with self._lock:
            if (venue, symbol) not in self._marks:
                raise KeyError(f"no market {symbol} on {venue}")
            previous = self._marks[(venue, symbol)]
            self._marks[(venue, symbol)] = float(price)
            self._mark_moved(venue, symbol, previous, float(price))

    def step_random_walk(self) -> None:
        """One step of the geometric random walk for every mark, kept on the price tick;
        each move is checked for liquidations as it happens."""
        sigma = self.scenario.random_walk.volatility
        with self._lock:
            for (venue, symbol), price in sorted(self._marks.items()):
                tick = self.markets[venue][symbol].price_tick
                moved = price * math.exp(self._rng.gauss(-0.5 * sigma * sigma, sigma))
                self._marks[(venue, symbol)] = max(tick, round(moved / tick) * tick)
                self._mark_moved(venue, symbol, price, self._marks[(venue, symbol)])

    def _mark_moved(self, venue: str, symbol: str, previous: float, price: float) -> None:
        """After a mark change (lock held): the hour's candle, then liquidations."""
        now = int(time.time() * 1000)
        self.candles.touch(venue, symbol, price, now)
        self._emit(MarkMoved(venue, symbol, price, self._stamp(venue, symbol, now)))
        if not self.scenario.auto_liquidate:
            return
        for key, spec in list(self._accounts.items()):
            if spec.venue != venue or all(p.symbol != symbol for p in spec.positions):
                continue
            fig = self.figures(spec)
            pools = unhealthy_pools(fig, symbol)
            if pools:
                moved = (symbol, previous, price)
                prices = {p.index: execution_price(p, moved) for p in fig.positions}
                self._settle(key, spec, fig, pools, prices, now, forced=False)

    def _settle(
        self,
        key: tuple[str, str],
        spec: AccountSpec,
        fig: AccountFigures,
        pools: list[tuple[str, tuple[int, ...]]],
        prices: dict[int, float],
        now: int,
        *,
        forced: bool,
    ) -> list[LiquidationRecord]:
        updated, records = settle(
            spec, fig, pools, prices, now_ms=now, first_id=self._next_liquidation, event=self._next_event, forced=forced
        )
        self._next_liquidation += len(records)
        self._next_event += len(pools)
        self._accounts[key] = updated
        self._liquidations.setdefault(key, []).extend(records)
        self._emit(AccountChanged(*key, updated))
        return records

    # --- funding -----------------------------------------------------------------------

    def funding_rate(self, venue: str, symbol: str) -> float:
        with self._lock:
            return self._funding[(venue, symbol)]

    def set_funding_rate(self, venue: str, symbol: str, rate: object) -> None:
        """The market's current (and predicted) funding rate per 8 h interval; a KeyError
        names an unknown market, ValueError a bad rate."""
        if isinstance(rate, bool) or not isinstance(rate, int | float) or not math.isfinite(rate) or abs(rate) >= 1:
            raise ValueError(f"rate must be a number with |rate| < 1 (a fraction per interval), got {rate!r}")
        with self._lock:
            if (venue, symbol) not in self._funding:
                raise KeyError(f"no market {symbol} on {venue}")
            self._funding[(venue, symbol)] = float(rate)

    # --- liquidations ------------------------------------------------------------------

    def liquidate(self, venue: str, api_key: str, symbol: str) -> list[LiquidationRecord]:
        """Force the liquidation of the pool(s) holding the account's `symbol` position(s)
        at the current marks, whatever their health. KeyError: unknown account or no
        such position."""
        with self._lock:
            key = account_key(venue, api_key)
            spec = self._accounts.get(key)
            if spec is None:
                raise KeyError(f"no account with that API key on {venue}")
            fig = self.figures(spec)
            pools = pools_holding(fig, symbol)
            if not pools:
                raise KeyError(f"the account holds no {symbol} position")
            prices = {p.index: p.mark for p in fig.positions}
            return self._settle(key, spec, fig, pools, prices, int(time.time() * 1000), forced=True)

    def liquidations(self, venue: str, api_key: str) -> list[LiquidationRecord]:
        """The account's liquidated positions, oldest first."""
        with self._lock:
            return list(self._liquidations.get(account_key(venue, api_key), []))

    # --- accounts ----------------------------------------------------------------------

    def account(self, venue: str, api_key: str) -> AccountSpec | None:
        """The account of a key; None for an unknown or revoked key (the venue then
        answers with its own invalid-key error)."""
        key = account_key(venue, api_key)
        with self._lock:
            if key in self._revoked:
                return None
            return self._accounts.get(key)

    def revoke_key(self, venue: str, api_key: str) -> None:
        """The key stops working, as when its owner deletes it on the exchange. Hyperliquid
        reads use no key: ValueError there."""
        if venue == HYPERLIQUID:
            raise ValueError("Hyperliquid reads need only the wallet address: there is no key to revoke")
        with self._lock:
            self._revoked.add((venue, api_key))

    def accounts(self) -> list[AccountSpec]:
        with self._lock:
            return list(self._accounts.values())

    def set_positions(self, venue: str, api_key: str, positions: Any) -> None:
        """Replace an account's positions (a position may vanish); validated like the
        scenario (ScenarioError) and by the engine, or nothing changes."""
        key = account_key(venue, api_key)
        with self._lock:
            spec = self._accounts.get(key)
            if spec is None:
                raise KeyError(f"no account with that API key on {venue}")
            parsed = parse_positions(positions, "positions", venue, self.markets)
            updated = dataclasses.replace(spec, positions=parsed)
            try:
                self.figures(updated)
            except ValueError as exc:
                raise ScenarioError("positions", str(exc)) from None
            self._accounts[key] = updated
            self._emit(AccountChanged(venue, api_key, updated))

    def listen_key(self, venue: str, api_key: str) -> str:
        """The account's user-data stream key: the same one until deleted, as Binance
        returns the active key to a repeated POST (ccxt relies on it)."""
        with self._lock:
            key = self._listen_keys.get((venue, api_key))
            if key is None:
                key = self._listen_keys[(venue, api_key)] = secrets.token_hex(32)
            return key

    def has_listen_key(self, venue: str, api_key: str) -> bool:
        with self._lock:
            return (venue, api_key) in self._listen_keys

    def delete_listen_key(self, venue: str, api_key: str) -> None:
        with self._lock:
            self._listen_keys.pop((venue, api_key), None)

    def account_for_listen_key(self, venue: str, key: str) -> AccountSpec | None:
        """The account whose active listenKey is `key` (None: unknown or deleted)."""
        with self._lock:
            for (v, api_key), active in self._listen_keys.items():
                if v == venue and active == key:
                    return self.account(venue, api_key)
            return None

    def figures(self, spec: AccountSpec) -> AccountFigures:
        """The numbers the venue reports for `spec` at the current marks: the engine's, or
        on Hyperliquid the venue's published formulas (simulator/hyperliquid_margin.py),
        so that the engine can be checked against them."""
        markets = self.markets.get(spec.venue, {})
        if spec.venue == HYPERLIQUID:
            return hyperliquid_margin.account_figures(spec, markets, self.marks(spec.venue))
        return account_figures(spec, markets, self.marks(spec.venue), self.okx_tiers)

    def snapshot(self) -> dict[str, Any]:
        """Marks and accounts as JSON (no secrets), for GET /_admin/state."""
        with self._lock:
            marks: dict[str, dict[str, float]] = {}
            for (venue, symbol), price in self._marks.items():
                marks.setdefault(venue, {})[symbol] = price
            accounts = []
            for spec in self._accounts.values():
                fig = self.figures(spec)
                accounts.append(
                    {
                        "venue": spec.venue,
                        "api_key": spec.api_key,
                        "name": spec.name,
                        "collateral": spec.collateral,
                        "wallet_balance": spec.wallet_balance,
                        "permissions": {"trade": spec.can_trade, "withdraw": spec.can_withdraw},
                        "cross": {
                            "equity": fig.cross_equity,
                            "maintenance_margin": fig.cross_maintenance,
                            "health": fig.cross_health,
                        },
                        "positions": [
                            {
                                **dataclasses.asdict(p.spec),
                                "mark_price": p.mark,
                                "unrealized_pnl": p.unrealized_pnl,
                                "maintenance_margin": p.maintenance_margin,
                                "liquidation_price": p.liquidation_price,
                            }
                            for p in fig.positions
                        ],
                        "liquidations": [
                            {k: v for k, v in r.as_dict().items() if k != "api_key"}
                            for r in self._liquidations.get((spec.venue, spec.api_key), [])
                        ],
                    }
                )
            funding: dict[str, dict[str, float]] = {}
            for (venue, symbol), rate in self._funding.items():
                funding.setdefault(venue, {})[symbol] = rate
        return {
            "marks": marks,
            "funding_rates": funding,
            "auto_liquidate": self.scenario.auto_liquidate,
            "accounts": accounts,
        }
