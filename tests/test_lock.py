"""The lock (requirements/, `make lock`): every dependency pyproject.toml declares is pinned
with its files' hashes, the runtime set within the test set at the same versions, so that
`make` (pip --require-hashes) installs exactly what the suite ran with."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PIN = re.compile(r"^([A-Za-z0-9_.\-]+)==(\S+)")


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0].lower().replace("_", "-").replace(".", "-")


def _pins(path: Path) -> dict[str, tuple[str, int]]:
    """name -> (version, number of hashes)."""
    pins: dict[str, tuple[str, int]] = {}
    current = None
    for line in path.read_text().splitlines():
        found = PIN.match(line)
        if found:
            current = _name(found.group(1))
            pins[current] = (found.group(2), 0)
        elif line.strip().startswith("--hash=sha256:") and current is not None:
            version, hashes = pins[current]
            pins[current] = (version, hashes + 1)
    return pins


def test_every_declared_dependency_is_locked_with_hashes() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    runtime = _pins(ROOT / "requirements" / "runtime.txt")
    test = _pins(ROOT / "requirements" / "test.txt")
    for name in map(_name, project["dependencies"]):
        assert name in runtime, f"{name} is not in requirements/runtime.txt: run make lock"
    for name in map(_name, [*project["dependencies"], *project["optional-dependencies"]["test"]]):
        assert name in test, f"{name} is not in requirements/test.txt: run make lock"
    assert all(hashes > 0 for _, hashes in [*runtime.values(), *test.values()]), "a pin without its hashes"
    for name, (version, _) in runtime.items():
        assert test[name][0] == version, f"{name}: {version} at run time, {test[name][0]} under test"
