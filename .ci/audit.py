"""Dependency audit of the locked test set (requirements/test.txt) against PyPI's vulnerability records.

pip-audit asks PyPI for `/pypi/<name>/<version>/json`, which these machines cannot reach
(404 through the registry proxy), and OSV is not reachable at all. PyPI's project record
`/pypi/<name>/json` is reachable and carries the known vulnerabilities of the latest
release: for every locked package at its latest release this audits exactly what
pip-audit's PyPI service would; a package locked behind its latest release is listed as
not audited (loudly, never silently). Exit 1 on any known vulnerability; under CI=true
also when PyPI cannot be reached at all. `make audit` runs pip-audit itself, for machines
where it can.
"""

from __future__ import annotations

import json
import os
import sys
import urllib.error
import urllib.request
from pathlib import Path

LOCK = Path(__file__).resolve().parent.parent / "requirements" / "test.txt"


def locked() -> list[tuple[str, str]]:
    pins = []
    for line in LOCK.read_text().splitlines():
        line = line.split("#", 1)[0].strip().rstrip("\\").strip()  # "name==1.2 \\" before its hashes
        if "==" in line:
            name, version = line.split("==", 1)
            pins.append((name.strip(), version.strip()))
    return pins


def record(name: str) -> dict:
    url = f"https://pypi.org/pypi/{name}/json"
    with urllib.request.urlopen(url, timeout=20) as reply:  # a fixed https URL
        return json.load(reply)


def main() -> int:
    found, unaudited, unreachable = [], [], []
    for name, version in locked():
        try:
            doc = record(name)
        except (urllib.error.URLError, TimeoutError, OSError, ValueError) as exc:
            unreachable.append(f"{name}: {exc}")
            continue
        if doc.get("info", {}).get("version") != version:
            unaudited.append(f"{name}=={version} (latest is {doc.get('info', {}).get('version')})")
            continue
        for vuln in doc.get("vulnerabilities") or []:
            found.append(
                f"{name}=={version}: {vuln.get('id')} {', '.join(vuln.get('aliases') or [])} "
                f"fixed in {', '.join(vuln.get('fixed_in') or []) or 'no release yet'}"
            )
    audited = len(locked()) - len(unaudited) - len(unreachable)
    print(f"dependency audit: {audited} of {len(locked())} locked packages audited, {len(found)} known vulnerabilities")
    for line in found:
        print(f"  VULNERABLE {line}")
    for line in unaudited:
        print(f"  NOT AUDITED (locked behind the latest release; run `make audit` where pip-audit works) {line}")
    for line in unreachable:
        print(f"  NOT AUDITED (PyPI unreachable) {line}")
    if found:
        return 1
    if unreachable and len(unreachable) == len(locked()) and os.environ.get("CI") == "true":
        print("dependency audit: PyPI could not be reached at all; CI needs the audit")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
