"""A mark-update load for stream benchmarks: many small mark moves per second, server-side
(a client sending a thousand admin requests a second would spend the CPU it is measuring).

Each update moves one market, round-robin over the chosen venues' markets, to
anchor x (1 + amplitude x U(-1, 1)) on its tick: traffic that never drifts towards an alert
price. A mark set through the admin API or `set_mark` while the load runs becomes that
market's anchor, so a deliberate crossing sticks (the load then jitters around it).
Use a scenario with ``auto_liquidate: false``: every move otherwise revalues each holder.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from typing import Any

from simulator.state import SimState

TICK_SECONDS = 0.01  # updates are issued in batches this often


class MarkLoad:
    """`rate` mark updates per second in total over the markets of `venues`."""

    def __init__(
        self, state: SimState, rate: object, amplitude: object = 0.0005, venues: list[str] | None = None, seed: int = 0
    ) -> None:
        if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 < rate <= 100_000:
            raise ValueError(f"rate must be a number of updates per second in (0, 100000], got {rate!r}")
        if isinstance(amplitude, bool) or not isinstance(amplitude, int | float) or not 0 <= amplitude < 0.5:
            raise ValueError(f"amplitude must be a fraction in [0, 0.5), got {amplitude!r}")
        chosen = venues or sorted(state.markets)
        unknown = [v for v in chosen if v not in state.markets]
        if unknown:
            raise ValueError(f"unknown venue(s) {', '.join(map(str, unknown))}; use {', '.join(sorted(state.markets))}")
        self.state = state
        self.rate = float(rate)
        self.amplitude = float(amplitude)
        self.venues = list(chosen)
        self.keys = [(v, s) for v in self.venues for s in sorted(state.markets[v])]
        if not self.keys:
            raise ValueError("the chosen venues have no markets")
        self.anchors = {key: state.mark(*key) for key in self.keys}
        self.updates = 0
        self._rng = random.Random(seed)  # noqa: S311 - a simulation, not crypto
        self._task: asyncio.Task[None] | None = None

    def anchor(self, venue: str, symbol: str, price: float) -> None:
        if (venue, symbol) in self.anchors:
            self.anchors[(venue, symbol)] = price

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="simulator-mark-load")

    def cancel(self) -> None:
        if self._task is not None:
            self._task.cancel()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _run(self) -> None:
        cycle = itertools.cycle(self.keys)
        started = time.monotonic()
        while True:
            due = int((time.monotonic() - started) * self.rate) - self.updates
            for _ in range(due):
                venue, symbol = next(cycle)
                tick = self.state.markets[venue][symbol].price_tick
                moved = self.anchors[(venue, symbol)] * (1 + self.amplitude * self._rng.uniform(-1, 1))
                self.state.set_mark(venue, symbol, max(tick, round(round(moved / tick) * tick, 12)))
                self.updates += 1
            await asyncio.sleep(TICK_SECONDS)

    def status(self) -> dict[str, Any]:
        return {
            "running": self._task is not None and not self._task.done(),
            "rate": self.rate,
            "amplitude": self.amplitude,
            "venues": self.venues,
            "updates": self.updates,
        }
