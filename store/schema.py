"""The tables (SQLAlchemy 2.0, typed). Money in the collateral currency, prices in quote
currency, times in UTC. Migrations in store/migrations mirror this file."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# SQLite only auto-increments INTEGER PRIMARY KEY; PostgreSQL gets a BIGINT identity.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class Timestamp(TypeDecorator[datetime]):
    """An aware UTC datetime stored as integer milliseconds since the epoch: 8 bytes a row
    instead of a 26-character string, the same on SQLite and PostgreSQL, and a history can
    be bucketed in SQL by integer division."""

    impl = BigInteger
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: object) -> int | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: store times as aware UTC datetimes")
        return round(value.timestamp() * 1000)

    def process_result_value(self, value: int | None, dialect: object) -> datetime | None:
        if value is None:
            return None
        return datetime.fromtimestamp(value / 1000, UTC)


class Base(DeclarativeBase):
    type_annotation_map = {datetime: Timestamp()}  # noqa: RUF012 - SQLAlchemy API


class Account(Base):
    """A watched account. `state`: "active", "paused" (a permanent error: bad key,
    permission) or "refused" (the key can withdraw)."""

    __tablename__ = "accounts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    exchange: Mapped[str] = mapped_column(String(40))
    sub_account: Mapped[str | None] = mapped_column(String(120))
    collateral: Mapped[str] = mapped_column(String(20))
    state: Mapped[str] = mapped_column(String(20), default="active")
    state_reason: Mapped[str | None] = mapped_column(Text)
    state_since: Mapped[datetime | None]
    last_attempt_at: Mapped[datetime | None]
    last_success_at: Mapped[datetime | None]
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    # The newest snapshot, kept on the account so "latest per account" is one join:
    latest_snapshot_id: Mapped[int | None] = mapped_column(BigInteger)
    # ...and its snapshot document (no raw info), for the dashboard's what-ifs
    latest_document: Mapped[str | None] = mapped_column(Text)


class AccountSnapshot(Base):
    """One successful poll of one account: the cross pool's figures and the worst pool."""

    __tablename__ = "account_snapshots"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    taken_at: Mapped[datetime]
    exchange_time: Mapped[datetime | None]
    wallet_balance: Mapped[float] = mapped_column(Float)
    equity: Mapped[float] = mapped_column(Float)
    maintenance_margin: Mapped[float] = mapped_column(Float)
    health: Mapped[float | None] = mapped_column(Float)
    margin_ratio: Mapped[float | None] = mapped_column(Float)
    worst_health: Mapped[float | None] = mapped_column(Float)
    deficit: Mapped[float] = mapped_column(Float)
    topup_to_target: Mapped[float] = mapped_column(Float)
    target_health: Mapped[float] = mapped_column(Float)
    nearest_distance: Mapped[float | None] = mapped_column(Float)
    positions: Mapped[int] = mapped_column(Integer)
    latency_ms: Mapped[int | None] = mapped_column(Integer)
    touch_probability: Mapped[float | None] = mapped_column(Float)  # highest of any position, 24 h
    funding_health_1d: Mapped[float | None] = mapped_column(Float)  # cross health if prices hold
    funding_health_3d: Mapped[float | None] = mapped_column(Float)
    funding_health_7d: Mapped[float | None] = mapped_column(Float)
    funding_breach_hours: Mapped[float | None] = mapped_column(Float)  # funding alone -> warning
    level: Mapped[int | None] = mapped_column(Integer)  # the risk level: 0 ok, 1 warning, 2 critical
    danger_chance: Mapped[float | None] = mapped_column(Float)  # highest chance over the level's horizon
    nearest_symbol: Mapped[str | None] = mapped_column(String(60))  # the position nearest liquidation
    nearest_side: Mapped[str | None] = mapped_column(String(5))  # its side: long | short
    nearest_liquidation_side: Mapped[str | None] = mapped_column(String(4))  # down | up
    nearest_liquidation_price: Mapped[float | None] = mapped_column(Float)
    nearest_sigma: Mapped[float | None] = mapped_column(Float)  # nearest distance in daily σ
    # None: a poll. "mark_stream": the last polled positions at a streamed mark (an estimate
    # between polls), the positions as of `positions_as_of`
    source: Mapped[str | None] = mapped_column(String(12))
    positions_as_of: Mapped[datetime | None]

    __table_args__ = (
        # "latest per account" and "history of one account" are both range scans on this
        Index("ix_account_snapshots_account_time", "account_id", "taken_at"),
    )


