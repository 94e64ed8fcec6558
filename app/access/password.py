"""Password hashes for the self-hosted password gate: PBKDF2-SHA256, stored as
`pbkdf2_sha256$<iterations>$<salt>$<base64 hash>` in `.streamlit/secrets.toml`:

    [marginwatch_auth]
    password_hash = "pbkdf2_sha256$600000$...$..."

`python -m app.access.password hash` prints a hash for a password typed on stdin (never an argument:
it would stay in the shell history and the process list).
"""

from __future__ import annotations

import base64
import getpass
import hashlib
import hmac
import secrets
import sys

ALGORITHM = "pbkdf2_sha256"
# OWASP's 2023 figure for PBKDF2-HMAC-SHA256; about half a second per check, once a login.
DEFAULT_ITERATIONS = 600_000
MAX_ITERATIONS = 10_000_000  # a hash from secrets must not let a typo hang the app


def _derive(password: str, salt: str, iterations: int) -> str:
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt.encode(), iterations)
    return base64.b64encode(digest).decode("ascii")


def hash_password(password: str, iterations: int = DEFAULT_ITERATIONS, salt: str | None = None) -> str:
    """A new hash of `password` with a random salt."""
    if not password:
        raise ValueError("empty password")
    salt = salt or secrets.token_hex(16)
    if "$" in salt:
        raise ValueError("salt must not contain '$'")
    return f"{ALGORITHM}${iterations}${salt}${_derive(password, salt, iterations)}"


def check_hash_format(encoded: str) -> str | None:
    """None when `encoded` is a usable hash, else what is wrong with it."""
    parts = encoded.split("$")
    if len(parts) != 4 or parts[0] != ALGORITHM:
        return f"password_hash must look like {ALGORITHM}$iterations$salt$hash"
    if not parts[1].isdigit() or not 1 <= int(parts[1]) <= MAX_ITERATIONS:
        return f"password_hash: iterations must be a whole number from 1 to {MAX_ITERATIONS:,}"
    if not parts[2] or not parts[3]:
        return "password_hash: empty salt or hash"
    return None


def verify_password(password: str, encoded: str) -> bool:
    """True when `password` matches `encoded`; compared in constant time."""
    if check_hash_format(encoded) is not None:
        return False
    _, iterations, salt, expected = encoded.split("$")
    return hmac.compare_digest(_derive(password, salt, int(iterations)), expected)


def main(argv: list[str]) -> int:
    if argv != ["hash"]:
        print("usage: python -m app.access.password hash   (reads the password from stdin)", file=sys.stderr)
        return 2
    if sys.stdin.isatty():
        password = getpass.getpass("password: ")
        if getpass.getpass("again: ") != password:
            print("the passwords differ", file=sys.stderr)
            return 1
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        print("empty password", file=sys.stderr)
        return 1
    print(hash_password(password))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
