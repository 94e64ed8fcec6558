"""Our connectors, with ccxt running for real, against the exchange simulator on 127.0.0.1:
normalised numbers equal what the scenario implies, and each failure becomes ours."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from config.settings import parse_config
from connectors.account import AccountConnector
from connectors.errors import AuthError, KeyRefused, TemporaryError
from margin.report import risk_report
from margin.snapshot import parse_snapshot
from simulator import ExchangeSimulator
from simulator.hyperliquid_margin import clearinghouse
from tests.helpers import SIM_KEYS, running_simulator

FIXTURE = Path(__file__).parent / "fixtures" / "simulator" / "scenario.json"
HYPERLIQUID = json.loads((FIXTURE.parent / "hyperliquid.json").read_text())
HL_ADDRESS = HYPERLIQUID["accounts"][0]["wallet_address"]


PERMISSION_KEYS = {  # (venue, can trade, can withdraw) -> an extra account's key
    (venue, trade, withdraw): f"{venue}-{'t' if trade else 'r'}{'w' if withdraw else ''}"
    for venue in ("binanceusdm", "bybit", "okx")
    for trade, withdraw in ((True, False), (False, True))
}


def scenario() -> dict[str, Any]:
    """The simulator fixture with its Hyperliquid venue, the OKX key made read-only, and on
    every keyed venue a trade-enabled key and a withdraw-enabled key (empty accounts) for
    the permission checks."""
    doc = json.loads(FIXTURE.read_text())
    doc["markets"].update(HYPERLIQUID["markets"])
    doc["accounts"] += HYPERLIQUID["accounts"]
    okx = next(a for a in doc["accounts"] if a["venue"] == "okx")
    okx["permissions"] = {"trade": False, "withdraw": False}
    for (venue, trade, withdraw), key in PERMISSION_KEYS.items():
        doc["accounts"].append(
            {
                "venue": venue,
                "api_key": key,
                "secret": key + "-secret",
                "passphrase": key + "-pass" if venue == "okx" else None,
                "permissions": {"trade": trade, "withdraw": withdraw},
                "collateral": "USDT",
                "wallet_balance": 100.0,
                "positions": [],
            }
        )
    return doc


SCENARIO = scenario()
CREDS = {**SIM_KEYS, "hyperliquid": {"walletAddress": HL_ADDRESS}}
POSITIONS_PATH = {
    "binanceusdm": "/fapi/v3/positionRisk",
    "bybit": "/v5/position/list",
    "okx": "/api/v5/account/positions",
}


@pytest.fixture(scope="module")
def sim() -> Iterator[ExchangeSimulator]:
    with running_simulator(SCENARIO) as simulator:
        yield simulator


pytestmark = pytest.mark.usefixtures("fresh_sim")


def connector(
    sim: ExchangeSimulator, venue: str, creds: dict[str, str] | None = None, budget: float = 5.0
) -> AccountConnector:
    creds = creds or CREDS[venue]
    account = {
        "name": f"{venue}-test",
        "exchange": venue,
        "key_env": "K",
        "secret_env": "S",
        "base_url": sim.base_url,
        "timeout_seconds": budget,
    }
    if venue == "okx":
        account["passphrase_env"] = "P"
    if venue == "hyperliquid":
        account = {**account, "key_env": None, "secret_env": None, "wallet_address_env": "W", "collateral": "USDC"}
    config = parse_config({"accounts": [account]})
    return AccountConnector(config.accounts[0], creds)


def fetch(sim: ExchangeSimulator, venue: str, **kwargs: Any) -> dict[str, Any]:
    async def main() -> dict[str, Any]:
        conn = connector(sim, venue, **kwargs)
        try:
            return await conn.fetch_snapshot()
        finally:
            await conn.close()

    return asyncio.run(main())


def _account(venue: str) -> dict[str, Any]:
    if venue == "hyperliquid":
        return HYPERLIQUID["accounts"][0]
    return next(a for a in SCENARIO["accounts"] if a.get("api_key") == CREDS[venue]["apiKey"])


@pytest.mark.parametrize("venue", ["binanceusdm", "bybit", "okx", "hyperliquid"])
def test_snapshot_equals_what_the_scenario_implies(sim: ExchangeSimulator, venue: str) -> None:
    doc = fetch(sim, venue)
    snapshot = parse_snapshot(doc)
    account = _account(venue)
    markets = {m["symbol"]: m for m in SCENARIO["markets"][venue]}
    assert snapshot.exchange == venue and snapshot.collateral == account.get("collateral", "USDT")
    assert snapshot.wallet_balance == pytest.approx(account["wallet_balance"], rel=1e-9)
    got = {(p.symbol, p.side): p for p in snapshot.positions}
    assert set(got) == {(p["symbol"], p["side"]) for p in account["positions"]}
    for expected in account["positions"]:
        pos = got[(expected["symbol"], expected["side"])]
        assert pos.contracts == pytest.approx(expected["contracts"])
        assert pos.contract_size == markets[expected["symbol"]].get("contract_size", 1.0)
        assert pos.entry_price == pytest.approx(expected["entry_price"])
        assert pos.mark_price == pytest.approx(markets[expected["symbol"]]["mark_price"])
        assert pos.margin_mode == expected["margin_mode"]
        if expected["margin_mode"] == "isolated":
            assert pos.isolated_margin == pytest.approx(expected["isolated_margin"])
        assert pos.exchange_liquidation_price is not None  # the exchange's own, carried over
    # our engine on the normalised snapshot agrees with what the exchange reports
    report = risk_report(snapshot)
    for p in report["positions"]:
        assert p["liquidation_price"] == pytest.approx(p["exchange_liquidation_price"], rel=1e-6)
        assert p["disagrees_with_exchange"] is False
    assert all(p.get("info") for p in doc["positions"])  # raw payload kept for audit


def test_hyperliquid_engine_agrees_with_the_venues_own_figures(sim: ExchangeSimulator) -> None:
    """The engine on the connector's snapshot against what the simulated Hyperliquid
    computes by its published formulas (simulator/hyperliquid_margin.py, not the engine):
    account value, cross maintenance and every liquidation price, at the scenario's marks
    and after they move. The connector is handed a private key too: it reads with the
    wallet address alone, and nothing is sent to /exchange."""
    creds = {**CREDS["hyperliquid"], "privateKey": "0x" + "11" * 32}
    moves = {"BTC/USDC:USDC": 64000.0, "ETH/USDC:USDC": 4350.0, "HYPE/USDC:USDC": 39.2}

    def venue_figures() -> Any:
        return sim.state.figures(sim.state.account("hyperliquid", HL_ADDRESS))

    async def two_polls() -> list[tuple[dict[str, Any], Any]]:
        conn = connector(sim, "hyperliquid", creds)
        try:
            first = (await conn.fetch_snapshot(), venue_figures())
            for symbol, price in moves.items():
                sim.set_mark("hyperliquid", symbol, price)
            return [first, (await conn.fetch_snapshot(), venue_figures())]
        finally:
            await conn.close()

    before = len(sim.requests)
    polls = asyncio.run(two_polls())
    assert all(path.startswith("/info:") for _, _, path in sim.requests[before:])
    for doc, fig in polls:
        report = risk_report(parse_snapshot(doc))
        house = clearinghouse(fig)
        # the engine's account is the cross pool: crossMarginSummary; with each isolated
        # position's equity it is the whole account: marginSummary
        assert report["account"]["equity"] == pytest.approx(house.cross_margin_summary.account_value, abs=1e-5)
        isolated = sum(p["equity"] for p in report["positions"] if p["margin_mode"] == "isolated")
        assert report["account"]["equity"] + isolated == pytest.approx(house.margin_summary.account_value, abs=1e-5)
        cross = [p for p in report["positions"] if p["margin_mode"] == "cross"]
        assert sum(p["maintenance_margin"] for p in cross) == pytest.approx(
            house.cross_maintenance_margin_used, rel=1e-9
        )
        venue = {p.spec.symbol: p for p in fig.positions}
        assert {p["symbol"]: p["margin_mode"] for p in report["positions"]} == {
            s: v.spec.margin_mode for s, v in venue.items()
        }
        for p in report["positions"]:
            assert p["exchange_liquidation_price"] == pytest.approx(venue[p["symbol"]].liquidation_price, rel=1e-9)
            assert p["liquidation_price"] == pytest.approx(p["exchange_liquidation_price"], rel=1e-6)
            assert p["disagrees_with_exchange"] is False


@pytest.mark.parametrize("venue", ["binanceusdm", "bybit", "okx"])
def test_wrong_secret_is_an_authentication_error_of_ours(sim: ExchangeSimulator, venue: str) -> None:
    with pytest.raises(AuthError) as caught:
        fetch(sim, venue, creds={**CREDS[venue], "secret": "not-the-secret"})
    assert caught.value.kind == "permanent"
    assert CREDS[venue]["apiKey"] not in caught.value.message  # Bybit echoes it: redacted


def _creds(venue: str, key: str) -> dict[str, str]:
    creds = {"apiKey": key, "secret": key + "-secret"}
    if venue == "okx":
        creds["password"] = key + "-pass"
    return creds


PERMISSION_PATH = {
    "binanceusdm": "/sapi/v1/account/apiRestrictions",
    "bybit": "/v5/user/query-api",
    "okx": "/api/v5/account/config",
}


@pytest.mark.parametrize("venue", ["binanceusdm", "bybit", "okx"])
def test_withdraw_enabled_key_is_refused(sim: ExchangeSimulator, venue: str) -> None:
    before = len(sim.requests)
    with pytest.raises(KeyRefused, match="can withdraw"):
        fetch(sim, venue, creds=_creds(venue, PERMISSION_KEYS[(venue, False, True)]))
    asked = [path for _, _, path in sim.requests[before:]]
    assert PERMISSION_PATH[venue] in asked
    assert POSITIONS_PATH[venue] not in asked  # refused before anything is read


@pytest.mark.parametrize("venue", ["binanceusdm", "bybit", "okx"])
def test_trade_enabled_key_is_polled_with_a_warning(sim: ExchangeSimulator, venue: str) -> None:
    async def main() -> tuple[str, str, int]:
        conn = connector(sim, venue, creds=_creds(venue, PERMISSION_KEYS[(venue, True, False)]))
        try:
            doc = await conn.fetch_snapshot()
            return conn.permissions.status, conn.permissions.message, len(doc["positions"])
        finally:
            await conn.close()

    status, message, positions = asyncio.run(main())
    assert status == "trade" and "read-only key is safer" in message and positions == 0


@pytest.mark.parametrize("venue", ["binanceusdm", "okx"])
def test_stale_timestamp_is_retried_after_a_time_sync(sim: ExchangeSimulator, venue: str) -> None:
    before = len(sim.requests)
    sim.add_fault(venue, POSITIONS_PATH[venue], "stale_timestamp", count=1)
    doc = fetch(sim, venue)
    assert doc["positions"]
    paths = [path for v, _, path in sim.requests[before:] if v == venue]
    refused = paths.index(POSITIONS_PATH[venue])
    assert any("time" in p for p in paths[refused + 1 :])  # resynced the clock...
    assert POSITIONS_PATH[venue] in paths[refused + 1 :]  # ...then asked again


@pytest.mark.parametrize("kind", ["http429", "http429_retry_after", "http503", "malformed_json"])
def test_temporary_faults_are_backed_off_and_retried(sim: ExchangeSimulator, kind: str) -> None:
    before = len(sim.requests)
    sim.add_fault("binanceusdm", POSITIONS_PATH["binanceusdm"], kind, count=2, seconds=1)
    started = time.monotonic()
    doc = fetch(sim, "binanceusdm")
    elapsed = time.monotonic() - started
    assert doc["positions"]
    asked = [p for v, _, p in sim.requests[before:] if p == POSITIONS_PATH["binanceusdm"]]
    assert len(asked) == 3  # two refusals, then the answer
    assert elapsed >= (1.0 if kind == "http429_retry_after" else 0.25)  # it waited between


def test_a_fault_that_outlasts_the_budget_is_a_temporary_error(sim: ExchangeSimulator) -> None:
    sim.add_fault("bybit", POSITIONS_PATH["bybit"], "http502")
    started = time.monotonic()
    with pytest.raises(TemporaryError):
        fetch(sim, "bybit", budget=1.5)
    assert time.monotonic() - started < 3.0
