"""The dashboard's collateral panel (issue 13), run in Streamlit's AppTest: the collateral
table, the venue's ratio beside ours, and the wrong-way share of a 20 % fall."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest


def _panel(ratio: float | None) -> None:
    import json
    from pathlib import Path

    from app.views.account.collateral import render_collateral
    from margin.snapshot import parse_snapshot

    doc = json.loads((Path.cwd() / "examples" / "uta-snapshot.json").read_text())
    doc["exchange_native_ratio"] = ratio
    doc["assets"][1]["asset"] = "BTC*<b>x</b>"  # hostile text from an exchange stays text
    render_collateral(parse_snapshot(doc), "uta")


def _run(ratio: float | None) -> AppTest:
    at = AppTest.from_function(_panel, args=(ratio,), default_timeout=30)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_the_panel_shows_the_collateral_table_and_the_ratios() -> None:
    at = _run(681.38 / 98000.0)
    frame = at.dataframe[0].value.set_index("asset")
    assert frame.loc["BTC*<b>x</b>", "adjusted_value"] == pytest.approx(84000.0)
    assert frame.loc["USDT", "equity"] == pytest.approx(16000.0)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["accountMMRate (ours)"] == metrics["accountMMRate (exchange)"]
    # -20 %: BTC at 48,000 loses 1 x 12,000 x 0.95 + 0.5 x 12,000 x 0.9 = 16,800 of 40,800
    assert metrics["Loss from collateral in a 20 % fall"] == f"{16800 / 40800:.0%}"
    assert not at.warning


def test_a_venue_ratio_over_half_a_percent_away_is_flagged() -> None:
    at = _run(681.38 / 98000.0 * 1.01)
    assert any("differs from the exchange" in w.value for w in at.warning)
