"""Fuzzing the normalisation layer: generated exchange payloads (well-formed, broken,
wrongly typed) give a snapshot or a DataError naming the field, never another exception."""

from __future__ import annotations

import math
import os
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.errors import DataError
from connectors.normalise import AccountData
from connectors.venues import normalise
from margin.snapshot import parse_snapshot

EXAMPLES = int(os.environ.get("MARGINWATCH_FUZZ_EXAMPLES", "1200"))

junk = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
    st.just(""),
    st.just("NaN"),
    st.just("-1"),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=4), st.integers(), max_size=2),
)
numberish = st.one_of(st.floats(0.001, 1e6).map(str), st.floats(0.001, 1e6))


@st.composite
def maybe(draw: st.DrawFn, value: st.SearchStrategy[Any]) -> Any:
    """The right thing 19 times in 20; junk (wrong type, empty, null, non-finite) else."""
    return draw(junk) if draw(st.integers(0, 19)) == 0 else draw(value)


@st.composite
def position(draw: st.DrawFn, venue: str) -> dict[str, Any]:
    info: dict[str, Any] = {}
    if venue == "binanceusdm":
        info = {"isolatedWallet": draw(maybe(numberish)), "liquidationPrice": draw(maybe(numberish))}
    elif venue == "bybit":
        info = {
            "tradeMode": draw(maybe(st.sampled_from(["0", "1", 0, 1]))),
            "positionBalance": draw(maybe(numberish)),
            "liqPrice": draw(maybe(numberish)),
        }
    elif venue == "okx":
        info = {
            "mgnMode": draw(maybe(st.sampled_from(["cross", "isolated"]))),
            "margin": draw(maybe(numberish)),
            "liqPx": draw(maybe(numberish)),
            "upl": draw(maybe(numberish)),
        }
    doc = {
        "symbol": draw(
            maybe(st.sampled_from(["BTC/USDT:USDT"] * 4 + ["ETH/USDT:USDT"] * 4 + ["BTC/USD:BTC"]))
        ),  # an inverse one now and then
        "side": draw(maybe(st.sampled_from(["long", "short"]))),
        "contracts": draw(maybe(numberish)),
        "contractSize": draw(maybe(numberish)),
        "entryPrice": draw(maybe(numberish)),
        "markPrice": draw(maybe(numberish)),
        "marginMode": draw(maybe(st.sampled_from(["cross", "isolated"]))),
        "collateral": draw(maybe(numberish)),
        "leverage": draw(maybe(numberish)),
        "liquidationPrice": draw(maybe(numberish)),
        "maintenanceMarginPercentage": draw(maybe(st.floats(0.001, 0.2))),
        "info": draw(maybe(st.just(info))),
    }
    for key in draw(st.lists(st.sampled_from(sorted(doc)), max_size=1)):
        doc.pop(key, None)  # fields missing altogether
    return doc


@st.composite
def balance(draw: st.DrawFn, venue: str) -> dict[str, Any]:
    wallet = draw(maybe(numberish))
    info: Any = {
        "binanceusdm": {"assets": [{"asset": "USDT", "crossWalletBalance": wallet}]},
        "bybit": {"result": {"list": [{"coin": [{"coin": "USDT", "walletBalance": wallet}]}]}},
        "okx": {"data": [{"details": [{"ccy": "USDT", "eq": wallet, "isoEq": draw(maybe(numberish))}]}]},
        "hyperliquid": {"crossMarginSummary": {"accountValue": wallet}},
    }.get(venue, {})
    return {"info": draw(maybe(st.just(info))), "USDT": draw(maybe(st.just({"total": wallet})))}


@st.composite
def account_data(draw: st.DrawFn) -> tuple[str, AccountData]:
    venue = draw(st.sampled_from(["binanceusdm", "bybit", "okx", "hyperliquid", "kraken"]))
    tiers = draw(
        st.one_of(
            st.just({}),
            st.fixed_dictionaries(
                {
                    "BTC/USDT:USDT": st.lists(
                        st.fixed_dictionaries(
                            {
                                "minNotional": maybe(numberish),
                                "maxNotional": maybe(numberish),
                                "maintenanceMarginRate": maybe(st.floats(0.001, 0.2)),
                                "maxLeverage": maybe(numberish),
                                "info": st.just({}),
                            }
                        ),
                        min_size=1,
                        max_size=3,
                    )
                }
            ),
        )
    )
    return venue, AccountData(
        balance=draw(balance(venue)),
        positions=draw(maybe(st.lists(position(venue), max_size=4))),
        tiers=tiers,
    )


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(account_data())
def test_a_payload_becomes_a_snapshot_or_a_named_data_error(case: tuple[str, AccountData]) -> None:
    venue, data = case
    try:
        doc = normalise(venue, "fuzz", "USDT", data)
    except DataError as exc:
        assert exc.path, f"no field named in {exc}"  # the error says where
        return
    snapshot = parse_snapshot(doc)  # what comes out is always a valid snapshot
    assert math.isfinite(snapshot.wallet_balance)
    assert all(p.size > 0 and p.mark_price > 0 for p in snapshot.positions)
