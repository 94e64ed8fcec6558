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

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

DEFAULT_PATH = Path("marginwatch.toml")
DEMO_PATH = Path(".marginwatch-demo") / "marginwatch.toml"  # written by `marginwatch demo`
ENV_VAR = "MARGINWATCH_CONFIG"
MAX_CONFIG_BYTES = 1024 * 1024


def account_label(exchange: str, name: str) -> str:
    """How an account is named on every screen and in every message: exchange/name."""
    return f"{exchange}/{name}"


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
    timeout_seconds: float = Field(default=10.0, gt=0)

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, allow_inf_nan=False)


class WebhookConfig(_Strict):
    """A JSON POST (Slack and Discord incoming webhooks, or any JSON endpoint). The URL is
    a secret (it grants posting), so it comes from the variable `url_env`."""

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    url_env: str
    format: str = Field(default="slack", pattern="^(slack|discord|json)$")
    timeout_seconds: float = Field(default=10.0, gt=0)


class AlertRules(_Strict):
    """Rule thresholds; every field may be overridden per account."""

    warning_below: float = Field(default=1.5, gt=0)
    warning_clear_above: float = Field(default=1.7, gt=0)
    critical_below: float = Field(default=1.15, gt=0)
    critical_clear_above: float = Field(default=1.25, gt=0)
    warning_pending_polls: int = Field(default=2, ge=0)
    critical_pending_polls: int = Field(default=0, ge=0)
    # The risk level (margin.danger; docs/risk-model.md, "Risk level"), on by default: the
    # chance that the price touches a liquidation price (either side) within
    # `touch_horizon_hours`, from the symbol's realized volatility; for a symbol without a
    # volatility yet, the distance to its nearest liquidation price instead. A level clears
    # once the chance is under `danger_clear_ratio` x its trigger (the distance above its
    # trigger / that ratio). Set touch_*_above = 1 and distance_*_below = 0 to turn it off.
    touch_warning_above: float = Field(default=0.05, gt=0, le=1)
    touch_critical_above: float = Field(default=0.20, gt=0, le=1)
    touch_horizon_hours: float = Field(default=24.0, gt=0, le=720)
    distance_warning_below: float = Field(default=0.06, ge=0, lt=1)
    distance_critical_below: float = Field(default=0.04, ge=0, lt=1)
    danger_clear_ratio: float = Field(default=0.6, gt=0, le=1)
    # Off by default: with the target at 1.5, "under target" repeats the health warning band.
    below_target: bool = False
    repeat_warning_minutes: float | None = Field(default=240, gt=0)
    repeat_critical_minutes: float | None = Field(default=30, gt=0)
    notify_resolved: bool = True

    @model_validator(mode="before")
    @classmethod
    def _earlier_names(cls, data: Any) -> Any:
        """Keys of the opt-in rules the risk level replaced: distance_below and
        touch_probability_above are its warning thresholds; distance_clear_above is
        danger_clear_ratio's job now."""
        if isinstance(data, dict):
            data = dict(data)
            if "distance_below" in data:
                data.setdefault("distance_warning_below", data.pop("distance_below"))
            if "touch_probability_above" in data:
                data.setdefault("touch_warning_above", data.pop("touch_probability_above"))
            data.pop("distance_clear_above", None)
        return data

    @model_validator(mode="after")
    def _hysteresis(self) -> AlertRules:
        if self.warning_clear_above < self.warning_below:
            raise ValueError("warning_clear_above must be >= warning_below")
        if self.critical_clear_above < self.critical_below:
            raise ValueError("critical_clear_above must be >= critical_below")
        if self.critical_below > self.warning_below:
            raise ValueError("critical_below must be <= warning_below")
        if self.touch_critical_above < self.touch_warning_above:
            raise ValueError("touch_critical_above must be >= touch_warning_above")
        if self.distance_critical_below > self.distance_warning_below:
            raise ValueError("distance_critical_below must be <= distance_warning_below")
        return self


class AlertOverrides(_Strict):
    """Per-account alert settings: recipients, and any rule threshold."""

    email_to: list[str] | None = None
    rules: dict[str, Any] = Field(default_factory=dict)


class AlertConfig(AlertRules):
    email: EmailConfig | None = None
    webhooks: list[WebhookConfig] = Field(default_factory=list)
    retry_base_seconds: float = Field(default=5.0, gt=0)  # delivery backoff, doubling
    retry_cap_seconds: float = Field(default=300.0, gt=0)
    # a send left unfinished by a crashed sender is taken up again after this long; keep it
    # above the SMTP and webhook timeouts, or a slow send could be made twice
    delivery_lease_seconds: float = Field(default=120.0, gt=0)


