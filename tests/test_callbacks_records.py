"""Callback requests on SQLite and PostgreSQL: the number is encrypted before the spool, never in clear in the
database, the spool or the logs; an agent takes a request once and gets the number once; a wrong key is a clear
error that changes nothing; done erases the encrypted number."""
from __future__ import annotations

import io
import socket
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import Column, MetaData, Table, insert, select

from records import callbacks
from records.callbacks import CallbackCipher, CallbackError, CallbackKeyError
from records.db import make_engine, upgrade
from records.keys import CALLBACK, configured_callback_key, existing, load_or_generate
from records.recorder import CallRecorder
from records.schema import callback_requests, metadata, supervisor_actions
from records.types import CallbackRequest
from scripts.logsetup import configure_logging
from tests.db_fixtures import db_url, pg_url  # noqa: F401

KEY = b"test-hash-key"
CALLBACK_KEY = Fernet.generate_key()
NUMBER = "13987654321"
AT = datetime(2026, 11, 26, 9, 30, tzinfo=timezone.utc)


def request(uniqueid: str = "1764149400.7", number: str = NUMBER, minutes: int = 0,
            queue: str = "general-12345") -> CallbackRequest:
    return CallbackRequest(uniqueid=uniqueid, line="12345", queue=queue, number=number,
                           requested_at=AT + timedelta(minutes=minutes), language="zh")


def record(db_url: str, spool: Path, *reqs: CallbackRequest, key: bytes = CALLBACK_KEY) -> int:
    """Record and flush; returns the records written (those already spooled included)."""
    rec = CallRecorder(db_url, spool, KEY, auto_upgrade=True, callback_key=key)
    try:
        for r in reqs:
            rec.record_callback(r)
        written = rec.flush()
        assert rec.healthy and written >= len(reqs)
        return written
    finally:
        rec.close()


def database_text(db_url: str) -> str:
    """Every value of every table, as text (and the SQLite files' bytes), to look for a clear number in."""
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            parts = [repr(list(conn.execute(select(table)))) for table in metadata.sorted_tables]
    finally:
        engine.dispose()
    if db_url.startswith("sqlite:///"):
        base = Path(db_url.removeprefix("sqlite:///"))
        for path in base.parent.glob(base.name + "*"):
            parts.append(path.read_bytes().decode("latin-1"))
    return "\n".join(parts)


