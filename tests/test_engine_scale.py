"""The engine's work grows with the number of positions, not with its square (issue 16:
5,000 positions took over a minute, 1,000 took 4 s). Counted in function calls, not timed:
`make bench` prints the seconds."""

from __future__ import annotations

import random
import sys
from pathlib import Path
from types import FrameType
from typing import Any

from margin.report import risk_report
from margin.snapshot import parse_snapshot

MARGIN = str(Path(__file__).parent.parent / "margin")
TIERS = [
    {"min_notional": 0.0, "maintenance_margin_rate": 0.004},
    {"min_notional": 5e4, "maintenance_margin_rate": 0.005},
    {"min_notional": 2.5e5, "maintenance_margin_rate": 0.01},
    {"min_notional": 3e6, "maintenance_margin_rate": 0.025},
]


def _book(n: int) -> dict[str, Any]:
    """n positions over n/2 symbols, a fifth isolated, every one with a volatility."""
    rng = random.Random(3)
    positions = []
    for k in range(n):
        mark = 100 + (k % (n // 2)) * 0.01
        isolated = k % 5 == 0
        positions.append(
            {
                "symbol": f"S{k % (n // 2)}/USDT:USDT",
                "side": rng.choice(["long", "short"]),
                "contracts": rng.uniform(1, 500),
                "contract_size": 1,
                "entry_price": mark * rng.uniform(0.9, 1.1),
                "mark_price": mark,
                "margin_mode": "isolated" if isolated else "cross",
                "isolated_margin": 1000.0 if isolated else None,
                "tiers": TIERS,
                "volatility": 0.04,
            }
        )
    return {
        "exchange": "binanceusdm",
        "account": "big",
        "collateral": "USDT",
        "wallet_balance": 2e6,
        "positions": positions,
    }


def _engine_calls(n: int) -> int:
    snapshot = parse_snapshot(_book(n))
    calls = 0

    def count(frame: FrameType, event: str, arg: object) -> None:
        nonlocal calls
        if event == "call" and frame.f_code.co_filename.startswith(MARGIN):
            calls += 1

    sys.setprofile(count)
    try:
        report = risk_report(snapshot)
    finally:
        sys.setprofile(None)
    assert len(report["positions"]) == n
    return calls


def test_the_report_is_linear_in_the_number_of_positions() -> None:
    small, large = _engine_calls(500), _engine_calls(2000)
    # four times the positions: four times the work (quadratic work would be sixteen)
    assert large / small < 5.0, (small, large)
