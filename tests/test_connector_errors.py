"""The one place that turns ccxt errors into ours, and the retry policy."""

from __future__ import annotations

import asyncio
import random
import time

import ccxt
import pytest

from connectors.errors import (
    AuthError,
    DataError,
    RetryPolicy,
    StaleTimestamp,
    TemporaryError,
    classify,
    with_retries,
)
from connectors.permissions import binance_permissions, bybit_permissions, okx_permissions


@pytest.mark.parametrize(
    ("raised", "kind", "ours"),
    [
        (ccxt.RateLimitExceeded("429"), "temporary", TemporaryError),
        (ccxt.DDoSProtection("429"), "temporary", TemporaryError),
        (ccxt.RequestTimeout("slow"), "temporary", TemporaryError),
        (ccxt.ExchangeNotAvailable("503"), "temporary", TemporaryError),
        (ccxt.OnMaintenance("maint"), "temporary", TemporaryError),
        (ccxt.BadResponse("garbled"), "temporary", TemporaryError),
        (ccxt.InvalidNonce("-1021"), "temporary", StaleTimestamp),
        (ccxt.AuthenticationError("-1022"), "permanent", AuthError),
        (ccxt.PermissionDenied("-2015"), "permanent", AuthError),
        (ccxt.ExchangeError("unknown code 99999"), "temporary", TemporaryError),
        (KeyError("markPrice"), "data", DataError),
        (ConnectionResetError("reset"), "temporary", TemporaryError),
    ],
)
def test_classification(raised: Exception, kind: str, ours: type) -> None:
    error = classify(raised)
    assert error.kind == kind and isinstance(error, ours)


def test_signed_urls_are_cut_from_messages() -> None:
    raw = ccxt.AuthenticationError(
        "binanceusdm GET https://fapi.binance.com/fapi/v3/account?timestamp=1&signature=deadbeef 400 "
        '{"code":-1022,"msg":"Signature for this request is not valid."}'
    )
    message = classify(raw).message
    assert "deadbeef" not in message and "signature=" not in message
    assert "-1022" in message


def test_backoff_grows_with_jitter_and_honours_retry_after() -> None:
    policy = RetryPolicy(base_seconds=0.25, cap_seconds=4.0)
    rng = random.Random(1)
    for attempt, ceiling in [(0, 0.25), (1, 0.5), (3, 2.0), (8, 4.0)]:
        waits = {policy.delay(attempt, rng=rng) for _ in range(50)}
        assert all(ceiling / 2 <= w <= ceiling for w in waits) and len(waits) > 1
    assert policy.delay(0, retry_after=3.0, rng=rng) == 3.0


def test_retries_until_success_within_the_budget() -> None:
    calls = []

    async def flaky() -> str:
        calls.append(time.monotonic())
        if len(calls) < 3:
            raise ccxt.RateLimitExceeded("429")
        return "ok"

    result = asyncio.run(
        with_retries(flaky, deadline=time.monotonic() + 5, policy=RetryPolicy(base_seconds=0.01, cap_seconds=0.05))
    )
    assert result == "ok" and len(calls) == 3
    assert calls[2] - calls[1] >= 0.01  # it waited between attempts


def test_gives_up_at_the_deadline_and_never_retries_permanent_errors() -> None:
    attempts = 0
    now = [0.0]  # the budget's clock: each attempt costs 0.1 s of it, however fast the machine

    async def always_down() -> None:
        nonlocal attempts
        attempts += 1
        now[0] += 0.1
        raise ccxt.ExchangeNotAvailable("502")

    with pytest.raises(TemporaryError):
        policy = RetryPolicy(base_seconds=0.02, cap_seconds=0.05)  # waits of 0.01-0.05 s
        asyncio.run(with_retries(always_down, deadline=1.0, policy=policy, clock=lambda: now[0]))
    # the 10th attempt ends at 1.0: any wait would pass the deadline, so it gives up there
    assert attempts == 10

    attempts = 0

    async def wrong_key() -> None:
        nonlocal attempts
        attempts += 1
        raise ccxt.AuthenticationError("bad key")

    with pytest.raises(AuthError):
        asyncio.run(with_retries(wrong_key, deadline=time.monotonic() + 5))
    assert attempts == 1


def test_stale_timestamp_resyncs_the_clock_before_retrying() -> None:
    events = []

    async def call() -> str:
        events.append("call")
        if events.count("call") == 1:
            raise ccxt.InvalidNonce("-1021 timestamp outside recvWindow")
        return "ok"

    async def resync() -> None:
        events.append("resync")

    assert (
        asyncio.run(
            with_retries(
                call, deadline=time.monotonic() + 5, on_stale_timestamp=resync, policy=RetryPolicy(base_seconds=0.01)
            )
        )
        == "ok"
    )
    assert events == ["call", "resync", "call"]


def test_key_permission_payloads() -> None:
    binance = binance_permissions(
        {"enableReading": True, "enableWithdrawals": False, "enableFutures": True, "enableSpotAndMarginTrading": False}
    )
    assert binance.status == "trade" and "enableFutures" in binance.detail
    assert binance_permissions({"enableReading": True, "enableWithdrawals": True}).status == "refused"
    bybit = bybit_permissions(
        {
            "retCode": 0,
            "result": {
                "readOnly": 1,
                "permissions": {"ContractTrade": ["Order", "Position"], "Wallet": ["AccountTransfer"]},
            },
        }
    )
    assert bybit.status == "read-only"
    assert (
        bybit_permissions(
            {"result": {"readOnly": 0, "permissions": {"Wallet": ["AccountTransfer", "Withdraw"]}}}
        ).status
        == "refused"
    )
    assert okx_permissions({"code": "0", "data": [{"perm": "read_only,trade"}]}).status == "trade"
    assert okx_permissions({"code": "0", "data": [{"perm": "read_only"}]}).status == "read-only"
    with pytest.raises(DataError) as caught:
        okx_permissions({"code": "0", "data": [{}]})
    assert caught.value.path == "account/config.data[0].perm"
