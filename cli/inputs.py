"""Reading user-supplied files safely: one clear line for every kind of bad input."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from margin.snapshot import Snapshot, SnapshotError, parse_snapshot

# A snapshot of a large account is a few hundred kB; anything far beyond is not one.
MAX_SNAPSHOT_BYTES = 20 * 1024 * 1024


class InputError(ValueError):
    """Bad input: the message names the file and what is wrong, in one line."""


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not a number in JSON")


def load_json(path: Path, max_bytes: int = MAX_SNAPSHOT_BYTES) -> Any:
    """Decode a JSON file, refusing NaN/Infinity, huge files and pathological nesting."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if not path.is_file():
        raise InputError(f"{path}: not a regular file")
    if size > max_bytes:
        raise InputError(f"{path}: {size:,} bytes is too large (limit {max_bytes:,})")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read as UTF-8 text ({exc})") from None
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
    except ValueError as exc:
        raise InputError(f"{path}: not valid JSON ({exc})") from None
    except RecursionError:
        raise InputError(f"{path}: JSON nested too deeply") from None


def load_snapshot(path: Path) -> Snapshot:
    """Read and validate a snapshot file; InputError names the file and the field."""
    doc = load_json(path)
    try:
        return parse_snapshot(doc)
    except SnapshotError as exc:
        raise InputError(f"{path}: {exc}") from None
    except RecursionError:
        raise InputError(f"{path}: JSON nested too deeply") from None
