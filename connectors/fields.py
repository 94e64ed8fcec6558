"""Reading fields out of exchange payloads: every failure names the field by its path."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from connectors.errors import DataError


def mapping(value: Any, path: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise DataError(f"expected an object, got {type(value).__name__}", path)
    return value


def number(obj: Mapping[str, Any], key: str, path: str, *, allow_empty: bool = False) -> float | None:
    """A finite number from a field the exchanges send as a number or a numeric string.
    Empty strings (Bybit's "no value") give None when `allow_empty`; else an error."""
    where = f"{path}.{key}" if path else key
    if key not in obj or obj[key] is None:
        if allow_empty:
            return None
        raise DataError("missing", where)
    raw = obj[key]
    if raw == "":
        if allow_empty:
            return None
        raise DataError("empty", where)
    if isinstance(raw, bool):
        raise DataError(f"expected a number, got {raw!r}", where)
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise DataError(f"expected a number, got {raw!r}", where) from None
    if not math.isfinite(value):
        raise DataError(f"expected a finite number, got {raw!r}", where)
    return value


def required(obj: Mapping[str, Any], key: str, path: str) -> float:
    value = number(obj, key, path)
    if value is None:  # number() raises instead; this keeps the type checker honest
        raise DataError("missing", f"{path}.{key}")
    return value


def optional(obj: Mapping[str, Any], key: str, path: str) -> float | None:
    return number(obj, key, path, allow_empty=True)


def text(obj: Mapping[str, Any], key: str, path: str) -> str:
    where = f"{path}.{key}" if path else key
    value = obj.get(key)
    if not isinstance(value, str) or not value:
        raise DataError(f"expected a non-empty string, got {value!r}", where)
    return value
