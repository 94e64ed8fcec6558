"""The position grid's pure parts: venue-native symbols, pool names, and the HTML (every
cell escaped, "—" for what is absent, never None or nan)."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from app.components.grid import grid_html
from readmodels.positions import GridRow
from readmodels.symbols import native_symbol, pool_name

NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)


@pytest.mark.parametrize(
    ("exchange", "unified", "native"),
    [
        ("okx", "BTC/USDT:USDT", "BTC-USDT-SWAP"),
        ("binanceusdm", "ETH/USDT:USDT", "ETHUSDT"),
        ("binancecoinm", "BTC/USD:BTC", "BTCUSD_PERP"),
        ("bybit", "SOL/USDT:USDT", "SOLUSDT"),
        ("hyperliquid", "HYPE/USDC:USDC", "HYPE"),
        ("kraken", "BTC/USD:USD", "BTC/USD:USD"),
    ],
)
def test_native_symbols(exchange: str, unified: str, native: str) -> None:
    assert native_symbol(exchange, unified) == native


def test_pool_names_read_as_words() -> None:
    assert pool_name("isolated", "BTC/USDT:USDT", "short") == "isolated · BTC short"
    assert pool_name("cross", "BTC/USDT:USDT", "long") == "cross"


def _row(**changes: object) -> GridRow:
    row = GridRow(
        account="a",
        label="okx/a",
        level="critical",
        stale=False,
        exchange="okx",
        symbol="ETH-USDT-SWAP",
        unified="ETH/USDT:USDT",
        side="long",
        margin_mode="cross",
        pool="cross",
        contracts=100.0,
        base_size=10.0,
        base="ETH",
        currency="USDT",
        notional=31_227.8,
        leverage=20.0,
        entry_price=3300.0,
        mark_price=3122.78,
        liquidation_price=3065.58,
        exchange_liquidation_price=3063.79,
        disagrees=False,
        distance=-0.0183,
        distance_sigma=0.5,
        liquidation_side="down",
        margin_ratio=0.1979,
        unrealized_pnl=-1772.2,
        maintenance_margin=150.0,
        isolated_margin=None,
        touch_probability=0.64,
        volatility=None,
        health=None,
        funding_rate=0.0001,
        next_funding_at=NOW + timedelta(hours=7, minutes=10),
        funding_received=-3.12,
        amount_step=1.0,
        price_tick=0.01,
    )
    return replace(row, **changes)


def test_grid_cells_carry_units_and_dashes() -> None:
    text = grid_html([_row()], NOW, UTC, more=True)
    for expected in ("100 ct", "10 ETH", "31,227.80 USDT", "20×", "19.79 %", "↓ 1.83 %", "0.5 σ", "in 7 h 10 m"):
        assert expected in text, expected
    assert "-1,772.20 USDT" in text and "64.0 %" in text
    assert not re.search(r"\b(None|nan|NaN)\b", text)
    assert "—" in text  # the isolated margin and σ are absent


def test_exchange_text_in_the_grid_is_escaped() -> None:
    hostile = '<img src=x onerror="alert(1)">'
    text = grid_html([_row(symbol=hostile, label=hostile)], NOW, UTC)
    assert "<img" not in text and "&lt;img" in text


def test_an_action_card_priced_on_an_older_book_says_its_age_and_widens_the_cost() -> None:
    from app.components.actions import cost_text
    from readmodels.actions import ActionCard

    card = ActionCard("a", "okx/a", "critical", "USDT", ("add 291 USDT",), 6.4, 7.0, "taker fee + slippage", 180.0)
    text = cost_text(card)
    assert text is not None
    assert "6.40 to 7.00 USDT" in text and "3 min older than the mark" in text
    fresh = cost_text(replace(card, cost_high=None, book_age_seconds=None))
    assert fresh is not None and "6.40 USDT" in fresh and "older" not in fresh


def test_the_what_if_range_follows_the_nearest_liquidation_and_shows_the_new_prices() -> None:
    import json

    from app.views.account.whatif import WhatIf, apply, curve_shocks, liquidations_after, load, shock_range
    from tests.test_app_parts import DEMO

    snapshot = load(json.dumps({**json.loads(DEMO), "wallet_balance": 23_400.0}))  # cross < 1 % from liquidation
    limit = shock_range(snapshot)
    assert limit == 0.05  # ±5 %: the useful few % fill the chart
    shocks = curve_shocks(limit)
    assert min(shocks) == -0.05 and max(shocks) == 0.05 and len(shocks) == 201
    before = liquidations_after(snapshot)
    after = liquidations_after(apply(snapshot, WhatIf(added_collateral=5_000.0)))
    cross = before["pool"] == "cross"
    assert (after.loc[cross, "distance"] > before.loc[cross, "distance"]).all()  # collateral moves them away
    assert after["liquidation_price"].notna().all()


def test_a_book_older_than_the_mark_is_moved_to_it_and_its_age_is_said() -> None:
    """The cut's cost on a stored book: fresh, its slippage as it is; stored minutes before
    the mark (the price has moved since), its levels moved to the mark so that the cost is
    the book's depth, not the drift, and its age given."""
    from alerts.remedy import Cut
    from app.views.account.whatif import load
    from readmodels.actions import _cost
    from readmodels.risk import StoredBook
    from tests.test_app_parts import DEMO

    snapshot = load(DEMO)
    pos = next(p for p in snapshot.positions if p.margin_mode == "cross" and p.side == "long")
    mark = pos.mark_price
    cut = Cut(pos.symbol, pos.side, pos.contracts / 2, pos.size / 2, pos.size / 2 * mark, pos.contract_size, None)
    size = pos.size  # bids deep enough for the cut, 0.01 % and 0.02 % under the book's mid
    drifted = 0.97  # stored when the price was 3 % lower
    book = {
        "bids": [[mark * drifted * 0.9999, size], [mark * drifted * 0.9998, size]],
        "asks": [[mark * drifted * 1.0001, size]],
    }
    mark_at = NOW
    fresh = _cost(snapshot, (cut,), {pos.symbol: StoredBook(book, NOW)}, mark_at)
    stale = _cost(snapshot, (cut,), {pos.symbol: StoredBook(book, NOW - timedelta(minutes=6))}, mark_at)
    assert fresh[3] is None and fresh[2].startswith("taker fee + slippage")
    assert stale[3] == pytest.approx(360.0)
    # fresh: taken as it is, the 3 % gap counts as slippage; stale: only the depth does
    assert fresh[0] is not None and stale[0] is not None and stale[1] is not None
    assert stale[0] < fresh[0] * 0.2 and stale[0] < stale[1]
    assert book["bids"][0][0] == pytest.approx(mark * drifted * 0.9999)  # the stored book is left as it was


def test_tables_show_human_headers_and_dashes_for_gaps() -> None:
    import pandas as pd
    import streamlit as st

    from app.components.tables import _display, _styled_gaps, human, number_text

    assert human("last_error") == "Last error" and human("from_level") == "From level"
    assert number_text(0.1391, "percent") == "13.91 %" and number_text(140.5377, "%,.2f") == "140.54"
    assert number_text(float("nan"), "%,.2f") == "—" and number_text(None) == "—"
    frame = pd.DataFrame({"last_error": ["boom", None], "value": [0.5, None], "count": [1, 2]})
    shown, config = _display(frame, {"value": st.column_config.NumberColumn("value", format="%.4f")})
    assert shown["last_error"].tolist() == ["boom", "—"] and shown["value"].tolist() == ["0.5000", "—"]
    assert config["last_error"]["label"] == "Last error" and config["count"]["label"] == "Count"
    styled = _styled_gaps(frame.style.format("{:.1f}", subset=["count"]), {})
    html = styled.to_html()
    assert "—" in html and not re.search(r">\s*(None|nan)\s*<", html)
