"""Hypothesis strategies: random but realistic snapshots in the snapshot format."""

from __future__ import annotations

from hypothesis import strategies as st

VENUES = ["binanceusdm", "bybit", "okx", "gate", "hyperliquid", "kraken"]
SYMBOLS = ["BTC/USDT:USDT", "ETH/USDT:USDT", "SOL/USDT:USDT"]


@st.composite
def tier_tables(draw: st.DrawFn) -> list[dict]:
    """A tier table with rising floors and rates; maintenance amounts left to be derived."""
    count = draw(st.integers(1, 5))
    floors = sorted(set(draw(st.lists(st.floats(500, 5e6), min_size=count - 1, max_size=count - 1))))
    floors = [0.0, *floors]
    rates = sorted(draw(st.lists(st.floats(0.002, 0.2), min_size=len(floors), max_size=len(floors), unique=True)))
    return [
        {
            "min_notional": floor,
            "max_notional": floors[i + 1] if i + 1 < len(floors) else None,
            "maintenance_margin_rate": rate,
        }
        for i, (floor, rate) in enumerate(zip(floors, rates, strict=True))
    ]


@st.composite
def flat_rates(draw: st.DrawFn) -> dict:
    """A flat rate with a maintenance amount, which may exceed rate x notional."""
    return {
        "maintenance_margin_rate": draw(st.floats(0.002, 0.2)),
        "maintenance_amount": draw(st.sampled_from([0.0, 50.0, 1_000.0, 40_000.0])),
    }


@st.composite
def snapshots(draw: st.DrawFn, venues: list[str] = VENUES, modes: tuple[str, ...] = ("cross", "isolated")) -> dict:
    venue = draw(st.sampled_from(venues))
    marks = {s: draw(st.floats(1.0, 1e5)) for s in SYMBOLS}
    tables = {s: draw(st.one_of(tier_tables().map(lambda t: {"tiers": t}), flat_rates())) for s in SYMBOLS}
    positions = []
    for _ in range(draw(st.integers(1, 5))):
        symbol = draw(st.sampled_from(SYMBOLS))
        mark = marks[symbol]
        notional = draw(st.floats(50.0, 2e6))
        contract_size = draw(st.sampled_from([1.0, 0.1, 0.01]))
        mode = draw(st.sampled_from(modes))
        positions.append(
            {
                "symbol": symbol,
                "side": draw(st.sampled_from(["long", "short"])),
                "contracts": notional / mark / contract_size,
                "contract_size": contract_size,
                "entry_price": mark * (1 + draw(st.floats(-0.3, 0.3))),
                "mark_price": mark,
                "margin_mode": mode,
                "isolated_margin": notional * draw(st.floats(0.01, 1.0)) if mode == "isolated" else None,
                "leverage": draw(st.sampled_from([None, 5, 10, 20])),
                **tables[symbol],
            }
        )
    return {
        "exchange": venue,
        "account": "prop",
        "collateral": "USDT",
        # 0, or within the format's bounds (margin.snapshot.SNAPSHOT_BOUNDS: no denormal wallet)
        "wallet_balance": draw(st.just(0.0) | st.floats(1e-12, 1e6)),
        "taker_fee": draw(st.sampled_from([None, 0.0, 0.0005, 0.0006])),
        "positions": positions,
    }
