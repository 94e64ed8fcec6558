"""The margin engine: pure functions over snapshots, no I/O.

Entry points: `parse_snapshot` (margin.snapshot), `risk_report` (margin.report), and the
vectorised `evaluate` (margin.vectorised) for many accounts at once.
"""
