"""Run every benchmark, or those named: `python -m bench engine`."""

from __future__ import annotations

import sys

from bench import alerts, cli_risk, collateral, dashboard, engine, metrics, poll, risk, stream_alerts, stream_load

SUITES = {
    "engine": engine.main,
    "poll": poll.main,
    "alerts": alerts.main,
    "dashboard": dashboard.main,
    "risk": risk.main,
    "streams": stream_load.main,
    "stream_alerts": stream_alerts.main,
    "metrics": metrics.main,
    "cli": cli_risk.main,
    "collateral": collateral.main,
}


def main(argv: list[str]) -> None:
    names = argv or list(SUITES)
    for name in names:
        if name not in SUITES:
            raise SystemExit(f"unknown benchmark {name!r}; choose from {', '.join(SUITES)}")
        print(f"== {name} ==", flush=True)
        SUITES[name]()


if __name__ == "__main__":
    main(sys.argv[1:])
