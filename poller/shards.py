"""--shard i/n: a stable split of the accounts between pollers started by hand."""

from __future__ import annotations

import zlib


def parse_shard(text: str | None) -> tuple[int, int] | None:
    """ "i/n" (1 <= i <= n) -> (i, n)."""
    if not text:
        return None
    try:
        i, n = (int(part) for part in text.split("/"))
    except ValueError:
        raise ValueError(f"--shard: expected i/n like 1/2, got {text!r}") from None
    if not 1 <= i <= n:
        raise ValueError(f"--shard: need 1 <= i <= n, got {text!r}")
    return i, n


def in_shard(name: str, shard: tuple[int, int] | None) -> bool:
    """Stable across processes and restarts (crc32, not Python's salted hash)."""
    if shard is None:
        return True
    i, n = shard
    return zlib.crc32(name.encode()) % n == i - 1
