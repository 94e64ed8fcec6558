"""What an exchange (or a careless setup) can do to the poller and the files it writes
(issue 16): an answer too large is a clear error and is not read past the limit; hostile
text in an answer leaves the demo polling; the database, its WAL and SHM, the demo's files
are private; logs are redacted whatever a library logs; the dashboard gets no credential."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import sqlite3
import stat
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from cli.dashboard import credential_variables, dashboard_environment
from config import redaction
from config.settings import parse_config
from poller.runtime import run_poller
from store.db import make_engine, upgrade
from tests.helpers import free_port, keyed_account, running_simulator
from tests.test_dashboard_browser import ARTIFACTS

SCENARIO = Path(__file__).parent / "fixtures" / "simulator" / "scenario.json"


def _accounts(sim_url: str, env: pytest.MonkeyPatch) -> list[dict]:
    doc = json.loads(SCENARIO.read_text())
    return [
        keyed_account(
            env,
            f"MW_SIZE_{account['venue'].upper()}",
            account["api_key"],
            account["secret"],
            name=account["venue"],
            exchange=account["venue"],
            base_url=sim_url,
            timeout_seconds=3,
        )
        for account in doc["accounts"]
        if account["api_key"] in ("bn-key", "by-key")
    ]


def test_an_answer_too_large_is_a_clear_error_and_the_other_accounts_are_polled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    database = tmp_path / "size.db"
    with running_simulator(json.loads(SCENARIO.read_text())) as sim:
        config = parse_config(
            {
                "poll_interval_seconds": 0.5,
                "database_url": f"sqlite:///{database}",
                "accounts": _accounts(sim.base_url, monkeypatch),
            }
        )
        sim.add_fault("bybit", "*", "huge_body", size=64 * 1024 * 1024)  # every Bybit answer: 64 MiB of JSON
        asyncio.run(run_poller(config, cycles=2, secrets_file={}))
    with sqlite3.connect(database) as conn:
        rows = dict(conn.execute("SELECT name, last_error FROM accounts").fetchall())
        stored = dict(
            conn.execute(
                "SELECT a.name, count(s.id) FROM accounts a LEFT JOIN account_snapshots s ON s.account_id = a.id "
                "GROUP BY a.name"
            ).fetchall()
        )
    assert "answer too large" in rows["bybit"] and "limit of 16,777,216 bytes" in rows["bybit"]
    assert stored["bybit"] == 0 and stored["binanceusdm"] >= 1 and rows["binanceusdm"] is None


def test_the_database_its_wal_and_shm_are_created_private(tmp_path: Path) -> None:
    previous = os.umask(0o022)  # the usual umask: files would be world-readable
    try:
        url = f"sqlite:///{tmp_path / 'private.db'}"
        upgrade(url)
        engine = make_engine(url)
        with engine.connect() as conn:  # a write opens the WAL and the shared memory
            conn.exec_driver_sql("CREATE TABLE probe (x INTEGER)")
            conn.commit()
            modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in tmp_path.glob("private.db*")}
        engine.dispose()
    finally:
        os.umask(previous)
    assert set(modes) == {"private.db", "private.db-wal", "private.db-shm"}
    assert all(mode == 0o600 for mode in modes.values()), {k: oct(v) for k, v in modes.items()}


def test_the_dashboard_environment_has_none_of_the_credentials(tmp_path: Path) -> None:
    config = tmp_path / "marginwatch.toml"
    config.write_text(
        "poll_interval_seconds = -1\n"  # invalid otherwise: the names are still found
        '[[accounts]]\nname = "a"\nexchange = "okx"\nkey_env = "OKX_K"\nsecret_env = "OKX_S"\n'
        'passphrase_env = "OKX_P"\n'
        '[alerts.email]\nhost = "h"\npassword_env = "SMTP_PW"\n'
        '[[alerts.webhooks]]\nname = "w"\nurl_env = "HOOK_URL"\n'
    )
    assert credential_variables(config) == {"OKX_K", "OKX_S", "OKX_P", "SMTP_PW", "HOOK_URL"}
    base = {n: "x" for n in ("OKX_K", "OKX_S", "OKX_P", "SMTP_PW", "HOOK_URL", "MARGINWATCH_DEMO_3_SECRET", "PATH")}
    environment = dashboard_environment(config, base)
    assert set(environment) == {"PATH", "MARGINWATCH_CONFIG"}


def test_no_credential_is_written_to_a_log_whatever_logs_it() -> None:
    redaction.install()
    secret, key, passphrase = "SeCrEt-5f1c2d9e8b7a", "KeY-0a9b8c7d6e5f", "PaSs-77aa88bb"
    redaction.register([secret, key, passphrase])
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    logger = logging.getLogger("ccxt.base.exchange.test")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    try:
        # what ccxt logs at DEBUG for every request: the headers carry the key, the URL the signature
        logger.debug(
            "%s %s, Request: %s %s",
            "GET",
            "https://fapi.binance.com/fapi/v3/positionRisk?timestamp=1&signature=9f8e7d6c5b4a",
            {"X-MBX-APIKEY": key, "OK-ACCESS-PASSPHRASE": passphrase},
            None,
        )
        logger.debug('{"apiKey": "unregistered-key-123", "secret": "unregistered-secret-456"}')
        try:
            raise ValueError(f"signed string was {key}{secret}")
        except ValueError:
            logger.exception("the exchange said")
        logger.debug("Authorization: Bearer token-abcdef123456")
    finally:
        logger.removeHandler(handler)
    written = out.getvalue()
    for value in (secret, key, passphrase, "9f8e7d6c5b4a", "unregistered-key-123", "unregistered-secret-456"):
        assert value not in written, value
    assert "token-abcdef123456" not in written
    assert "signature=***" in written and "'X-MBX-APIKEY': '***'" in written  # what is left says what was cut
    assert "ValueError" in written and "the exchange said" in written  # the rest is all there


def test_the_request_loggers_stay_redacted_if_a_library_replaces_the_record_factory() -> None:
    redaction.install()
    redaction.register(["KeY-replaced-factory-1"])
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    logger = logging.getLogger("ccxt.base.exchange")
    factory = logging.getLogRecordFactory()
    logging.setLogRecordFactory(logging.LogRecord)  # a library's own, not wrapping ours
    logger.addHandler(handler)
    level = logger.level
    logger.setLevel(logging.DEBUG)
    try:
        logger.debug("headers %s", {"X-MBX-APIKEY": "KeY-replaced-factory-1"})
    finally:
        logging.setLogRecordFactory(factory)
        logger.removeHandler(handler)
        logger.setLevel(level)
    assert "KeY-replaced-factory-1" not in out.getvalue() and "***" in out.getvalue()


def test_hostile_text_in_every_answer_leaves_the_demo_polling(tmp_path: Path) -> None:
    """`marginwatch demo` (its own process) while its exchange starts answering Bybit's
    requests with rich markup and markdown: the demo keeps polling every account."""
    cli = Path(sys.executable).with_name("marginwatch")
    command = [str(cli)] if cli.exists() else [sys.executable, "-c", "from cli.main import app; app()"]
    port = free_port()
    log = tmp_path / "demo.log"
    with log.open("wb") as handle:
        demo = subprocess.Popen(
            [*command, "demo", "--no-dashboard", "--interval", "1", "--port", str(port)],
            cwd=tmp_path,
            stdout=handle,
            stderr=subprocess.STDOUT,
        )
    database = tmp_path / ".marginwatch-demo" / "marginwatch.db"
    try:
        snapshots = _wait(lambda: _count(database), lambda n: n >= 3, demo, "the demo stored no snapshot")
        fault = {"venue": "bybit", "path": "*", "kind": "error_text", "text": "[/x] down [bold][link=https://e.x]y"}
        request = urllib.request.Request(  # the demo's own simulator
            f"http://127.0.0.1:{port}/_admin/faults", data=json.dumps(fault).encode(), method="POST"
        )
        with urllib.request.urlopen(request, timeout=10) as reply:  # noqa: S310
            assert reply.status == 200
        _wait(lambda: _last_error(database, "bybit-isolated"), lambda e: "[/x] down" in (e or ""), demo, "no error")
        after = _count(database)
        _wait(lambda: _count(database), lambda n: n >= after + 4, demo, "the demo stopped polling")
        assert demo.poll() is None  # still running
        # `marginwatch status` in another terminal, on the demo's config, shows the text as
        # written (a wide terminal: the problem column ends in "…" past its width, and the
        # exchange's text comes after ccxt's request line)
        status = subprocess.run(
            [*command, "status", "--config", str(tmp_path / ".marginwatch-demo" / "marginwatch.toml")],
            cwd=tmp_path,
            env={**os.environ, "COLUMNS": "400"},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert status.returncode == 0, status.stderr[-2000:]
        assert "[/x] down [bold][link=https://e.x]y" in status.stdout, status.stdout
    finally:
        demo.terminate()
        demo.wait(30)
    assert stat.S_IMODE((tmp_path / ".marginwatch-demo").stat().st_mode) == 0o700
    assert stat.S_IMODE(database.stat().st_mode) == 0o600
    shown = log.read_text(errors="replace")
    ARTIFACTS.mkdir(exist_ok=True)  # run alone, no browser test has made it
    (ARTIFACTS / "demo-hostile.log").write_text(shown)
    # the error is logged as the exchange wrote it, and the cycle's status table
    # (cli/status_table.py) shows it as text instead of failing on it
    assert snapshots >= 3 and "[/x] down" in shown
    assert "could not be shown" not in shown


def _reader(database: Path) -> sqlite3.Connection:
    """Read only, never creating the file: a test that looked before the demo made its
    database would otherwise create it itself, with the default mode, before the demo can."""
    return sqlite3.connect(f"file:{database}?mode=ro", uri=True)


def _count(database: Path) -> int:
    try:
        with _reader(database) as conn:
            return conn.execute("SELECT count(*) FROM account_snapshots").fetchone()[0]
    except sqlite3.Error:
        return 0


def _last_error(database: Path, name: str) -> str | None:
    try:
        with _reader(database) as conn:
            row = conn.execute("SELECT last_error FROM accounts WHERE name = ?", (name,)).fetchone()
    except sqlite3.Error:
        return None
    return row[0] if row else None


def _wait(read, done, process: subprocess.Popen[bytes], what: str, timeout: float = 90.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, f"the demo exited ({process.returncode})"
        value = read()
        if done(value):
            return value
        time.sleep(0.3)
    raise AssertionError(f"{what} within {timeout:g} s")


@pytest.mark.parametrize("size", [1024, 16 * 1024 * 1024])
def test_answers_up_to_the_limit_are_read_whole(size: int) -> None:
    """The cap refuses only what is beyond it: a large but allowed answer passes."""
    from connectors.client import make_client

    doc = json.loads(SCENARIO.read_text())
    account = next(a for a in doc["accounts"] if a["api_key"] == "bn-key")

    async def fetch(base_url: str) -> object:
        client = make_client("binanceusdm", base_url, account["api_key"], account["secret"])
        try:
            return await client.fapipublic_get_time()
        finally:
            await client.close()

    with running_simulator(doc) as sim:
        sim.add_fault("binanceusdm", "/fapi/v1/time", "huge_body", count=1, size=size)
        answer = asyncio.run(fetch(sim.base_url))
    assert isinstance(answer, dict) and len(answer["pad"]) == size - len('{"pad":""}')
