"""`marginwatch.toml`: the accounts to watch and how, validated with pydantic.

The file names the environment variables that hold each account's credentials, never the
secrets themselves (config.secrets resolves them). A bad file gets one line per problem:
file, key, what is wrong.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Callable, Mapping
from email.utils import parseaddr
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from config.reading import UnreadableFile, read_regular_file, readable_by_others

DEFAULT_PATH = Path("marginwatch.toml")
DEMO_PATH = Path(".marginwatch-demo") / "marginwatch.toml"  # written by `marginwatch demo`
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


# CR/LF (and any control character) in an address would add mail headers of its own
_CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
BARE_ADDRESS = re.compile(r"^[^@\s<>,;:\"()\[\]\\]+@[^@\s<>,;:\"()\[\]\\]+$")
ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"


def _no_controls(value: str) -> str:
    if _CONTROLS.search(value):
        raise ValueError("contains a line break or another control character; refused (it could add mail headers)")
    return value


def _address(value: str) -> str:
    """One bare address (a recipient): name@domain, nothing else."""
    _no_controls(value)
    if len(value) > 254 or not BARE_ADDRESS.match(value):
        raise ValueError(f"not an email address like name@example.org: {value!r}")
    return value


def _sender(value: str) -> str:
    """The From header: an address, or "Name <address>"."""
    _no_controls(value)
    _, address = parseaddr(value)
    if len(value) > 254 or not BARE_ADDRESS.match(address):
        raise ValueError(f"not an email address like marginwatch@example.org or 'Name <a@b>': {value!r}")
    return value


EmailAddress = Annotated[str, AfterValidator(_address)]
SenderAddress = Annotated[str, AfterValidator(_sender)]
OneLine = Annotated[str, AfterValidator(_no_controls)]


class EmailConfig(_Strict):
    """SMTP delivery. The password comes from the environment variable `password_env`."""

    host: OneLine = Field(min_length=1, max_length=253)
    port: int = Field(default=587, gt=0, lt=65536)
    security: str = Field(default="starttls", pattern="^(starttls|ssl|none)$")
    username_env: str | None = Field(default=None, pattern=ENV_NAME)
    password_env: str | None = Field(default=None, pattern=ENV_NAME)
    sender: SenderAddress = Field(alias="from", default="marginwatch@localhost")
    to: list[EmailAddress] = Field(default_factory=list)
    timeout_seconds: float = Field(default=10.0, gt=0, le=MAX_INTERVAL_SECONDS)

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, allow_inf_nan=False)


class WebhookConfig(_Strict):
    """A JSON POST (Slack and Discord incoming webhooks, or any JSON endpoint). The URL is
    a secret (it grants posting), so it comes from the variable `url_env`."""

    name: str = Field(min_length=1, max_length=60, pattern=r"^[A-Za-z0-9_.-]+$")
    url_env: str = Field(pattern=ENV_NAME)
    format: str = Field(default="slack", pattern="^(slack|discord|json)$")
    timeout_seconds: float = Field(default=10.0, gt=0, le=MAX_INTERVAL_SECONDS)


class TelegramConfig(_Strict):
    """A Telegram bot: alerts go to `chat_ids`; commands (/status, /ack, /silence,
    /unsilence) are answered in those chats only. The bot token is a secret (it controls
    the bot), so it comes from the variable `bot_token_env`."""

    # short: an outbox row's channel is "telegram:<name>:<chat id>", 80 characters at most
    name: str = Field(default="telegram", min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_.-]+$")
    bot_token_env: str = Field(pattern=ENV_NAME)
    # numeric chat ids: a user's id, or a group's (negative); commands are matched on them
    chat_ids: list[int] = Field(min_length=1)
    # the Bot API server: Telegram's, or a self-hosted telegram-bot-api (and tests' fake)
    api_base_url: str = Field(default="https://api.telegram.org", pattern=r"^https?://[^\s\x00-\x1f\x7f]+$")
    timeout_seconds: float = Field(default=10.0, gt=0)
    commands: bool = True  # answer commands (long-polls getUpdates); off: send only
    poll_timeout_seconds: int = Field(default=25, ge=0, le=50)  # getUpdates long-poll

    @model_validator(mode="after")
    def _distinct_chats(self) -> TelegramConfig:
        if len(set(self.chat_ids)) != len(self.chat_ids):
            raise ValueError("chat_ids lists a chat twice (it would get every alert twice)")
        return self


class AlertRules(_Strict):
    """Rule thresholds; every field may be overridden per account."""

    warning_below: float = Field(default=1.5, gt=0, le=MAX_HEALTH)
    warning_clear_above: float = Field(default=1.7, gt=0, le=MAX_HEALTH)
    critical_below: float = Field(default=1.15, gt=0, le=MAX_HEALTH)
    critical_clear_above: float = Field(default=1.25, gt=0, le=MAX_HEALTH)
    warning_pending_polls: int = Field(default=2, ge=0, le=MAX_PENDING_POLLS)
    critical_pending_polls: int = Field(default=0, ge=0, le=MAX_PENDING_POLLS)
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
    # A level steps down only after the value has fitted the lower level this long, every
    # poll (alerts.rules): a position wobbling across a band tells one escalation and one
    # recovery, not one message per wobble. Escalation never waits. 0 turns it off.
    recovery_dwell_minutes: float = Field(default=3.0, ge=0, le=MAX_REPEAT_MINUTES)
    repeat_warning_minutes: float | None = Field(default=240, gt=0, le=MAX_REPEAT_MINUTES)
    repeat_critical_minutes: float | None = Field(default=30, gt=0, le=MAX_REPEAT_MINUTES)
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

    email_to: list[EmailAddress] | None = None
    rules: dict[str, Any] = Field(default_factory=dict)


class AlertConfig(AlertRules):
    email: EmailConfig | None = None
    webhooks: list[WebhookConfig] = Field(default_factory=list)
    telegram: list[TelegramConfig] = Field(default_factory=list)
    retry_base_seconds: float = Field(default=5.0, gt=0, le=MAX_INTERVAL_SECONDS)  # delivery backoff, doubling
    retry_cap_seconds: float = Field(default=300.0, gt=0, le=MAX_INTERVAL_SECONDS)
    # a send left unfinished by a crashed sender is taken up again after this long; keep it
    # above the SMTP and webhook timeouts, or a slow send could be made twice
    delivery_lease_seconds: float = Field(default=120.0, gt=0, le=MAX_INTERVAL_SECONDS)

    @model_validator(mode="after")
    def _unique_channels(self) -> AlertConfig:
        for kind, names in (
            ("webhooks", [w.name for w in self.webhooks]),
            ("telegram", [t.name for t in self.telegram]),
        ):
            repeated = sorted({n for n in names if names.count(n) > 1})
            if repeated:
                raise ValueError(f"two {kind} channels are named {repeated[0]!r}")
        return self


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


class MonitorConfig(_Strict):
    """The watcher watched: a heartbeat to an outside service each cycle, the watchdog's
    patience, the daily digest."""

    # GET on every good cycle, /fail on a failed one, /start at start (healthchecks.io), or
    # ?status=up / ?status=down (Uptime Kuma's push monitors). The URL grants pinging: it
    # may come from an environment variable instead (heartbeat_url_env).
    heartbeat_url: str | None = Field(default=None, pattern=r"^https?://")
    heartbeat_url_env: str | None = None
    heartbeat_format: str = Field(default="healthchecks", pattern="^(healthchecks|uptime-kuma)$")
    heartbeat_timeout_seconds: float = Field(default=5.0, gt=0)
    # `marginwatch watchdog` alerts when no poller completed a cycle for this many intervals
    watchdog_after_intervals: float = Field(default=3.0, ge=1)
    # "all clear: 4 accounts watched, ..." every day at this UTC time (HH:MM); off if unset
    digest_at: str | None = Field(default=None, pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")

    @model_validator(mode="after")
    def _one_url(self) -> MonitorConfig:
        if self.heartbeat_url and self.heartbeat_url_env:
            raise ValueError("set heartbeat_url or heartbeat_url_env, not both")
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
    target_health: float | None = Field(default=None, gt=1.0, le=MAX_HEALTH)
    # Sends every request to this base URL (the exchange simulator), for tests and the demo.
    base_url: str | None = Field(default=None, pattern=r"^https?://")
    timeout_seconds: float | None = Field(default=None, gt=0, le=MAX_INTERVAL_SECONDS)
    # Binance only: a Portfolio Margin account, read through the `papi` endpoints (ccxt's
    # portfolioMargin option); its fapi endpoints do not show the unified account (issue 13)
    portfolio_margin: bool = False
    alerts: AlertOverrides = Field(default_factory=AlertOverrides)

    # a ccxt exchange id; whether ccxt knows it, and which credentials it needs, is checked
    # by the connectors (connectors.venues.account_problems) where accounts are polled
    exchange: str = Field(min_length=1, max_length=40, pattern=r"^[a-z0-9_]+$")

    @property
    def label(self) -> str:
        """exchange/name, as shown in tables and alert subjects."""
        return account_label(self.exchange, self.name)


class Config(_Strict):
    poll_interval_seconds: float = Field(default=30.0, gt=0, le=MAX_INTERVAL_SECONDS)
    poll_timeout_seconds: float | None = Field(default=None, gt=0, le=MAX_INTERVAL_SECONDS)
    database_url: str = "sqlite:///marginwatch.db"
    # SQLite: how long a write waits for another writer before it fails ("database is
    # locked"; the poller then retries and raises a monitor alert)
    database_busy_timeout_seconds: float = Field(default=15.0, gt=0, le=MAX_INTERVAL_SECONDS)
    target_health: float = Field(default=1.5, gt=1.0, le=MAX_HEALTH)
    stale_after_seconds: float | None = Field(default=None, gt=0, le=MAX_STALE_SECONDS)
    # this many failed polls in a row make an account stale (its data alert fires) even
    # when its last success is recent; 0 turns the test off
    stale_after_failed_polls: int = Field(default=5, ge=0, le=MAX_PENDING_POLLS)
    retention_days: float = Field(default=7.0, gt=0, le=MAX_RETENTION_DAYS)
    # Prometheus metrics over HTTP (docs/deploy.md): off unless a port is set (0: any free
    # port); on loopback unless told otherwise, since account names and equity are private.
    metrics_port: int | None = Field(default=None, ge=0, lt=65536)
    metrics_host: str = Field(default="127.0.0.1", min_length=1, max_length=253, pattern=r"^[A-Za-z0-9.:_-]+$")
    accounts: list[AccountConfig] = Field(default_factory=list)
    alerts: AlertConfig = Field(default_factory=AlertConfig)
    streaming: StreamingConfig = Field(default_factory=StreamingConfig)
    monitor: MonitorConfig = Field(default_factory=MonitorConfig)

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
