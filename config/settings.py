"""`marginwatch.toml`: the accounts to watch and how, validated with pydantic.

The file names the environment variables that hold each account's credentials, never the
secrets themselves (config.secrets resolves them). A bad file gets one line per problem:
file, key, what is wrong.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from config.reading import UnreadableFile, read_regular_file, readable_by_others

DEFAULT_PATH = Path("marginwatch.toml")
ENV_VAR = "MARGINWATCH_CONFIG"
MAX_CONFIG_BYTES = 1024 * 1024

# Upper bounds of the numbers in a config (docs/reliability.md). Each is far beyond any
# sensible setting and far inside what the code does with it (a timedelta of 1e300 minutes
# overflows and killed the poller at its first alert; a lease of 1e300 s meant never).
DAY_SECONDS = 86_400.0
MAX_INTERVAL_SECONDS = DAY_SECONDS  # poll interval, timeouts, delivery backoff and lease
MAX_STALE_SECONDS = 365 * DAY_SECONDS
MAX_REPEAT_MINUTES = 365 * 24 * 60.0
MAX_RETENTION_DAYS = 36_500.0
MAX_HEALTH = 1_000.0  # thresholds and targets, in health (equity / maintenance)
MAX_PENDING_POLLS = 10_000
DATABASE_BACKENDS = ("sqlite", "postgresql", "postgres")  # what the store is built and tested for


class ConfigError(ValueError):
    """A config file that cannot be used; `problems` holds one line each."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class _Strict(BaseModel):
    # TOML has nan and inf: an infinite poll interval or a NaN threshold is a typo, not intent
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class EmailConfig(_Strict):
    """SMTP delivery. The password comes from the environment variable `password_env`."""

    host: str
    port: int = Field(default=587, gt=0, lt=65536)
    security: str = Field(default="starttls", pattern="^(starttls|ssl|none)$")
    username_env: str | None = None
    password_env: str | None = None
    sender: str = Field(alias="from", default="marginwatch@localhost")
    to: list[str] = Field(default_factory=list)
    timeout_seconds: float = Field(default=10.0, gt=0, le=MAX_INTERVAL_SECONDS)

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, allow_inf_nan=False)


class WebhookConfig(_Strict):
    """A JSON POST (Slack and Discord incoming webhooks, or any JSON endpoint). The URL is
    a secret (it grants posting), so it comes from the variable `url_env`."""

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    url_env: str
    format: str = Field(default="slack", pattern="^(slack|discord|json)$")
    timeout_seconds: float = Field(default=10.0, gt=0, le=MAX_INTERVAL_SECONDS)


class AlertRules(_Strict):
    """Rule thresholds; every field may be overridden per account."""

    warning_below: float = Field(default=1.5, gt=0, le=MAX_HEALTH)
    warning_clear_above: float = Field(default=1.7, gt=0, le=MAX_HEALTH)
    critical_below: float = Field(default=1.15, gt=0, le=MAX_HEALTH)
    critical_clear_above: float = Field(default=1.25, gt=0, le=MAX_HEALTH)
    warning_pending_polls: int = Field(default=2, ge=0, le=MAX_PENDING_POLLS)
    critical_pending_polls: int = Field(default=0, ge=0, le=MAX_PENDING_POLLS)
    # Off by default: at 20x and more, any healthy book is within a few % of liquidation,
    # and "under target" repeats the warning band when the target is 1.5. Turn on per need.
    distance_below: float | None = Field(default=None, gt=0, lt=1)
    distance_clear_above: float | None = Field(default=None, gt=0, lt=1)
    below_target: bool = False
    # "chance of liquidation in 24 h above X" (first passage under the realized volatility)
    touch_probability_above: float | None = Field(default=None, gt=0, lt=1)
    repeat_warning_minutes: float | None = Field(default=240, gt=0, le=MAX_REPEAT_MINUTES)
    repeat_critical_minutes: float | None = Field(default=30, gt=0, le=MAX_REPEAT_MINUTES)
    notify_resolved: bool = True

    @model_validator(mode="after")
    def _hysteresis(self) -> AlertRules:
        if self.warning_clear_above < self.warning_below:
            raise ValueError("warning_clear_above must be >= warning_below")
        if self.critical_clear_above < self.critical_below:
            raise ValueError("critical_clear_above must be >= critical_below")
        if self.critical_below > self.warning_below:
            raise ValueError("critical_below must be <= warning_below")
        return self


