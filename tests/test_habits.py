"""The tests' own habits, checked so that they stay: shared helpers come from
tests/helpers.py (conftest.py is for fixtures), and the environment is changed through
monkeypatch (undone after each test), never written directly."""

from __future__ import annotations

import re
from pathlib import Path

TESTS = Path(__file__).parent
SOURCES = sorted(p for p in TESTS.glob("*.py") if p.name != Path(__file__).name)

# os.environ["X"] = ..., os.environ.pop/update/setdefault/clear(...), del os.environ[...], os.putenv
RAW_ENVIRONMENT_WRITE = re.compile(
    r"os\.environ\[[^\]]+\]\s*(?:,\s*os\.environ\[[^\]]+\]\s*)*=(?!=)"
    r"|os\.environ\.(?:pop|update|setdefault|clear)\("
    r"|del\s+os\.environ\["
    r"|os\.putenv\("
)


def _offending(pattern: re.Pattern[str]) -> list[str]:
    return [
        f"{path.name}:{number}: {line.strip()}"
        for path in SOURCES
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if pattern.search(line)
    ]


def test_helpers_are_imported_from_the_helpers_module_not_conftest() -> None:
    assert _offending(re.compile(r"from tests\.conftest import|from conftest import|import conftest")) == []


def test_the_environment_is_changed_through_monkeypatch() -> None:
    assert _offending(RAW_ENVIRONMENT_WRITE) == []


def test_the_checks_see_what_they_look_for() -> None:
    for line in ('os.environ["A"] = "1"', 'os.environ["A"], os.environ["B"] = a, b', "os.environ.pop('A', None)"):
        assert RAW_ENVIRONMENT_WRITE.search(line), line
    for line in ('env={**os.environ, "A": "1"}', 'os.environ["A"] == "1"', 'os.environ.get("A")'):
        assert not RAW_ENVIRONMENT_WRITE.search(line), line
