"""Reading user-supplied files safely: one clear line for every problem of bad input."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from config.reading import UnreadableFile, read_regular_file
from margin.snapshot import MAX_LISTED, Snapshot, SnapshotError, parse_snapshot

# A snapshot of a large account is a few hundred kB; anything far beyond is not one.
MAX_SNAPSHOT_BYTES = 20 * 1024 * 1024


class InputError(ValueError):
    """Bad input: the message names the file and what is wrong, one line a problem."""


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not a number in JSON")


def load_json(path: Path, max_bytes: int = MAX_SNAPSHOT_BYTES) -> Any:
    """Decode a JSON file, refusing anything but a regular file, huge files, NaN/Infinity
    and pathological nesting."""
    try:
        data = read_regular_file(path, max_bytes)
    except UnreadableFile as exc:
        raise InputError(f"{path}: {exc}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: cannot read as UTF-8 text ({exc})") from None
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
    except ValueError as exc:  # NaN/Infinity, or an integer of more than 4,300 digits
        raise InputError(f"{path}: not valid JSON ({exc})") from None
    except RecursionError:
        raise InputError(f"{path}: JSON nested too deeply") from None


def load_snapshot(path: Path) -> Snapshot:
    """Read and validate a snapshot file; InputError names the file and, one line each,
    every problem of the document (the field by its path, its number range included:
    margin.snapshot.SNAPSHOT_BOUNDS)."""
    doc = load_json(path)
    try:
        return parse_snapshot(doc)
    except SnapshotError as exc:
        lines = [f"{path}: {problem}" for problem in exc.problems[:MAX_LISTED]]
        if len(exc.problems) > MAX_LISTED:
            lines.append(f"{path}: and {len(exc.problems) - MAX_LISTED} more problems")
        raise InputError("\n".join(lines)) from None
    except RecursionError:
        raise InputError(f"{path}: JSON nested too deeply") from None
