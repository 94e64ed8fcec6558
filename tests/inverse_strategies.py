"""Hypothesis strategies: random coin-margined (inverse) snapshots in the snapshot format.
Money, tier bounds and maintenance amounts in BTC; contract sizes in USD."""

from __future__ import annotations

from hypothesis import strategies as st

INVERSE_VENUES = ["binancecoinm", "bybit", "okx", "kraken"]
INVERSE_SYMBOLS = ["BTC/USD:BTC", "BTC/USD:BTC-261225", "BTC/USD:BTC-270326"]


@st.composite
def coin_tier_tables(draw: st.DrawFn) -> list[dict]:
    """Rising floors (BTC) and rates; maintenance amounts left to be derived."""
    count = draw(st.integers(1, 5))
    floors = sorted(set(draw(st.lists(st.floats(0.05, 500.0), min_size=count - 1, max_size=count - 1))))
    floors = [0.0, *floors]
    rates = sorted(draw(st.lists(st.floats(0.002, 0.2), min_size=len(floors), max_size=len(floors), unique=True)))
    return [{"min_notional": f, "maintenance_margin_rate": r} for f, r in zip(floors, rates, strict=True)]


@st.composite
def coin_flat_rates(draw: st.DrawFn) -> dict:
    return {
        "maintenance_margin_rate": draw(st.floats(0.002, 0.2)),
        "maintenance_amount": draw(st.sampled_from([0.0, 0.01, 0.5, 5.0])),
    }


@st.composite
def inverse_snapshots(
    draw: st.DrawFn, venues: list[str] = INVERSE_VENUES, modes: tuple[str, ...] = ("cross", "isolated")
) -> dict:
    venue = draw(st.sampled_from(venues))
    marks = {s: draw(st.floats(100.0, 2e5)) for s in INVERSE_SYMBOLS}
    tables = {
        s: draw(st.one_of(coin_tier_tables().map(lambda t: {"tiers": t}), coin_flat_rates())) for s in INVERSE_SYMBOLS
    }
    positions = []
    for _ in range(draw(st.integers(1, 5))):
        symbol = draw(st.sampled_from(INVERSE_SYMBOLS))
        mark = marks[symbol]
        coins = draw(st.floats(0.01, 300.0))  # notional in BTC at mark
        contract_size = draw(st.sampled_from([100.0, 10.0, 1.0]))
        mode = draw(st.sampled_from(modes))
        positions.append(
            {
                "symbol": symbol,
                "contract_type": "inverse",
                "settle": "BTC",
                "side": draw(st.sampled_from(["long", "short"])),
                "contracts": coins * mark / contract_size,
                "contract_size": contract_size,
                "entry_price": mark * (1 + draw(st.floats(-0.3, 0.3))),
                "mark_price": mark,
                "margin_mode": mode,
                "isolated_margin": coins * draw(st.floats(0.01, 1.0)) if mode == "isolated" else None,
                "leverage": draw(st.sampled_from([None, 5, 10, 20])),
                **tables[symbol],
            }
        )
    return {
        "exchange": venue,
        "account": "miner",
        "collateral": "BTC",
        "wallet_balance": draw(st.one_of(st.just(0.0), st.floats(1e-9, 100.0))),  # no denormals: the parser's bounds
        "taker_fee": draw(st.sampled_from([None, 0.0, 0.0005, 0.00075])),
        "positions": positions,
    }
