"""Configuration: a bad file gets one clear line per problem and exit 2; secrets come from
the environment or .streamlit/secrets.toml and never from the file."""

from __future__ import annotations

from pathlib import Path

import pytest

from config.secrets import credentials
from config.settings import ConfigError, load_config, parse_config
from connectors.venues import account_problems
from tests.helpers import run_cli

ROOT = Path(__file__).parent.parent


def test_the_shipped_example_is_valid() -> None:
    config = load_config(ROOT / "marginwatch.example.toml")
    assert [a.exchange for a in config.accounts] == ["binanceusdm", "bybit", "okx", "hyperliquid"]
    assert config.accounts[1].target_health == 2.0


def test_every_problem_is_one_line_naming_the_key(tmp_path: Path) -> None:
    path = tmp_path / "marginwatch.toml"
    path.write_text(
        "poll_interval_seconds = -5\n"
        'colour = "blue"\n'
        '[[accounts]]\nname = "a"\nexchange = "binanse"\nkey_env = "K"\nsecret_env = "S"\n'
        '[[accounts]]\nname = "b"\nexchange = "okx"\nkey_env = "K"\nsecret_env = "S"\n'
    )
    with pytest.raises(ConfigError) as caught:
        load_config(path, account_problems)  # as the commands that poll read it
    problems = caught.value.problems
    assert f"{path}: poll_interval_seconds: Input should be greater than 0" in problems
    assert f"{path}: colour: unknown key" in problems
    assert any("accounts[0].exchange: unknown exchange 'binanse'" in p for p in problems)
    assert any("accounts[1]" in p and "passphrase_env" in p for p in problems)
    code, out, err = run_cli("snapshot", "--account", "a", "--config", str(path))
    assert code == 2 and out == ""
    assert err.count("\n") == len(problems) and "Traceback" not in err


def test_toml_syntax_error(tmp_path: Path) -> None:
    path = tmp_path / "marginwatch.toml"
    path.write_text("accounts = [\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(path)


def test_duplicate_names_are_refused() -> None:
    account = {"name": "a", "exchange": "binanceusdm", "key_env": "K", "secret_env": "S"}
    with pytest.raises(ConfigError, match="two accounts are named 'a'"):
        parse_config({"accounts": [account, account]})


def test_credentials_from_environment_then_secrets_file(monkeypatch: pytest.MonkeyPatch) -> None:
    config = parse_config(
        {
            "accounts": [
                {
                    "name": "o",
                    "exchange": "okx",
                    "key_env": "MW_T_KEY",
                    "secret_env": "MW_T_SECRET",
                    "passphrase_env": "MW_T_PASS",
                }
            ]
        }
    )
    monkeypatch.setenv("MW_T_KEY", "env-key")
    monkeypatch.delenv("MW_T_SECRET", raising=False)
    monkeypatch.delenv("MW_T_PASS", raising=False)
    with pytest.raises(ConfigError) as caught:
        credentials(config.accounts[0], {})
    assert "MW_T_SECRET, MW_T_PASS" in caught.value.problems[0]
    creds = credentials(config.accounts[0], {"MW_T_SECRET": "file-secret", "MW_T_PASS": "p"})
    assert creds == {"apiKey": "env-key", "secret": "file-secret", "password": "p"}


def test_hyperliquid_is_read_with_the_wallet_address_alone() -> None:
    """Hyperliquid reads are unsigned: the address is all an account needs, and a private
    key (which can trade, and a main wallet's can withdraw) is refused, naming the key."""
    base = {"name": "hl", "exchange": "hyperliquid", "collateral": "USDC"}
    assert account_problems({**base, "wallet_address_env": "HL_WALLET"}) == []
    [(key, message)] = account_problems({**base, "wallet_address_env": "HL_WALLET", "private_key_env": "HL_KEY"})
    assert key == "private_key_env" and "never signs" in message
    [(_, message)] = account_problems(base)
    assert "needs wallet_address_env" in message