class AlertOverrides(_Strict):
    """Per-account alert settings: recipients, and any rule threshold."""

    email_to: list[str] | None = None
    rules: dict[str, Any] = Field(default_factory=dict)


class AlertConfig(AlertRules):
    email: EmailConfig | None = None
    webhooks: list[WebhookConfig] = Field(default_factory=list)
    retry_base_seconds: float = Field(default=5.0, gt=0, le=MAX_INTERVAL_SECONDS)  # delivery backoff, doubling
    retry_cap_seconds: float = Field(default=300.0, gt=0, le=MAX_INTERVAL_SECONDS)
    # a send left unfinished by a crashed sender is taken up again after this long; keep it
    # above the SMTP and webhook timeouts, or a slow send could be made twice
    delivery_lease_seconds: float = Field(default=120.0, gt=0, le=MAX_INTERVAL_SECONDS)


class AccountConfig(_Strict):
    """One exchange account (or sub-account) to watch."""

    # a label, never a path: no slashes, no leading dot
    name: str = Field(min_length=1, max_length=120, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")
    sub_account: str | None = None
    owner: str | None = None  # accounts of one owner may lend each other collateral (rebalancing)
    collateral: str = "USDT"
    key_env: str | None = None
    secret_env: str | None = None
    passphrase_env: str | None = None
    wallet_address_env: str | None = None
    private_key_env: str | None = None
    target_health: float | None = Field(default=None, gt=1.0, le=MAX_HEALTH)
    # Sends every request to this base URL (the exchange simulator), for tests and the demo.
    base_url: str | None = Field(default=None, pattern=r"^https?://")
    timeout_seconds: float | None = Field(default=None, gt=0, le=MAX_INTERVAL_SECONDS)
    alerts: AlertOverrides = Field(default_factory=AlertOverrides)

    # a ccxt exchange id; whether ccxt knows it, and which credentials it needs, is checked
    # by the connectors (connectors.venues.account_problems) where accounts are polled
    exchange: str = Field(min_length=1, max_length=40, pattern=r"^[a-z0-9_]+$")

    @property
    def label(self) -> str:
        """exchange/name, as shown in tables and alert subjects."""
        return f"{self.exchange}/{self.name}"


class Config(_Strict):
    poll_interval_seconds: float = Field(default=30.0, gt=0, le=MAX_INTERVAL_SECONDS)
    poll_timeout_seconds: float | None = Field(default=None, gt=0, le=MAX_INTERVAL_SECONDS)
    database_url: str = "sqlite:///marginwatch.db"
    target_health: float = Field(default=1.5, gt=1.0, le=MAX_HEALTH)
    stale_after_seconds: float | None = Field(default=None, gt=0, le=MAX_STALE_SECONDS)
    retention_days: float = Field(default=7.0, gt=0, le=MAX_RETENTION_DAYS)
    accounts: list[AccountConfig] = Field(default_factory=list)
    alerts: AlertConfig = Field(default_factory=AlertConfig)

    @field_validator("database_url")
    @classmethod
    def _usable_database_url(cls, url: str) -> str:
        problem = database_url_problem(url)
        if problem:
            raise ValueError(problem)
        return url

    @model_validator(mode="after")
    def _unique_names(self) -> Config:
        seen: set[str] = set()
        for account in self.accounts:
            if account.name in seen:
                raise ValueError(f"two accounts are named {account.name!r}")
            seen.add(account.name)
        return self

    @model_validator(mode="after")
    def _account_rules_valid(self) -> Config:
        for account in self.accounts:
            try:
                self.rules_for(account)
            except ValidationError as exc:
                first = exc.errors()[0]
                where = ".".join(str(p) for p in first["loc"]) or "rules"
                raise ValueError(
                    f"account {account.name!r}: alerts.rules.{where}: {first['msg'].removeprefix('Value error, ')}"
                ) from None
        return self

    @property
    def account_timeout(self) -> float:
        """Each account's budget in a cycle: its own timeout, never beyond the interval."""
        return self.poll_timeout_seconds or max(1.0, self.poll_interval_seconds * 0.8)

    def rules_for(self, account: AccountConfig) -> AlertRules:
        """The alert rules of `account`: the defaults with its overrides."""
        base = AlertRules.model_validate(
            {k: v for k, v in self.alerts.model_dump().items() if k in AlertRules.model_fields}
        )
        if not account.alerts.rules:
            return base
        return AlertRules.model_validate({**base.model_dump(), **account.alerts.rules})

    def recipients(self, account: AccountConfig) -> list[str]:
        """Who gets `account`'s email: its own list, else the default list."""
        if account.alerts.email_to is not None:
            return account.alerts.email_to
        return self.alerts.email.to if self.alerts.email else []

    @property
    def stale_after(self) -> float:
        """No fresh snapshot for this long and an account is stale (default 3 intervals)."""
        return self.stale_after_seconds or 3 * self.poll_interval_seconds

    def account(self, name: str) -> AccountConfig:
        for account in self.accounts:
            if account.name == name:
                return account
        raise ConfigError(
            [f"no account named {name!r} (configured: {', '.join(a.name for a in self.accounts) or 'none'})"]
        )


def database_url_problem(url: str) -> str | None:
    """What makes `url` unusable as a database URL (never quoting its password), or None."""
    from sqlalchemy.engine import make_url  # SQLAlchemy's own parser: what the store will use
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        return "not a database URL (expected sqlite:///path/to/file.db or postgresql://user@host/db)"
    backend = parsed.get_backend_name()
    if backend not in DATABASE_BACKENDS:
        return f"unsupported database {backend!r} (sqlite or postgresql)"
    return None


def secrets_in(config: Config) -> list[str]:
    """What in `config` is a secret: the file names the variables that hold credentials,
    never their values, but a database URL may carry a password."""
    from sqlalchemy.engine import make_url

    return ["database_url (a password)"] if make_url(config.database_url).password else []


def exposure_warnings(path: Path, config: Config) -> list[str]:
    """One line per problem when a file holding secrets can be read by others."""
    if not secrets_in(config):
        return []
    warning = readable_by_others(path)
    return [warning] if warning else []


def config_path(explicit: Path | None) -> Path:
    """--config, else $MARGINWATCH_CONFIG, else ./marginwatch.toml."""
    if explicit is not None:
        return explicit
    return Path(os.environ[ENV_VAR]) if os.environ.get(ENV_VAR) else DEFAULT_PATH


def _location(loc: tuple[Any, ...]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


# One account entry of the file -> its problems as (key within the entry, message); the
# connectors supply one (which exchange ids exist, which credentials each venue needs).
AccountCheck = Callable[[Mapping[str, Any]], list[tuple[str, str]]]


def parse_config(
    doc: dict[str, Any], source: str = "marginwatch.toml", account_check: AccountCheck | None = None
) -> Config:
    """Validate a decoded config; ConfigError lists every problem, `account_check`'s too."""
    problems: list[str] = []
    config = None
    try:
        config = Config.model_validate(doc)
    except ValidationError as exc:
        for error in exc.errors():
            message = error["msg"].removeprefix("Value error, ")
            if error["type"] == "extra_forbidden":
                message = "unknown key"
            problems.append(f"{source}: {_location(tuple(error['loc']))}: {message}")
    entries = doc.get("accounts") if isinstance(doc, Mapping) else None
    if account_check is not None and isinstance(entries, list):
        for i, entry in enumerate(entries):
            if isinstance(entry, Mapping):
                problems += [
                    f"{source}: accounts[{i}]{'.' + key if key else ''}: {message}"
                    for key, message in account_check(entry)
                ]
    if problems or config is None:
        raise ConfigError(problems)
    return config


def load_config(path: Path, account_check: AccountCheck | None = None) -> Config:
    """Read and validate a config file; ConfigError lists every problem."""
    try:
        text = read_regular_file(path, MAX_CONFIG_BYTES).decode("utf-8")
    except UnreadableFile as exc:
        raise ConfigError([f"{path}: {exc}"]) from None
    except UnicodeDecodeError:
        raise ConfigError([f"{path}: not UTF-8 text"]) from None
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{path}: not valid TOML ({exc})"]) from None
    return parse_config(doc, str(path), account_check)