class PositionSnapshot(Base):
    """Every engine output per position of one account snapshot."""

    __tablename__ = "position_snapshots"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    snapshot_id: Mapped[int] = mapped_column(ForeignKey("account_snapshots.id", ondelete="CASCADE"))
    symbol: Mapped[str] = mapped_column(String(60))
    side: Mapped[str] = mapped_column(String(5))
    margin_mode: Mapped[str] = mapped_column(String(8))
    contracts: Mapped[float] = mapped_column(Float)
    contract_size: Mapped[float] = mapped_column(Float)
    entry_price: Mapped[float] = mapped_column(Float)
    mark_price: Mapped[float] = mapped_column(Float)
    notional: Mapped[float] = mapped_column(Float)
    unrealized_pnl: Mapped[float] = mapped_column(Float)
    maintenance_margin: Mapped[float] = mapped_column(Float)
    leverage: Mapped[float | None] = mapped_column(Float)
    isolated_margin: Mapped[float | None] = mapped_column(Float)
    liquidation_price: Mapped[float | None] = mapped_column(Float)
    exchange_liquidation_price: Mapped[float | None] = mapped_column(Float)
    disagrees: Mapped[bool] = mapped_column(Boolean)
    distance: Mapped[float | None] = mapped_column(Float)
    distance_sigma: Mapped[float | None] = mapped_column(Float)
    health: Mapped[float | None] = mapped_column(Float)  # isolated positions: their pool's
    volatility: Mapped[float | None] = mapped_column(Float)  # daily σ of log returns
    touch_probability: Mapped[float | None] = mapped_column(Float)  # of either liquidation price, 24 h
    liquidation_price_down: Mapped[float | None] = mapped_column(Float)  # below the mark
    liquidation_price_up: Mapped[float | None] = mapped_column(Float)  # above the mark
    liquidation_side: Mapped[str | None] = mapped_column(String(4))  # of liquidation_price: down | up
    level: Mapped[int | None] = mapped_column(Integer)  # the position's risk level
    # alert prices of this symbol (the rest of its pool at mark): where its pool enters
    # warning / critical, below and above the mark (margin.alert_prices)
    warning_price_down: Mapped[float | None] = mapped_column(Float)
    warning_price_up: Mapped[float | None] = mapped_column(Float)
    critical_price_down: Mapped[float | None] = mapped_column(Float)
    critical_price_up: Mapped[float | None] = mapped_column(Float)

    __table_args__ = (Index("ix_position_snapshots_snapshot", "snapshot_id"),)


class HourlySnapshot(Base):
    """Raw snapshots older than the retention window, one row per account and hour."""

    __tablename__ = "account_snapshots_hourly"

    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True)
    hour: Mapped[datetime] = mapped_column(primary_key=True)
    last_equity: Mapped[float] = mapped_column(Float)
    last_maintenance_margin: Mapped[float] = mapped_column(Float)
    min_health: Mapped[float | None] = mapped_column(Float)
    max_margin_ratio: Mapped[float | None] = mapped_column(Float)
    samples: Mapped[int] = mapped_column(Integer)


class PollError(Base):
    __tablename__ = "poll_errors"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    occurred_at: Mapped[datetime]
    kind: Mapped[str] = mapped_column(String(20))  # temporary | permanent | data
    error_class: Mapped[str | None] = mapped_column(String(80))
    message: Mapped[str] = mapped_column(Text)

    __table_args__ = (Index("ix_poll_errors_account_time", "account_id", "occurred_at"),)


class KeyCheck(Base):
    __tablename__ = "key_checks"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    checked_at: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(20))  # read-only | trade | refused | unverified
    can_trade: Mapped[bool] = mapped_column(Boolean)
    can_withdraw: Mapped[bool] = mapped_column(Boolean)
    detail: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (Index("ix_key_checks_account_time", "account_id", "checked_at"),)