def unreachable_pg_url() -> str:
    """A PostgreSQL URL on a local port nobody listens on: connections are refused at once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"postgresql+psycopg://postgres@127.0.0.1:{port}/down"


@pytest.fixture
def log_stream():
    stream = io.StringIO()
    configure_logging(level="debug", fmt="json", stream=stream)
    return stream


# --- keys -------------------------------------------------------------------------------------------
def test_callback_key_generated_once_private_logged_and_configured_key_wins(tmp_path, log_stream):
    assert existing(CALLBACK, None, tmp_path) is None
    generated = load_or_generate(CALLBACK, None, tmp_path)
    path = tmp_path / "callback.key"
    assert path.stat().st_mode & 0o777 == 0o600
    CallbackCipher(generated)                       # a usable Fernet key
    assert "records.callback_key_generated" in log_stream.getvalue()
    assert generated.decode() not in log_stream.getvalue()
    assert load_or_generate(CALLBACK, None, tmp_path) == generated == existing(CALLBACK, None, tmp_path)
    assert log_stream.getvalue().count("records.callback_key_generated") == 1
    assert load_or_generate(CALLBACK, "configured", tmp_path) == b"configured"


def test_callback_key_from_the_environment_or_the_secrets_file(tmp_path, monkeypatch):
    monkeypatch.delenv("HOTLINE_CALLBACK_KEY", raising=False)
    monkeypatch.delenv("HOTLINE_SECRETS_FILE", raising=False)
    assert configured_callback_key() is None
    secrets_file = tmp_path / "secrets.env"
    secrets_file.write_text("HOTLINE_CALLBACK_KEY=from-the-file\n")
    monkeypatch.setenv("HOTLINE_SECRETS_FILE", str(secrets_file))
    assert configured_callback_key() == "from-the-file"
    monkeypatch.setenv("HOTLINE_CALLBACK_KEY", "from-the-environment")
    assert configured_callback_key() == "from-the-environment"


def test_a_malformed_key_is_a_clear_error():
    with pytest.raises(CallbackKeyError, match="not a Fernet key.*HOTLINE_CALLBACK_KEY"):
        CallbackCipher(b"not-a-fernet-key")
    with pytest.raises(CallbackKeyError, match="empty"):
        CallbackCipher(b" , ")
    assert "key hidden" in repr(CallbackCipher(CALLBACK_KEY))


def test_a_malformed_key_stops_the_recorder_at_start_not_at_the_first_callback(tmp_path):
    with pytest.raises(CallbackKeyError, match="not a Fernet key"):
        CallRecorder(f"sqlite:///{tmp_path / 'r.sqlite3'}", tmp_path / "spool", KEY, callback_key=b"bad")


# --- the number at rest -----------------------------------------------------------------------------
def test_clear_number_never_in_database_spool_or_logs_and_take_reveals_it_once(db_url, tmp_path,  # noqa: F811
                                                                                log_stream):
    spool = tmp_path / "spool"
    # First while the database is away: the request waits in the spool, encrypted.
    down = CallRecorder(unreachable_pg_url(), spool, KEY, callback_key=CALLBACK_KEY, auto_upgrade=True,
                        op_timeout=0.5)
    down.record_callback(request())
    assert down.flush() == 0 and not down.healthy
    down.close()
    spooled = b"".join(p.read_bytes() for p in spool.iterdir() if p.is_file())
    assert b"number_encrypted" in spooled and NUMBER.encode() not in spooled
    assert record(db_url, spool) == 1               # the database is back: the spooled request arrives

    engine = make_engine(db_url)
    try:
        (pending,) = callbacks.list_callbacks(engine, status="pending")
        assert (pending.number_masked, pending.queue, pending.has_number) == ("139****4321", "general-12345", True)
        assert NUMBER not in database_text(db_url)

        taken, number = callbacks.take(engine, "1764149400.7", agent="agent-07", at=AT + timedelta(minutes=5),
                                       cipher=CallbackCipher(CALLBACK_KEY))
        assert number == NUMBER
        assert (taken.status, taken.taken_by, taken.taken_at) == ("taken", "agent-07", AT + timedelta(minutes=5))
        for agent in ("agent-08", "agent-07"):      # nobody gets it a second time, the same agent included
            with pytest.raises(CallbackError, match="already taken by agent-07 .*shown only once"):
                callbacks.take(engine, taken.record_id, agent=agent, at=AT, cipher=CallbackCipher(CALLBACK_KEY))
        assert callbacks.list_callbacks(engine, status="pending") == []

        closed = callbacks.done(engine, taken.record_id, at=AT + timedelta(minutes=9), by="agent-07")
        assert (closed.status, closed.done_by, closed.has_number) == ("done", "agent-07", False)
        with engine.connect() as conn:
            assert conn.execute(select(callback_requests.c.number_encrypted)).scalar_one() is None
        with pytest.raises(CallbackError, match="done already"):
            callbacks.done(engine, taken.record_id, at=AT)
        with engine.connect() as conn:      # the audit trail: each step and each refusal, by whom
            trail = conn.execute(select(supervisor_actions.c.user, supervisor_actions.c.role,
                                        supervisor_actions.c.action, supervisor_actions.c.result,
                                        supervisor_actions.c.params)
                                 .order_by(supervisor_actions.c.record_id)).all()
        assert [tuple(t[:4]) for t in trail] == [
            ("agent-07", "agent", "callback_take", "ok"), ("agent-08", "agent", "callback_take", "error"),
            ("agent-07", "agent", "callback_take", "error"), ("agent-07", "agent", "callback_done", "ok"),
            ("-", "agent", "callback_done", "error")]
        assert trail[0].params == {"id": taken.record_id, "queue": "general-12345"}
    finally:
        engine.dispose()
    assert NUMBER not in database_text(db_url)
    for path in spool.rglob("*"):
        if path.is_file():
            assert NUMBER.encode() not in path.read_bytes()
    logs = log_stream.getvalue()
    assert "callbacks.taken" in logs and "139****4321" in logs and NUMBER not in logs


def test_wrong_key_is_a_clear_error_that_changes_nothing_and_old_keys_still_decrypt(db_url, tmp_path):  # noqa: F811
    record(db_url, tmp_path / "spool", request())
    new_key = Fernet.generate_key()
    engine = make_engine(db_url)
    try:
        with pytest.raises(CallbackKeyError, match="cannot be decrypted with the configured callback key"):
            callbacks.take(engine, "1764149400.7", agent="agent-07", at=AT, cipher=CallbackCipher(new_key))
        (still,) = callbacks.list_callbacks(engine)
        assert (still.status, still.taken_by) == ("pending", None)
        # Rotation: the new key first, the old one after it.
        _, number = callbacks.take(engine, "1764149400.7", agent="agent-07", at=AT,
                                   cipher=CallbackCipher(new_key + b"," + CALLBACK_KEY))
        assert number == NUMBER
    finally:
        engine.dispose()


def test_requests_found_by_id_or_uniqueid_listed_by_queue_and_status(db_url, tmp_path):  # noqa: F811
    record(db_url, tmp_path / "spool", request("u-1", minutes=2), request("u-1", "13900001111", minutes=1),
           request("u-2", "13700002222", queue="city-haikou"))
    engine = make_engine(db_url)
    try:
        with pytest.raises(CallbackError, match="call 'u-1' has 2 callback requests"):
            callbacks.take(engine, "u-1", agent="a", at=AT, cipher=CallbackCipher(CALLBACK_KEY))
        with pytest.raises(CallbackError, match="no callback request 'u-9'"):
            callbacks.done(engine, "u-9", at=AT)
        first = callbacks.list_callbacks(engine, queue="general-12345")
        assert [c.number_masked for c in first] == ["139****1111", "139****4321"]   # oldest first
        _, number = callbacks.take(engine, first[0].record_id, agent="a", at=AT, cipher=CallbackCipher(CALLBACK_KEY))
        assert number == "13900001111"
        assert [c.uniqueid for c in callbacks.list_callbacks(engine, status="pending")] == ["u-2", "u-1"]
        assert [c.queue for c in callbacks.list_callbacks(engine, queue="city-haikou")] == ["city-haikou"]
        with pytest.raises(CallbackError, match="agent name is required"):
            callbacks.take(engine, "u-2", agent=" ", at=AT, cipher=CallbackCipher(CALLBACK_KEY))
    finally:
        engine.dispose()


def test_a_request_from_before_revision_0002_upgrades_pending_without_a_number(db_url):  # noqa: F811
    engine = make_engine(db_url)
    try:
        upgrade(engine, "0001_initial")
        with engine.begin() as conn:
            # The table as revision 0001 made it (the current metadata would insert columns it lacks).
            old_table = Table("callback_requests", MetaData(), *(Column(c.name, c.type) for c in (
                callback_requests.c[name] for name in ("record_id", "uniqueid", "line", "queue", "number_masked",
                                                       "number_hash", "requested_at"))))
            conn.execute(insert(old_table).values(
                record_id="old/callback/x", uniqueid="old", line="12345", queue="general-12345",
                number_masked="138****5678", number_hash="0" * 64, requested_at=AT))
        upgrade(engine)
        (old,) = callbacks.list_callbacks(engine, status="pending")
        assert old.has_number is False
        with pytest.raises(CallbackError, match="no stored number.*138\\*\\*\\*\\*5678"):
            callbacks.take(engine, "old", agent="a", at=AT, cipher=CallbackCipher(CALLBACK_KEY))
        assert callbacks.done(engine, "old", at=AT).status == "done"
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_concurrent_takes_give_the_number_to_one_agent_only(pg_url, tmp_path):  # noqa: F811
    record(pg_url, tmp_path / "spool", request())
    engine = make_engine(pg_url)
    start = threading.Barrier(6, timeout=10)
    results: list[object] = []

    def agent(name: str) -> None:
        start.wait()
        try:
            results.append(callbacks.take(engine, "1764149400.7", agent=name, at=AT,
                                          cipher=CallbackCipher(CALLBACK_KEY))[1])
        except CallbackError as exc:
            results.append(exc)

    threads = [threading.Thread(target=agent, args=(f"agent-{i}",)) for i in range(6)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=20)
    finally:
        engine.dispose()
    assert len(results) == 6
    assert [r for r in results if r == NUMBER] == [NUMBER]
    assert all(isinstance(r, CallbackError) for r in results if r != NUMBER)
