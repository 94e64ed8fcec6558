"""``python -m simulator --scenario FILE [--port N]``: serve a scenario in the
foreground. Prints the base URL on stdout; stops cleanly on SIGINT or SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from pathlib import Path

from simulator.scenario import ScenarioError, load_scenario
from simulator.server import ExchangeSimulator

DEMO = Path(__file__).with_name("demo_scenario.json")


async def _serve(simulator: ExchangeSimulator, port: int) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    url = await simulator.start_async(port)
    print(url, flush=True)
    try:
        await stop.wait()
    finally:
        await simulator.stop_async()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m simulator", description=__doc__)
    parser.add_argument("--scenario", type=Path, default=DEMO, help="scenario JSON file (default: the demo scenario)")
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: a free one)")
    args = parser.parse_args(argv)
    try:
        simulator = ExchangeSimulator(load_scenario(args.scenario))
    except (OSError, json.JSONDecodeError, ScenarioError) as exc:
        print(f"{args.scenario}: {exc}", file=sys.stderr)
        return 2
    asyncio.run(_serve(simulator, args.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
