"""The dashboard's pure parts: number formats, the alert timeline, password hashes, and
the what-ifs recomputed with the engine."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from app.access.password import hash_password, main, verify_password
from app.components import fmt
from app.views.account.whatif import WhatIf, apply, cross_figures, liquidation_markers, load, stress_curves
from app.views.alerts.data import timeline_intervals
from config.files import write_config
from config.settings import load_config, parse_config

T0 = datetime(2026, 11, 1, tzinfo=UTC)
DEMO = (Path(__file__).parent.parent / "examples" / "demo-snapshot.json").read_text()


def test_formats() -> None:
    assert fmt.price(91480.53) == "91,480.5" and fmt.price(3050.123) == "3,050.12"
    assert fmt.price(0.1523456) == "0.152346" and fmt.price(104.3) == "104.300"
    assert fmt.contracts(1.2, 0.001) == "1.200" and fmt.contracts(3.0, 1.0) == "3"
    assert fmt.money(1234.567) == "1,234.57" and fmt.money(None) == fmt.DASH
    assert fmt.age(30) == "30 s" and fmt.age(600) == "10 min" and fmt.age(None) == "never"


def test_alert_timeline_intervals() -> None:
    since, now = T0, T0 + timedelta(hours=10)
    frame = pd.DataFrame(
        [
            {
                "account": "x/a",
                "subject": "health",
                "kind": "escalated",
                "from_level": 1,
                "to_level": 2,
                "at": T0 + timedelta(hours=1),
            },
            {
                "account": "x/a",
                "subject": "health",
                "kind": "repeat",
                "from_level": 2,
                "to_level": 2,
                "at": T0 + timedelta(hours=2),
            },
            {
                "account": "x/a",
                "subject": "health",
                "kind": "resolved",
                "from_level": 2,
                "to_level": 0,
                "at": T0 + timedelta(hours=3),
            },
            {
                "account": "x/b",
                "subject": "data",
                "kind": "fired",
                "from_level": 0,
                "to_level": 1,
                "at": T0 + timedelta(hours=5),
            },
        ]
    )
    got = timeline_intervals(frame, since, now)
    assert [(r.row, r.level, r.start, r.end) for r in got.itertuples()] == [
        ("x/a · health", 1, since, T0 + timedelta(hours=1)),  # already warning when the window opened
        ("x/a · health", 2, T0 + timedelta(hours=1), T0 + timedelta(hours=3)),
        ("x/b · data", 1, T0 + timedelta(hours=5), now),  # still firing
    ]


def test_password_hashes() -> None:
    encoded = hash_password("s3cret", iterations=1000)
    assert encoded.startswith("pbkdf2_sha256$1000$")
    assert verify_password("s3cret", encoded) and not verify_password("s3cret ", encoded)
    assert not verify_password("s3cret", "pbkdf2_sha256$x$salt$hash")
    assert not verify_password("s3cret", "md5$1$a$b")


def test_hash_command_reads_stdin(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("typed password\n"))
    assert main(["hash"]) == 0
    assert verify_password("typed password", capsys.readouterr().out.strip())
    assert main([]) == 2


def test_what_ifs_move_the_health_the_right_way() -> None:
    snapshot = load(DEMO)
    now = cross_figures(snapshot)["health"]
    assert cross_figures(apply(snapshot, WhatIf(added_collateral=10_000)))["health"] > now
    assert cross_figures(apply(snapshot, WhatIf(shock=-0.02)))["health"] < now  # a long book
    btc = next(i for i, p in enumerate(snapshot.positions) if p.symbol.startswith("BTC"))
    cut = apply(snapshot, WhatIf(reduce_index=btc, reduce_contracts=1.0, slippage=0.001))
    assert cut.positions[btc].contracts == pytest.approx(snapshot.positions[btc].contracts - 1.0)
    assert cross_figures(cut)["maintenance_margin"] < cross_figures(snapshot)["maintenance_margin"]
    assert not WhatIf(shock=-0.1).changes_book and WhatIf(added_collateral=1).changes_book
    assert apply(snapshot, WhatIf()) == snapshot


def test_stress_curves_cross_liquidation_where_the_markers_say() -> None:
    snapshot = load(json.dumps({**json.loads(DEMO), "wallet_balance": 23_400.0}))  # health ~1.03
    curves = stress_curves(snapshot, "now")
    assert set(curves["pool"]) == {"cross", "isolated · LTC long"}
    markers = liquidation_markers(snapshot)
    cross = markers[markers["pool"] == "cross"]["shock"]
    assert len(cross) >= 1 and -0.01 < cross.iloc[0] < 0  # a small fall liquidates it
    assert "BTC long" in markers[markers["pool"] == "cross"]["label"].iloc[0]


def test_write_config_round_trips(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    config = parse_config(
        {
            "database_url": "sqlite:///rel/marginwatch.db",
            "poll_interval_seconds": 3,
            "alerts": {"warning_below": 1.6, "webhooks": [{"name": "ops", "url_env": "HOOK"}]},
            "accounts": [
                {
                    "name": "a",
                    "exchange": "okx",
                    "key_env": "K",
                    "secret_env": "S",
                    "passphrase_env": "P",
                    "alerts": {"rules": {"warning_below": 1.65}},
                },
                {"name": "b", "exchange": "binanceusdm", "key_env": "K2", "secret_env": "S2", "target_health": 2.0},
            ],
        }
    )
    back = load_config(write_config(config, tmp_path / "marginwatch.toml"))
    assert back.model_dump(exclude={"database_url"}) == config.model_dump(exclude={"database_url"})
    assert back.database_url == f"sqlite:///{tmp_path / 'rel' / 'marginwatch.db'}"  # for another cwd


def test_unreadable_secrets_lock_the_app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A secrets.toml with a typo must not turn a gated dashboard into an open one."""
    import streamlit as st

    from app.access import gate

    class Unreadable:
        def to_dict(self) -> dict:
            raise FileNotFoundError("Error parsing secrets file")

    broken = tmp_path / "secrets.toml"
    broken.write_text("[marginwatch_auth\n")
    monkeypatch.setattr(st, "secrets", Unreadable())
    monkeypatch.setattr(st, "get_option", lambda name: [str(broken)])
    assert gate.access_mode() == gate.BROKEN and not gate.allowed(gate.BROKEN)
    broken.unlink()  # no file at all: the open mode (127.0.0.1 only)
    assert gate.access_mode() == gate.OPEN and gate.allowed(gate.OPEN)


