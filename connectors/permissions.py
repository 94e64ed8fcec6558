"""What an API key may do, from each venue's key-permission endpoint.

A key that can withdraw is refused (the account is not polled); a key that can trade is
polled with a standing warning; marginwatch needs read access only.

Sources: Binance `GET /sapi/v1/account/apiRestrictions` (enableWithdrawals,
enableFutures, enableSpotAndMarginTrading, enableMargin, enableVanillaOptions,
enablePortfolioMarginTrading); Bybit `GET /v5/user/query-api` (readOnly 0/1, permissions
by group, "Withdraw" in the Wallet group); OKX `GET /api/v5/account/config` (perm:
"read_only", "trade", "withdraw", comma-separated).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from connectors.errors import DataError
from connectors.fields import mapping


@dataclass(frozen=True)
class KeyPermissions:
    """A key's rights. `verified` is False when the venue offers no way to ask."""

    can_trade: bool
    can_withdraw: bool
    verified: bool = True
    detail: str = ""

    @property
    def status(self) -> str:
        """ "refused", "trade" (polled with a warning), "read-only" or "unverified"."""
        if self.can_withdraw:
            return "refused"
        if not self.verified:
            return "unverified"
        return "trade" if self.can_trade else "read-only"

    @property
    def message(self) -> str:
        return {
            "refused": "key can withdraw funds: refused, the account is not polled; create a read-only key",
            "trade": "key can trade: polled, but a read-only key is safer",
            "read-only": "read-only key",
            "unverified": "the venue offers no way to check this key's permissions",
        }[self.status] + (f" ({self.detail})" if self.detail else "")


def _flag(obj: Mapping[str, Any], key: str, path: str) -> bool:
    value = obj.get(key, False)
    if isinstance(value, bool):
        return value
    if value in (0, 1, "0", "1", "true", "false"):
        return value in (1, "1", "true")
    raise DataError(f"expected a boolean, got {value!r}", f"{path}.{key}")


def binance_permissions(payload: Any) -> KeyPermissions:
    doc = mapping(payload, "apiRestrictions")
    trading = [
        k
        for k in (
            "enableFutures",
            "enableSpotAndMarginTrading",
            "enableMargin",
            "enableVanillaOptions",
            "enablePortfolioMarginTrading",
        )
        if _flag(doc, k, "apiRestrictions")
    ]
    return KeyPermissions(
        can_trade=bool(trading),
        can_withdraw=_flag(doc, "enableWithdrawals", "apiRestrictions"),
        detail=", ".join(trading),
    )


def bybit_permissions(payload: Any) -> KeyPermissions:
    result = mapping(mapping(payload, "query-api").get("result"), "query-api.result")
    read_only = _flag(result, "readOnly", "query-api.result")
    groups = mapping(result.get("permissions") or {}, "query-api.result.permissions")
    granted = {str(g): [str(p) for p in (v or [])] for g, v in groups.items()}
    withdraw = any("Withdraw" in perms for perms in granted.values())
    trading = [
        g
        for g, perms in granted.items()
        if perms and g in ("ContractTrade", "Spot", "Derivatives", "Options", "Exchange", "CopyTrading", "BlockTrade")
    ]
    return KeyPermissions(can_trade=not read_only and bool(trading), can_withdraw=withdraw, detail=", ".join(trading))


def okx_permissions(payload: Any) -> KeyPermissions:
    data = mapping(payload, "account/config").get("data")
    if not isinstance(data, list) or not data:
        raise DataError("expected a non-empty list", "account/config.data")
    perm = mapping(data[0], "account/config.data[0]").get("perm")
    if not isinstance(perm, str):
        raise DataError(f"expected a string, got {perm!r}", "account/config.data[0].perm")
    rights = {p.strip() for p in perm.split(",") if p.strip()}
    return KeyPermissions(can_trade="trade" in rights, can_withdraw="withdraw" in rights, detail=perm)


UNVERIFIED = KeyPermissions(can_trade=False, can_withdraw=False, verified=False)