class AlertState(Base):
    """Where one alert rule stands for one subject of one account (see alerts.rules)."""

    __tablename__ = "alert_states"

    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True)
    subject: Mapped[str] = mapped_column(String(120), primary_key=True)
    level: Mapped[int] = mapped_column(Integer)
    counts: Mapped[str] = mapped_column(String(60))  # JSON list of consecutive breaching polls
    since: Mapped[datetime | None]
    last_notified: Mapped[datetime | None]
    value: Mapped[float | None] = mapped_column(Float)
    # acknowledged at this level (/ack): no repeats until the level changes, which clears it
    acked_level: Mapped[int | None] = mapped_column(Integer)
    acked_at: Mapped[datetime | None]
    acked_by: Mapped[str | None] = mapped_column(String(120))
    # polls have fitted a lower level since `calm_since`, and OK since `clear_since`; the
    # level steps down once such a run has lasted the recovery dwell (alerts.rules)
    calm_since: Mapped[datetime | None]
    clear_since: Mapped[datetime | None]


class AlertTransition(Base):
    """Every change of level (and every repeat): the alert history. `account_id` is NULL
    for the monitor's own alerts (a poller that cannot write, a silent poller)."""

    __tablename__ = "alert_transitions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    subject: Mapped[str] = mapped_column(String(120))
    kind: Mapped[str] = mapped_column(String(20))  # fired | escalated | recovered | resolved | repeat
    from_level: Mapped[int] = mapped_column(Integer)
    to_level: Mapped[int] = mapped_column(Integer)
    value: Mapped[float | None] = mapped_column(Float)
    at: Mapped[datetime]
    muted: Mapped[bool] = mapped_column(Boolean)
    notification_id: Mapped[int | None] = mapped_column(BigInteger)

    __table_args__ = (Index("ix_alert_transitions_account_time", "account_id", "at"),)


class AlertNotification(Base):
    """One message per account per cycle, listing every rule that changed; `account_id`
    NULL for the monitor's own messages (its alerts, the daily digest)."""

    __tablename__ = "alert_notifications"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    created_at: Mapped[datetime]
    level: Mapped[int] = mapped_column(Integer)
    subject_line: Mapped[str] = mapped_column(Text)
    body_text: Mapped[str] = mapped_column(Text)
    body_html: Mapped[str] = mapped_column(Text)
    payload: Mapped[str] = mapped_column(Text)  # JSON, for webhooks
    recipients: Mapped[str] = mapped_column(Text)  # JSON list of email addresses
    # Identity (alerts.identity): ids no other database holds, the same on every resend
    uuid: Mapped[str | None] = mapped_column(String(36))
    message_id: Mapped[str | None] = mapped_column(String(255))  # "<alert-uuid@domain>"
    incident_id: Mapped[str | None] = mapped_column(String(36))
    thread_id: Mapped[str | None] = mapped_column(String(255))  # the incident's first Message-ID

    __table_args__ = (Index("ix_alert_notifications_uuid", "uuid", unique=True),)


class AlertIncident(Base):
    """One account's episode above OK, from the poll its worst level left OK to the poll it
    came back: the messages of it share one email thread. `worst_*`: its worst moment."""

    __tablename__ = "alert_incidents"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)  # a uuid
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    opened_at: Mapped[datetime]
    closed_at: Mapped[datetime | None]
    first_level: Mapped[int] = mapped_column(Integer)
    worst_level: Mapped[int] = mapped_column(Integer)
    worst_at: Mapped[datetime]
    worst_distance: Mapped[float | None] = mapped_column(Float)  # signed, fraction of mark
    worst_detail: Mapped[str | None] = mapped_column(Text)  # the headline figures then
    root_message_id: Mapped[str | None] = mapped_column(String(255))  # its first message's

    __table_args__ = (Index("ix_alert_incidents_account_open", "account_id", "closed_at"),)