class StreamingConfig(_Strict):
    """Websocket streams between polls (docs/streaming.md): each venue's mark prices are
    checked against the accounts' alert prices, and position or balance changes trigger a
    re-poll. On for the venues that stream (binanceusdm, bybit, okx); others are polled only."""

    enabled: bool = True
    account_streams: bool = True  # watch_positions / watch_balance per account
    # a mark stream silent this long is marked stale (never read as "no change") and redialled
    stale_after_seconds: float = Field(default=30.0, gt=0)
    reconnect_base_seconds: float = Field(default=1.0, gt=0)  # backoff after a drop, doubling, with jitter
    reconnect_cap_seconds: float = Field(default=60.0, gt=0)

    @model_validator(mode="after")
    def _backoff_order(self) -> StreamingConfig:
        if self.reconnect_cap_seconds < self.reconnect_base_seconds:
            raise ValueError("reconnect_cap_seconds must be >= reconnect_base_seconds")
        return self


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
    target_health: float | None = Field(default=None, gt=1.0)
    # Sends every request to this base URL (the exchange simulator), for tests and the demo.
    base_url: str | None = Field(default=None, pattern=r"^https?://")
    timeout_seconds: float | None = Field(default=None, gt=0)
    alerts: AlertOverrides = Field(default_factory=AlertOverrides)

    # a ccxt exchange id; whether ccxt knows it, and which credentials it needs, is checked
    # by the connectors (connectors.venues.account_problems) where accounts are polled
    exchange: str = Field(min_length=1, max_length=40, pattern=r"^[a-z0-9_]+$")

    @property
    def label(self) -> str:
        """exchange/name, as shown in tables and alert subjects."""
        return account_label(self.exchange, self.name)


class Config(_Strict):
    poll_interval_seconds: float = Field(default=30.0, gt=0)
    poll_timeout_seconds: float | None = Field(default=None, gt=0)
    database_url: str = "sqlite:///marginwatch.db"
    target_health: float = Field(default=1.5, gt=1.0)
    stale_after_seconds: float | None = Field(default=None, gt=0)
    retention_days: float = Field(default=7.0, gt=0)
    # Prometheus metrics over HTTP (docs/deploy.md): off unless a port is set (0: any free
    # port); on loopback unless told otherwise, since account names and equity are private.
    metrics_port: int | None = Field(default=None, ge=0, lt=65536)
    metrics_host: str = Field(default="127.0.0.1", min_length=1, max_length=253, pattern=r"^[A-Za-z0-9.:_-]+$")
    accounts: list[AccountConfig] = Field(default_factory=list)
    alerts: AlertConfig = Field(default_factory=AlertConfig)
    streaming: StreamingConfig = Field(default_factory=StreamingConfig)

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

    def target_for(self, account: AccountConfig | str | None) -> float:
        """The target health of `account` (by config or name): its own, else the global one."""
        if isinstance(account, str):
            account = next((a for a in self.accounts if a.name == account), None)
        return (account.target_health if account is not None else None) or self.target_health

    def rules_named(self, name: str) -> AlertRules:
        """The alert rules of the account called `name`; the defaults for one no longer
        configured (a stored account whose config entry was removed)."""
        account = next((a for a in self.accounts if a.name == name), None)
        if account is not None:
            return self.rules_for(account)
        return AlertRules.model_validate(
            {k: v for k, v in self.alerts.model_dump().items() if k in AlertRules.model_fields}
        )

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


def config_path(explicit: Path | None) -> Path:
    """--config, else $MARGINWATCH_CONFIG, else ./marginwatch.toml, else the config of a
    demo run from this folder (./.marginwatch-demo/marginwatch.toml)."""
    if explicit is not None:
        return explicit
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR])
    if not DEFAULT_PATH.exists() and DEMO_PATH.exists():
        return DEMO_PATH
    return DEFAULT_PATH


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
        if path.stat().st_size > MAX_CONFIG_BYTES:
            raise ConfigError([f"{path}: larger than {MAX_CONFIG_BYTES:,} bytes; not a config file"])
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read ({exc.strerror or exc})"]) from None
    except UnicodeDecodeError:
        raise ConfigError([f"{path}: not UTF-8 text"]) from None
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{path}: not valid TOML ({exc})"]) from None
    return parse_config(doc, str(path), account_check)