def test_priced_remedy_names_missing_books_and_a_book_too_thin() -> None:
    from app.views.account.remedy import TOO_LARGE, fills_frame
    from readmodels.risk import StoredBook, priced_remedy

    snapshot = load(json.dumps({**json.loads(DEMO), "wallet_balance": 23_400.0}))  # plan: cut 1.213 BTC
    missing = priced_remedy(snapshot, {}, 1.5)
    assert missing.plan.reductions and missing.priced is None and missing.missing_books == ("BTC/USDT:USDT",)
    thin = {"BTC/USDT:USDT": StoredBook({"bids": [[91400.0, 0.5]], "asks": []}, T0)}
    remedy = priced_remedy(snapshot, thin, 1.5)
    assert remedy.priced is not None and remedy.books_at == {"BTC/USDT:USDT": T0}
    row = fills_frame(remedy.priced, snapshot).iloc[0]
    assert row["book"] == f"{TOO_LARGE}: 0.713 unfilled" and row["filled"] == "0.500" and row["vwap"] == 91400.0
    assert remedy.priced.health_after < 1.5  # half the cut: the target is missed
    assert priced_remedy(load(DEMO), {}, 1.5).plan.reductions == ()  # healthy: nothing to price


def test_risk_figures_formats_and_flags() -> None:
    from app.components.fmt import funding_breach_text
    from app.views.overview.data import funding_flag

    assert fmt.chance(0.4654) == "46.5 %" and fmt.chance(0.0002) == "< 0.1 %" and fmt.chance(None) == fmt.DASH
    assert fmt.hours(16) == "16 h" and fmt.hours(146) == "146 h (6.1 d)"
    assert funding_breach_text(None, 1.5) is None and funding_breach_text(0.0, 1.5) is None  # never / already
    assert funding_breach_text(16.0, 1.6) == "Funding alone takes health below 1.6 in 16 h (prices unchanged)."
    assert funding_flag(16.0, 1.5) == "⚠ < 1.5 in 16 h" and funding_flag(None, 1.5) == fmt.DASH


def test_betas_frame_shows_the_beta_used_and_the_assumed_ones() -> None:
    from app.views.risk.data import betas_frame
    from store.schema import MarketStat

    stats = [
        MarketStat(exchange="binanceusdm", symbol="ETH/USDT:USDT", beta=1.2, updated_at=T0),
        MarketStat(exchange="okx", symbol="ETH/USDT:USDT", beta=1.4, updated_at=T0),
        MarketStat(exchange="okx", symbol="BTC/USDT:USDT", beta=None, updated_at=T0),
    ]
    frame = betas_frame(stats, ["BTC/USDT:USDT", "ETH/USDT:USDT"]).set_index("symbol")
    assert frame.loc["ETH/USDT:USDT", "beta"] == pytest.approx(1.3)  # the average, as the stress uses
    assert frame.loc["ETH/USDT:USDT", "venues"] == "binanceusdm 1.20, okx 1.40"
    assert frame.loc["BTC/USDT:USDT", "beta"] == 1.0 and "assumed" in frame.loc["BTC/USDT:USDT", "venues"]
