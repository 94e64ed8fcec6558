"""Alert identity and threads, through the store, the outbox and a loopback SMTP server:
Message-IDs unique across fresh databases and the same on a resend; one thread per account
incident; the level in force in the headline; no flapping from a wobbling position."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from alerts.service import alert_liquidation
from store.schema import AlertDelivery, AlertIncident, AlertTransition
from tests.alert_gallery import BTC, Desk, Hook, config, document
from tests.helpers import SmtpServer

JSON_HOOK = [{"name": "json", "url_env": "MW_IDENTITY_HOOK", "format": "json"}]


@pytest.fixture
def hook(monkeypatch: pytest.MonkeyPatch) -> Iterator[Hook]:
    endpoint = Hook()
    monkeypatch.setenv("MW_IDENTITY_HOOK", endpoint.url)
    yield endpoint
    endpoint.server.shutdown()


def test_message_ids_are_unique_across_fresh_databases_and_the_same_on_a_resend(
    tmp_path: Path, smtp_server: SmtpServer, hook: Hook
) -> None:
    settings = config(smtp_server.port, JSON_HOOK)
    first, second = Desk(tmp_path, settings, "first.db"), Desk(tmp_path, settings, "second.db")
    for desk in (first, second):  # the same history in two fresh databases: the same row ids
        desk.poll(document(3.0))
        assert desk.poll(document(1.08)) == 1
        assert desk.deliver() == {"sent": 2, "retry": 0, "failed": 0}
    a, b = smtp_server.inbox.messages
    assert a["Message-ID"] != b["Message-ID"]
    assert a["Message-ID"].startswith("<alert-") and a["Message-ID"].endswith("@example.org>")
    assert hook.bodies[0]["notification_id"] != hook.bodies[1]["notification_id"]

    # the one window delivery cannot close: the server took it, the process died before
    # recording it; after the lease the outbox sends it again, and it is recognisably the same
    with first.sessions.begin() as session:
        session.execute(update(AlertDelivery).values(status="sending", claimed_at=first.now))
    first.now += timedelta(seconds=settings.alerts.delivery_lease_seconds + 1)
    assert first.deliver() == {"sent": 2, "retry": 0, "failed": 0}
    resent = smtp_server.inbox.messages[2]
    assert resent["Message-ID"] == a["Message-ID"] and resent["Subject"] == a["Subject"]
    assert resent.get_body(("plain",)).get_content() == a.get_body(("plain",)).get_content()
    assert hook.bodies[2] == hook.bodies[0]  # same notification id, same figures, same time


def test_warning_critical_and_resolution_of_one_account_share_one_thread(
    tmp_path: Path, smtp_server: SmtpServer
) -> None:
    desk = Desk(tmp_path, config(smtp_server.port))
    desk.poll(document(3.0))
    desk.poll(document(1.4))
    assert desk.poll(document(1.4)) is not None  # WARNING
    assert desk.poll(document(1.08)) is not None  # CRITICAL
    assert desk.poll(document(1.08), minutes=31) is not None  # still CRITICAL: the 30-minute repeat
    for _ in range(3):
        assert desk.poll(document(3.0)) is None  # the recovery dwell
    assert desk.poll(document(3.0)) is not None  # RESOLVED
    desk.poll(document(1.4))
    assert desk.poll(document(1.4)) is not None  # a new incident
    desk.deliver()
    warning, critical, repeat, resolved, again = smtp_server.inbox.messages
    root = warning["Message-ID"]
    assert "In-Reply-To" not in warning and "References" not in warning
    for reply in (critical, repeat, resolved):
        assert reply["In-Reply-To"] == root and reply["References"] == root
    assert [m["Subject"].split(" · ")[:2] for m in (warning, critical, repeat, resolved)] == [
        ["WARNING", "binanceusdm/main"],
        ["CRITICAL", "binanceusdm/main"],
        ["CRITICAL", "binanceusdm/main"],
        ["RESOLVED", "binanceusdm/main"],
    ]
    assert "  - still CRITICAL: cross health 1.08" in repeat.get_body(("plain",)).get_content().splitlines()
    # the next incident is a new thread
    assert "In-Reply-To" not in again and again["Message-ID"] not in {root, critical["Message-ID"]}
    with desk.sessions() as session:
        incidents = session.scalars(select(AlertIncident).order_by(AlertIncident.opened_at)).all()
    assert [(i.root_message_id, i.closed_at is not None) for i in incidents] == [
        (root, True),
        (again["Message-ID"], False),
    ]


def test_the_resolution_says_what_it_was_for_how_long_and_where_it_is_now(
    tmp_path: Path, smtp_server: SmtpServer
) -> None:
    desk = Desk(tmp_path, config(smtp_server.port))
    desk.poll(document(3.0))  # 13:01
    assert desk.poll(document(1.08)) is not None  # 13:02 CRITICAL
    desk.poll(document(1.02))  # 13:03, the worst moment: 0.2 % from liquidation
    for _ in range(4):
        desk.poll(document(3.0))  # 13:04 .. 13:07: resolved after the 3-minute dwell
    desk.deliver()
    _, resolved = smtp_server.inbox.messages
    # 10.2 + (P - 100) = 0.1 P  =>  P = 99.78; 3.0  =>  P = 77.78, 22 % below the mark
    assert (
        resolved["Subject"]
        == "RESOLVED · binanceusdm/main · after 5 min (at worst CRITICAL) · now BTC 22 % from liq 77.78"
    )
    lines = resolved.get_body(("plain",)).get_content().splitlines()
    assert lines[3:7] == [
        "Resolved:",
        "  - at risk from 13:02:00 UTC to 13:07:00 UTC (5 min)",
        "  - at worst CRITICAL: BTC 0.2 % from liq 99.78",
        "  - now: BTC long 22 % from liquidation at 77.78 USDT (down)",
    ]


def test_the_headline_stays_critical_when_a_leg_recovers_while_the_pool_is_critical(
    tmp_path: Path, smtp_server: SmtpServer
) -> None:
    desk = Desk(tmp_path, config(smtp_server.port))
    assert desk.poll(document(1.08, isolated_health=1.1)) is not None  # the pool and the leg CRITICAL
    for _ in range(3):
        assert desk.poll(document(1.08, isolated_health=5.0)) is None  # the leg's recovery dwell
    assert desk.poll(document(1.08, isolated_health=5.0)) is not None
    desk.deliver()
    _, recovered = smtp_server.inbox.messages
    with desk.sessions() as session:
        told = session.scalars(select(AlertTransition).where(AlertTransition.notification_id == 2)).all()
    assert [(t.subject, t.kind) for t in told] == [("position:ETH/USDT:USDT:long", "resolved")]  # all that changed
    assert recovered["Subject"].startswith("CRITICAL · binanceusdm/main · BTC 0.9 % from liq 99.11")
    text = recovered.get_body(("plain",)).get_content().splitlines()
    assert "  - CRITICAL → OK: ETH long (isolated) health 5.00" in text
    assert text[3] == "Do now:"  # and the remedy for what is still critical


def test_a_leg_past_liquidation_is_named_so(tmp_path: Path, smtp_server: SmtpServer) -> None:
    """Issue 20: a leg past its liquidation price (health 0.94) showed the cross health in the
    subject. The headline is the leg, past its price."""
    desk = Desk(tmp_path, config(smtp_server.port))
    assert desk.poll(document(2.0, isolated_health=0.94)) is not None
    desk.deliver()
    (message,) = smtp_server.inbox.messages
    # equity 2 + 2.4 x 0.94 - 2 + (P - 48) = 0.05 P ... at 48: 0.256 below the requirement
    assert message["Subject"].startswith("CRITICAL · binanceusdm/main · ETH long (isolated) PAST LIQUIDATION at 48.")
    text = message.get_body(("plain",)).get_content()
    assert "  - OK → CRITICAL: ETH long (isolated) health 0.94 — PAST LIQUIDATION" in text.splitlines()
    assert "away" not in text.split("Positions nearest liquidation:")[1].split("BTC long")[0]  # never "−0.3 % away"


def test_a_position_wobbling_across_the_critical_band_every_second_sends_one_escalation_and_one_resolution(
    tmp_path: Path, smtp_server: SmtpServer
) -> None:
    """Issue 20: a 20x isolated leg flapped CRITICAL → WARNING → CRITICAL in 6 s. Here the
    leg's health crosses the critical band every second for a minute (1.10, under 1.15, then
    1.30, over its 1.25 clear level), then settles far from liquidation; the clock is
    injected, one poll a second."""

    def run(desk: Desk, seconds: int = 60, settle: bool = True) -> list[tuple[str, str]]:
        for second in range(seconds):
            desk.poll(document(3.0, isolated_health=1.10 if second % 2 == 0 else 1.30), minutes=1 / 60)
        for _ in range(8 if settle else 0):  # then settled, four minutes (polled every 30 s)
            desk.poll(document(3.0, isolated_health=5.0), minutes=0.5)
        desk.deliver()
        with desk.sessions() as session:
            rows = session.scalars(
                select(AlertTransition).where(AlertTransition.notification_id.is_not(None)).order_by(AlertTransition.id)
            )
            return [(t.subject, t.kind) for t in rows]

    told = run(Desk(tmp_path, config(smtp_server.port), "dwell.db"))
    escalation, resolution = smtp_server.inbox.messages
    assert escalation["Subject"].startswith("CRITICAL · ") and resolution["Subject"].startswith("RESOLVED · ")
    assert resolution["In-Reply-To"] == escalation["Message-ID"]
    kinds = [kind for _, kind in told]
    assert kinds.count("fired") + kinds.count("escalated") >= 1 and "recovered" not in kinds
    assert {k for k in kinds if k not in ("fired", "escalated")} == {"resolved"}
    # without the dwell, the same wobble is a message every second (20 seconds of it here)
    flapping = run(Desk(tmp_path, config(smtp_server.port, recovery_dwell_minutes=0), "flap.db"), 20, settle=False)
    assert len(smtp_server.inbox.messages) - 2 >= 19 and len(flapping) >= 19


def test_a_confirmed_liquidation_joins_the_open_incident_thread(tmp_path: Path, smtp_server: SmtpServer) -> None:
    desk = Desk(tmp_path, config(smtp_server.port))
    assert desk.poll(document(1.08)) is not None
    event = {
        "symbol": BTC,
        "side": "long",
        "price": 99.1111,
        "source": "fetch_my_liquidations",
        "occurred_at": desk.now,
    }
    notification_id = alert_liquidation(desk.sessions, desk.config, desk.account, desk.id, event, desk.now)
    assert notification_id is not None
    desk.deliver()
    critical, liquidated = smtp_server.inbox.messages
    assert liquidated["Subject"] == "LIQUIDATED · binanceusdm/main · BTC long at 99.11"
    assert "BTC long liquidated at 99.11" in liquidated.get_body(("plain",)).get_content().splitlines()
    assert liquidated["In-Reply-To"] == critical["Message-ID"]
    payload = json.loads(desk.notifications()[1].payload)
    assert payload["kind"] == "liquidated" and payload["incident_id"] == desk.notifications()[0].incident_id


def test_migration_0007_gives_stored_notifications_ids_and_goes_down_again(db_url: str) -> None:
    """Up from 0006 with a notification written before ids were (it gets ids no other
    database holds), down again, on SQLite and PostgreSQL; the head matches store.schema."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from sqlalchemy import inspect, text

    from store.db import downgrade, make_engine, upgrade
    from store.schema import Base

    upgrade(db_url, "0006")
    engine = make_engine(db_url)
    account = "INSERT INTO accounts (id, name, exchange, collateral, state, consecutive_failures) VALUES "
    notification = (
        "INSERT INTO alert_notifications (account_id, created_at, level, subject_line, body_text, "
        "body_html, payload, recipients) VALUES (1, 0, 2, 's', 't', 'h', '{}', '[]')"
    )
    with engine.begin() as conn:
        conn.execute(text(account + "(1, 'main', 'okx', 'USDT', 'active', 0)"))
        conn.execute(text(notification))
        conn.execute(text(notification))
    upgrade(db_url)
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT uuid, message_id FROM alert_notifications")).all()
        assert len({r.uuid for r in rows}) == 2 and all(
            r.message_id == f"<alert-{r.uuid}@marginwatch.invalid>" for r in rows
        )
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    ours = {"alert_incidents", "alert_notifications", "alert_states", "market_stats"}
    assert [d for d in diff if any(table in repr(d) for table in ours)] == []
    downgrade(db_url, "0006")
    inspector = inspect(make_engine(db_url))
    assert "alert_incidents" not in inspector.get_table_names()
    assert "uuid" not in {c["name"] for c in inspector.get_columns("alert_notifications")}
    assert "price_tick" not in {c["name"] for c in inspector.get_columns("market_stats")}
    upgrade(db_url)


def test_an_upgrade_that_fails_half_way_leaves_nothing_behind(db_url: str) -> None:
    """Each upgrade is one transaction, on SQLite too: a process killed (here: an error) in
    the middle of revision 0007 leaves the schema at 0006, and the next start upgrades it."""
    import sqlalchemy as sa
    from sqlalchemy import inspect, text

    from store.db import make_engine, upgrade

    upgrade(db_url, "0006")
    engine = make_engine(db_url)
    with engine.begin() as conn:  # a name 0007 will want, so that it fails after its first steps
        conn.execute(text("CREATE INDEX ix_alert_notifications_uuid ON silences (reason)"))
    with pytest.raises(sa.exc.SQLAlchemyError):
        upgrade(db_url)
    inspector = inspect(make_engine(db_url))
    assert "alert_incidents" not in inspector.get_table_names()  # created first, rolled back
    assert "uuid" not in {c["name"] for c in inspector.get_columns("alert_notifications")}
    with engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == "0006"
    with engine.begin() as conn:
        conn.execute(text("DROP INDEX ix_alert_notifications_uuid"))
    upgrade(db_url)
    assert "alert_incidents" in inspect(make_engine(db_url)).get_table_names()