class AlertDelivery(Base):
    """The outbox: one row per notification and channel. A sender claims a row by
    compare-and-set (pending -> sending), so two senders never send it twice; a delivered
    row is never sent again."""

    __tablename__ = "alert_deliveries"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    notification_id: Mapped[int] = mapped_column(ForeignKey("alert_notifications.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(80))  # "email" | "webhook:<name>" | "telegram:<name>"
    status: Mapped[str] = mapped_column(String(20))  # pending | sending | sent | failed | muted
    attempts: Mapped[int] = mapped_column(Integer)
    next_attempt_at: Mapped[datetime]
    claimed_at: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (Index("ix_alert_deliveries_status_next", "status", "next_attempt_at"),)


class Silence(Base):
    """Mute one account (or all, account_id NULL) until `ends_at`; state still advances."""

    __tablename__ = "silences"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]
    reason: Mapped[str | None] = mapped_column(Text)


class MarketStat(Base):
    """The latest public data of one market: volatility, beta to BTC, funding, order book."""

    __tablename__ = "market_stats"

    exchange: Mapped[str] = mapped_column(String(40), primary_key=True)
    symbol: Mapped[str] = mapped_column(String(60), primary_key=True)
    updated_at: Mapped[datetime]
    volatility: Mapped[float | None] = mapped_column(Float)  # daily σ of log returns
    beta: Mapped[float | None] = mapped_column(Float)  # to BTC, hourly log returns
    funding_rate: Mapped[float | None] = mapped_column(Float)
    predicted_funding_rate: Mapped[float | None] = mapped_column(Float)
    funding_interval_hours: Mapped[float | None] = mapped_column(Float)
    hours_to_funding: Mapped[float | None] = mapped_column(Float)
    order_book: Mapped[str | None] = mapped_column(Text)  # JSON {"bids", "asks"}, contracts
    order_book_at: Mapped[datetime | None]
    price_tick: Mapped[float | None] = mapped_column(Float)  # the market's price precision


class LiquidationEvent(Base):
    """A position the venue liquidated, as its history shows it."""

    __tablename__ = "liquidation_events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    symbol: Mapped[str] = mapped_column(String(60))
    side: Mapped[str] = mapped_column(String(5))
    occurred_at: Mapped[datetime]
    detected_at: Mapped[datetime]
    price: Mapped[float | None] = mapped_column(Float)
    contracts: Mapped[float | None] = mapped_column(Float)
    source: Mapped[str] = mapped_column(String(40))  # fetch_my_liquidations | fetch_my_trades
    detail: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (Index("ix_liquidation_events_account_time", "account_id", "occurred_at"),)


class PollerProcess(Base):
    """One running (or stopped, or dead) `marginwatch poll` process. Times come from the
    database's clock, so pollers on machines whose clocks disagree compare alike; the
    watchdog reads `last_cycle_at`."""

    __tablename__ = "pollers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime]
    seen_at: Mapped[datetime]  # every cycle's start: alive (leases count the live pollers)
    last_cycle_at: Mapped[datetime | None]  # every completed cycle's end
    stopped_at: Mapped[datetime | None]  # a clean stop
    interval_seconds: Mapped[float] = mapped_column(Float)


class AccountLease(Base):
    """Which poller polls an account (PostgreSQL, several pollers): claimed by
    compare-and-set for one numbered interval at a time (interval = database time //
    poll interval), so two pollers never poll one account in the same interval."""

    __tablename__ = "account_leases"

    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True)
    poller_id: Mapped[int | None] = mapped_column(Integer)
    interval_no: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[datetime]


class AlertDigest(Base):
    """The daily digest, once per day whichever poller writes it (the day is the key)."""

    __tablename__ = "alert_digests"

    day: Mapped[str] = mapped_column(String(10), primary_key=True)  # YYYY-MM-DD, UTC
    created_at: Mapped[datetime]
    notification_id: Mapped[int | None] = mapped_column(BigInteger)


class StreamState(Base):
    """One websocket stream as the poller last saw it (connectors.streams): a venue's mark
    stream ("marks:<venue>") or an account's position/balance stream ("account:<name>"),
    and per account the newest streamed mark ("marks:<name>"). Written every few seconds."""

    __tablename__ = "stream_states"

    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    kind: Mapped[str] = mapped_column(String(8))  # marks | account
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    connected: Mapped[bool] = mapped_column(Boolean)
    stale: Mapped[bool] = mapped_column(Boolean)
    last_message_at: Mapped[datetime | None]
    connected_at: Mapped[datetime | None]
    reconnects: Mapped[int] = mapped_column(Integer)
    messages: Mapped[int] = mapped_column(Integer)
    dropped: Mapped[int] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime]
