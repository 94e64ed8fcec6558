"""How alert figures and hostile text read: pure functions of alerts.render."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from alerts.identity import FALLBACK_DOMAIN, domain_of, thread_headers
from alerts.remedy import Cut, Remedy, TopUp
from alerts.render import figures as f
from alerts.render.lines import Leg, danger, remedy_lines
from alerts.render.summary import one_line

T = datetime(2026, 12, 1, 13, 2, 11, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "tick", "text"),
    [
        (3063.7912, 0.01, "3,063.79"),
        (3063.7912, 0.1, "3,063.8"),
        (99.1111, 0.5, "99.0"),  # to the nearest tick
        (0.123456, 0.0001, "0.1235"),
        (89_640.55, None, "89,641"),  # unknown tick: five significant figures
        (0.0123456, None, "0.012346"),
        (None, 0.01, "n/a"),
    ],
)
def test_prices_read_at_the_market_tick(value: float | None, tick: float | None, text: str) -> None:
    assert f.price(value, tick) == text


def test_amounts_money_and_distances() -> None:
    assert f.amount(2.97, 0.01) == "2.97" and f.amount(29.7, 0.1) == "29.7" and f.amount(1.5) == "1.5"
    assert f.money_up(529.3, "USDT") == "530 USDT" and f.money_up(4.191, "USDT") == "4.20 USDT"
    assert f.money_up(12_301, "USDT") == "12,400 USDT"  # enough, never less than needed
    assert f.about(9_347.2, "USDT") == "≈ 9,350 USDT" and f.about(28.1, "USDT") == "≈ 28.10 USDT"
    assert [f.percent(x) for x in (0.0004, 0.009, 0.027, -0.0009, 0.14)] == [
        "0.04 %",
        "0.9 %",
        "2.7 %",
        "0.09 %",
        "14 %",
    ]
    assert [f.chance(x) for x in (0.41, 0.004, 0.0, 0.996)] == ["41 %", "< 1 %", "0 %", "> 99 %"]
    assert [f.duration(s) for s in (4, 720, 3900, 200_000)] == ["4 s", "12 min", "1 h 05 min", "2 d 7 h"]
    assert f.as_of(T - timedelta(seconds=4), T) == "as of 13:02:07 UTC (data age 4 s)"
    assert f.as_of(T - timedelta(days=1), T) == "as of 2026-11-30 13:02:11 UTC (data age 24 h 00 min)"


def test_symbols_are_short_where_unambiguous() -> None:
    assert f.short_symbol("BTC/USDT:USDT", "USDT") == "BTC"
    assert f.short_symbol("BTC/USDC:USDC", "USDT") == "BTC/USDC"
    assert f.short_symbol("ETH-USDT-SWAP", "USDT") == "ETH-USDT-SWAP"  # a venue id stays as it is
    assert f.quote_of("ETH/USDC:USDC", "USDT") == "USDC"


def test_the_danger_line_and_past_liquidation() -> None:
    leg = Leg("ETH/USDT:USDT", "long", "cross", 29.7, 0.1, 3090.12, 9177.6, 3063.79, "down", 0.0085, 0.28, 0.41, None)
    leg = Leg(**{**leg.__dict__, "price_tick": 0.01})
    assert danger(leg, "USDT", compact=True) == "ETH 0.9 % (0.3 σ) from liq 3,063.79 · 41 % in 24 h"
    assert (
        danger(leg, "USDT") == "ETH long 0.9 % (0.3 σ) from liquidation at 3,063.79 USDT (down) · 41 % chance in 24 h"
    )
    past = Leg(**{**leg.__dict__, "distance": -0.0009, "margin_mode": "isolated"})
    assert danger(past, "USDT", compact=True) == "ETH long (isolated) PAST LIQUIDATION at 3,063.79, 0.09 % beyond"


def test_remedy_lines_put_the_alternative_beside_the_cross_top_up_and_cap_the_cuts() -> None:
    cuts = tuple(Cut(f"C{i}/USDT:USDT", "long", 10.0, 1.0, 1000.0 - i, 0.1, 1.0) for i in range(5))
    remedy = Remedy(
        "USDT",
        1.5,
        topups=(
            TopUp(120.0, True, "ETH/USDT:USDT", "long", 1.9, 2950.0, "down"),
            TopUp(530.0, False, "C0/USDT:USDT", "long", 1.5, 2901.2, "down"),
        ),
        cuts=cuts,
        health_after_cuts=1.5,
        distance_after_cuts=0.061,
    )
    isolated, cross, alternative = remedy_lines(remedy, {}, "USDT")
    assert isolated.startswith("add 120 USDT to the isolated margin of ETH long → health 1.90, ETH liq moves to")
    assert cross.startswith("add 530 USDT → health 1.50, C0 liq moves to 2,901.2 USDT")
    assert alternative == (
        "or reduce C0 long by 1.0 C0 (10 contracts, ≈ 1,000 USDT), "
        "C1 long by 1.0 C1 (10 contracts, ≈ 999.00 USDT), C2 long by 1.0 C2 (10 contracts, ≈ 998.00 USDT) "
        "and 2 more positions (≈ 1,990 USDT) → health 1.50, nearest liq 6.1 % away"
    )


def test_hostile_text_becomes_one_line() -> None:
    page = "<html><head><title>503 Service Temporarily Unavailable</title></head><body><h1>503</h1></body></html>"
    assert one_line(f"exchange unavailable: GET /api 503 {page}") == (
        "exchange unavailable: GET /api 503 Service Temporarily Unavailable"
    )
    assert one_line("since 2026-12-01T13:02:11.123456+01:00; x") == "since 2026-12-01 12:02:11 UTC; x"
    assert one_line("refused: key can withdraw: refused") == "refused: key can withdraw"
    assert one_line("a\r\nb\x1b[31mc\u202ed") == "a bc d"
    assert one_line("y" * 300).endswith("…") and len(one_line("y" * 300)) == 160
    assert one_line("limit < 5 & margin > 2") == "limit < 5 & margin > 2"  # not a tag: kept, escaped later


def test_message_ids_name_a_real_domain_and_replies_point_at_the_first() -> None:
    assert domain_of("marginwatch@example.org") == "example.org"
    assert domain_of("marginwatch@localhost") == FALLBACK_DOMAIN and domain_of(None) == FALLBACK_DOMAIN
    assert thread_headers("<a@x.org>", None) == {"Message-ID": "<a@x.org>"}
    assert thread_headers("<a@x.org>", "<a@x.org>") == {"Message-ID": "<a@x.org>"}
    assert thread_headers("<b@x.org>", "<a@x.org>") == {
        "Message-ID": "<b@x.org>",
        "In-Reply-To": "<a@x.org>",
        "References": "<a@x.org>",
    }
