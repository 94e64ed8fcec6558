"""Alert messages of a multi-collateral account carry its collateral (issue 13): each asset
at its haircut, the venue's ratio beside ours, the wrong-way share; hostile asset names
stay text in the HTML; the JSON payload carries the rows."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path

from alerts.collateral_lines import collateral_lines
from alerts.messages import MessageInputs, compose
from alerts.rules import Level, Transition
from margin.snapshot import parse_snapshot

ROOT = Path(__file__).parent.parent
UTA = json.loads((ROOT / "examples" / "uta-snapshot.json").read_text())


def test_the_email_and_payload_show_the_collateral() -> None:
    doc = copy.deepcopy(UTA)
    doc["exchange_native_ratio"] = 0.00695
    doc["assets"][1]["asset"] = "BTC<script>x</script>"
    snapshot = parse_snapshot(doc)
    rows = collateral_lines(snapshot)
    names = [name for name, _ in rows]
    assert names == [
        "Collateral USDT",
        "Collateral BTC<script>x</script>",
        "Collateral USDC",
        "accountMMRate",
        "Loss from collateral in a 20 % fall",
    ]
    assert dict(rows)["Collateral BTC<script>x</script>"] == "1.5 × 60,000 at 93 % = 84,000.00 USD"
    assert dict(rows)["accountMMRate"] == "0.006953 (exchange 0.00695)"
    assert dict(rows)["Loss from collateral in a 20 % fall"] == "41 %"
    now = datetime(2026, 12, 1, 17, 0, tzinfo=UTC)
    message = compose(
        MessageInputs(
            label="bybit/uta",
            collateral="USDT",
            transitions=[("health", Transition("health", "fired", Level.OK, Level.WARNING, 1.2, now))],
            health=1.2,
            equity=98000.0,
            maintenance_margin=681.38,
            level_now=Level.WARNING,
            now=now,
            as_of=now,
            exchange="bybit",
            account="uta",
            collateral_rows=rows,
        )
    )
    assert "Collateral BTC<script>x</script>: 1.5 × 60,000 at 93 % = 84,000.00 USD" in message.text
    assert "<script>" not in message.html and "&lt;script&gt;" in message.html
    sent = json.dumps(message.payload)
    assert "Collateral BTC<script>x</script>" in sent and "accountMMRate" in sent


def test_a_single_asset_account_adds_nothing() -> None:
    demo = json.loads((ROOT / "examples" / "demo-snapshot.json").read_text())
    assert collateral_lines(parse_snapshot(demo)) == []
    assert collateral_lines(None) == []
