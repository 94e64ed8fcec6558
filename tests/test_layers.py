"""The import contract (pyproject.toml, `make lint`) catches a wire that runs upward: the
project's own config is run on a copy of the packages with upward imports planted in
them, so that a contract that stopped checking (a renamed package, a layer dropped, a
typo) fails here instead of passing quietly."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONFIG = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
LINT = [
    sys.executable,
    "-c",
    "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())",
]

# (module planted, what it imports): each from a layer to one above it
PLANTED = {
    "config/_planted_upward.py": "import margin.snapshot\n",
    "margin/_planted_upward.py": "from poller import loop\n",
    "store/_planted_upward.py": "def late() -> None:\n    import alerts.outbox  # inside a function: still a wire\n",
    "connectors/_planted_sideways.py": "import store.schema\n",  # side by side: neither imports the other
}


def _copy(tmp_path: Path) -> Path:
    tree = tmp_path / "tree"
    for package in CONFIG["root_packages"]:
        shutil.copytree(ROOT / package, tree / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tree / "pyproject.toml")
    return tree


def _lint(tree: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    return subprocess.run(
        [*LINT, "--no-cache", "pyproject.toml"], cwd=tree, env=env, capture_output=True, text=True, timeout=300
    )


def test_the_contract_names_every_package_of_the_project() -> None:
    packages = {p.parent.name for p in ROOT.glob("*/__init__.py")} - {"tests", "bench"}
    assert set(CONFIG["root_packages"]) == packages
    layered = {name.strip() for layer in CONFIG["contracts"][0]["layers"] for name in layer.split("|")}
    assert layered == packages


def test_the_contract_fails_on_each_upward_import(tmp_path: Path) -> None:
    tree = _copy(tmp_path)
    clean = _lint(tree)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    for path, source in PLANTED.items():
        (tree / path).write_text(source)
    broken = _lint(tree)
    assert broken.returncode != 0, broken.stdout
    assert "Layers only point down BROKEN" in broken.stdout
    for path in PLANTED:
        module = path.removesuffix(".py").replace("/", ".")
        assert module in broken.stdout, f"{module} not reported:\n{broken.stdout}"
