"""Credentials: from environment variables, or from `.streamlit/secrets.toml` (same names).

Secrets are never stored in the database, never logged and never shown; only the names of
the variables that hold them appear in the config and in error messages.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

from config import redaction
from config.reading import UnreadableFile, read_regular_file, readable_by_others
from config.settings import AccountConfig, ConfigError

SECRETS_PATH = Path(".streamlit") / "secrets.toml"
MAX_SECRETS_BYTES = 1024 * 1024

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
    if not path.exists() and not path.is_symlink():
        return {}
    try:
        return tomllib.loads(read_regular_file(path, MAX_SECRETS_BYTES).decode("utf-8"))
    except UnreadableFile as exc:
        raise ConfigError([f"{path}: {exc}"]) from None
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        # the message of a TOML error can quote the line, which may hold a secret
        raise ConfigError([f"{path}: cannot read as TOML ({type(exc).__name__})"]) from None


def secrets_file_warning(path: Path = SECRETS_PATH) -> str | None:
    """A warning when the secrets file can be read by anyone but its owner."""
    return readable_by_others(path)


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
    redaction.install()
    redaction.register(result.values())  # from now on no log of this process can carry them
    if missing:
        raise ConfigError(
            [
                f"account {account.name!r}: credential variable(s) not set: {', '.join(missing)} "
                f"(set them in the environment or in {SECRETS_PATH})"
            ]
        )
    return result
