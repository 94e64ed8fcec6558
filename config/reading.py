"""Reading a file someone else may have put there: a config, a secrets file, a snapshot.

Only a regular file is read, and at most `limit` bytes of it. The type is checked before
the file is opened (opening a FIFO blocks until a writer comes; a tape device may rewind)
and again on the open descriptor (the path may have been swapped in between); the read
stops one byte past `limit`, so a file that grows while it is read, or a /proc file that
says it is empty, cannot exhaust memory either.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)
_CHUNK = 1 << 20


class UnreadableFile(ValueError):
    """Why a file was not read, in a few words (the caller adds the path)."""


def _not_regular(mode: int) -> str | None:
    if stat.S_ISREG(mode):
        return None
    kind = next((name for test, name in _KINDS if test(mode)), "a special file")
    return f"not a regular file ({kind})"


def read_regular_file(path: Path, limit: int) -> bytes:
    """The bytes of `path`, a regular file of at most `limit` bytes; UnreadableFile otherwise."""
    try:
        before = os.stat(path)
    except OSError as exc:
        raise UnreadableFile(f"cannot read ({exc.strerror or exc})") from None
    problem = _not_regular(before.st_mode)
    if problem:
        raise UnreadableFile(problem)
    if before.st_size > limit:
        raise UnreadableFile(_too_large(before.st_size, limit))
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise UnreadableFile(f"cannot read ({exc.strerror or exc})") from None
    try:
        info = os.fstat(fd)
        problem = _not_regular(info.st_mode)
        if problem:
            raise UnreadableFile(problem)
        chunks: list[bytes] = []
        total = 0
        while True:
            chunk = os.read(fd, min(_CHUNK, limit + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
            if total > limit:
                raise UnreadableFile(_too_large(max(total, info.st_size), limit))
        return b"".join(chunks)
    except OSError as exc:
        raise UnreadableFile(f"cannot read ({exc.strerror or exc})") from None
    finally:
        os.close(fd)


def _too_large(size: int, limit: int) -> str:
    return f"too large: {size:,} bytes, larger than the limit of {limit:,}"


def readable_by_others(path: Path) -> str | None:
    """A warning when `path` (a file that holds secrets) may be read by its group or by
    anyone; None when only its owner can read it, or when it cannot be examined."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return None
    if not stat.S_ISREG(mode) or not mode & (stat.S_IRGRP | stat.S_IROTH):
        return None
    who = "anyone" if mode & stat.S_IROTH else "its group"
    return f"{path} holds secrets and can be read by {who} (mode {stat.S_IMODE(mode):04o}): chmod 600 {path}"
