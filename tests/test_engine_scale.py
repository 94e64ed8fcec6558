"""The engine's work grows with the number of positions, not with its square (issue 16:
5,000 positions took over a minute, 1,000 took 4 s). Counted in function calls, not timed:
`make bench` prints the seconds."""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import sys
from pathlib import Path
from types import FrameType
from typing import Any

from cli.report_table import shown_positions
from margin.report import risk_report
from margin.snapshot import parse_snapshot

ROOT = Path(__file__).parent.parent
MARGIN = str(ROOT / "margin")
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


def test_the_terminal_report_of_a_large_book_is_bounded(tmp_path: Path) -> None:
    """`marginwatch risk` on 5,000 positions prints the 50 nearest to liquidation, a few names
    per stress row, the first notes of the plan and the first pools to liquidate, each with how
    many more there are; the JSON keeps them all. (Its time is in `python -m bench cli`.)"""
    path = tmp_path / "big.json"
    path.write_text(json.dumps(_book(5000)))
    env = {**os.environ, "COLUMNS": "200", "PYTHONPATH": str(ROOT)}
    table = subprocess.run(
        [sys.executable, "-m", "cli.main", "risk", str(path)], capture_output=True, text=True, cwd=ROOT, env=env
    )
    assert table.returncode == 0, table.stderr[-2000:]
    out = table.stdout
    assert "Positions (50 nearest to liquidation of 5,000)" in out
    assert "… and 4,950 more positions (all in --format json)" in out
    assert len(re.findall(r"^│S\d+/USDT ", out, re.MULTILINE)) == 50
    assert re.search(r"and [\d,]+ more pools \(all in --format json\)", out)
    assert out.count("liquidates first on a move of") + out.count("no uniform move in range") == 10
    assert re.search(r"S\d+/USDT:USDT and [\d,]+ more", out)  # a stress row names a few
    assert re.search(r"│ … and [\d,]+ more \(all in --format json\)", out)  # the plan's notes: the first 5
    assert len(out.splitlines()) < 200, len(out.splitlines())

    done = subprocess.run(
        [sys.executable, "-m", "cli.main", "risk", str(path), "--format", "json"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout)
    assert len(report["positions"]) == 5000
    assert len(report["stress"]["liquidating_shocks"]) > 10
    # the rows shown are the nearest to liquidation (signed: those past it first)
    shown = set(shown_positions(report["positions"]))
    distance = [p["distance_to_liquidation"] for p in report["positions"]]
    assert len(shown) == 50
    assert max(distance[i] for i in shown) <= min(d for i, d in enumerate(distance) if i not in shown and d is not None)
