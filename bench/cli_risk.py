"""`marginwatch risk` on one snapshot of 5,000 positions (the book of
tests/test_engine_scale.py), as a user runs it: a fresh process, table and JSON output.
Prints wall time and the child's CPU time (user + system; less sensitive to a shared machine).

Goal (issue 16, "Security and input hardening"): 5,000 positions reported in under 2 s.
Run: `python -m bench cli`.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.test_engine_scale import _book

ROOT = Path(__file__).parent.parent


def _run(args: list[str]) -> tuple[float, float, int]:
    """(wall s, child CPU s, output lines) of one `marginwatch` run."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "cli.main", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "COLUMNS": "200", "PYTHONPATH": str(ROOT)},
        check=True,
    )
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, done.stdout.count("\n")


def main() -> None:
    n = int(os.environ.get("BENCH_CLI_POSITIONS", "5000"))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "book.json"
        path.write_text(json.dumps(_book(n)))
        for name, extra in (("table", []), ("json", ["--format", "json"])):
            runs = [_run(["risk", str(path), *extra]) for _ in range(3)]
            wall = min(r[0] for r in runs)
            cpu = min(r[1] for r in runs)
            lines = runs[0][2]
            print(
                f"risk --format {name:5s} {n:,} positions   wall {wall:6.3f} s   CPU {cpu:6.3f} s"
                f"   {lines:,} lines   (goal < 2 s)"
            )
