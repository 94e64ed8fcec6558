"""The simulator's live state: marks, accounts by API key, and the mark random walk.

The server runs in its own thread while tests and the admin API change marks and
positions, so every access goes through one lock; readers get consistent copies.
"""

from __future__ import annotations

import dataclasses
import math
import random
import threading
import time
from typing import Any

from connectors.simulator.figures import (
    AccountFigures,
    ContractTier,
    account_figures,
    okx_contract_tiers,
)
from connectors.simulator.scenario import (
    AccountSpec,
    MarketSpec,
    Scenario,
    ScenarioError,
    parse_positions,
)


class SimState:
    """Marks and accounts of one scenario; safe to use from any thread."""

    def __init__(self, scenario: Scenario) -> None:
        self.scenario = scenario
        self.markets: dict[str, dict[str, MarketSpec]] = scenario.markets
        self.started_ms = int(time.time() * 1000)
        self._lock = threading.RLock()
        self._rng = random.Random(scenario.seed)  # noqa: S311 - a seeded simulation, not crypto
        self._marks = {(venue, symbol): m.mark_price
                       for venue, markets in scenario.markets.items() for symbol, m in markets.items()}
        self._accounts = {(a.venue, a.api_key): a for a in scenario.accounts}
        # OKX publishes tiers in contracts; they are fixed once, at the initial marks.
        self.okx_tiers: dict[str, tuple[ContractTier, ...]] = {
            symbol: okx_contract_tiers(m) for symbol, m in scenario.markets.get("okx", {}).items()
        }
        for i, account in enumerate(scenario.accounts):
            try:
                self.figures(account)  # the engine accepts every account, or the scenario is refused
            except ValueError as exc:
                raise ScenarioError(f"accounts[{i}]", str(exc)) from None

    def reset(self) -> None:
        """Back to the scenario's marks and positions (and random-walk seed)."""
        with self._lock:
            self._rng.seed(self.scenario.seed)
            for (venue, symbol) in self._marks:
                self._marks[(venue, symbol)] = self.markets[venue][symbol].mark_price
            self._accounts = {(a.venue, a.api_key): a for a in self.scenario.accounts}

    # --- marks -------------------------------------------------------------------------

    def mark(self, venue: str, symbol: str) -> float:
        with self._lock:
            return self._marks[(venue, symbol)]

    def marks(self, venue: str) -> dict[str, float]:
        """symbol -> mark for one venue."""
        with self._lock:
            return {s: p for (v, s), p in self._marks.items() if v == venue}

    def set_mark(self, venue: str, symbol: str, price: float) -> None:
        """Move one mark; a KeyError names an unknown market, ValueError a bad price."""
        if isinstance(price, bool) or not isinstance(price, int | float) or not math.isfinite(price) \
                or price <= 0:
            raise ValueError(f"price must be a positive number, got {price!r}")
        with self._lock:
            if (venue, symbol) not in self._marks:
                raise KeyError(f"no market {symbol} on {venue}")
            self._marks[(venue, symbol)] = float(price)

    def step_random_walk(self) -> None:
        """One step of the geometric random walk for every mark, kept on the price tick."""
        sigma = self.scenario.random_walk.volatility
        with self._lock:
            for (venue, symbol), price in sorted(self._marks.items()):
                tick = self.markets[venue][symbol].price_tick
                moved = price * math.exp(self._rng.gauss(-0.5 * sigma * sigma, sigma))
                self._marks[(venue, symbol)] = max(tick, round(moved / tick) * tick)

    # --- accounts ----------------------------------------------------------------------

    def account(self, venue: str, api_key: str) -> AccountSpec | None:
        with self._lock:
            return self._accounts.get((venue, api_key))

    def accounts(self) -> list[AccountSpec]:
        with self._lock:
            return list(self._accounts.values())

    def set_positions(self, venue: str, api_key: str, positions: Any) -> None:
        """Replace an account's positions (a position may vanish); validated like the
        scenario (ScenarioError) and by the engine, or nothing changes."""
        with self._lock:
            spec = self._accounts.get((venue, api_key))
            if spec is None:
                raise KeyError(f"no account with that API key on {venue}")
            parsed = parse_positions(positions, "positions", venue, self.markets)
            updated = dataclasses.replace(spec, positions=parsed)
            try:
                self.figures(updated)
            except ValueError as exc:
                raise ScenarioError("positions", str(exc)) from None
            self._accounts[(venue, api_key)] = updated

    def figures(self, spec: AccountSpec) -> AccountFigures:
        """The engine's numbers for `spec` at the current marks."""
        return account_figures(spec, self.markets.get(spec.venue, {}), self.marks(spec.venue),
                               self.okx_tiers)

    def snapshot(self) -> dict[str, Any]:
        """Marks and accounts as JSON (no secrets), for GET /_admin/state."""
        with self._lock:
            marks: dict[str, dict[str, float]] = {}
            for (venue, symbol), price in self._marks.items():
                marks.setdefault(venue, {})[symbol] = price
            accounts = []
            for spec in self._accounts.values():
                fig = self.figures(spec)
                accounts.append({
                    "venue": spec.venue, "api_key": spec.api_key, "name": spec.name,
                    "collateral": spec.collateral, "wallet_balance": spec.wallet_balance,
                    "permissions": {"trade": spec.can_trade, "withdraw": spec.can_withdraw},
                    "cross": {"equity": fig.cross_equity, "maintenance_margin": fig.cross_maintenance,
                              "health": fig.cross_health},
                    "positions": [{
                        **dataclasses.asdict(p.spec), "mark_price": p.mark,
                        "unrealized_pnl": p.unrealized_pnl, "maintenance_margin": p.maintenance_margin,
                        "liquidation_price": p.liquidation_price,
                    } for p in fig.positions],
                })
        return {"marks": marks, "accounts": accounts}
