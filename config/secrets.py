"""Credentials: from environment variables, or from `.streamlit/secrets.toml` (same names).

Secrets are never stored in the database, never logged and never shown; only the names of
the variables that hold them appear in the config and in error messages.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

from config.settings import AccountConfig, ConfigError

SECRETS_PATH = Path(".streamlit") / "secrets.toml"

# ccxt credential field <- config field naming the variable that holds it
_FIELDS = {
    "apiKey": "key_env",
    "secret": "secret_env",
    "password": "passphrase_env",
    "walletAddress": "wallet_address_env",
    "privateKey": "private_key_env",
}


def load_secrets_file(path: Path = SECRETS_PATH) -> dict[str, Any]:
    """The secrets file's top-level values (empty when there is no file)."""
    if not path.exists():
        return {}
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        # the message of a TOML error can quote the line, which may hold a secret
        raise ConfigError([f"{path}: cannot read as TOML ({type(exc).__name__})"]) from None


def credentials(account: AccountConfig, secrets_file: dict[str, Any] | None = None) -> dict[str, str]:
    """ccxt credential fields for `account`. ConfigError names every variable not set."""
    stored = load_secrets_file() if secrets_file is None else secrets_file
    result: dict[str, str] = {}
    missing: list[str] = []
    for ccxt_field, config_field in _FIELDS.items():
        variable = getattr(account, config_field)
        if not variable:
            continue
        value = os.environ.get(variable) or stored.get(variable)
        if not isinstance(value, str) or not value:
            missing.append(variable)
        else:
            result[ccxt_field] = value
    if missing:
        raise ConfigError(
            [
                f"account {account.name!r}: credential variable(s) not set: {', '.join(missing)} "
                f"(set them in the environment or in {SECRETS_PATH})"
            ]
        )
    return result
