"""Records round-trip through the spool into SQL on SQLite and PostgreSQL; the migration matches the metadata."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import func, select

from records.callbacks import CallbackCipher
from records.db import current_revision, make_engine, upgrade
from records.recorder import CallRecorder
from records.schema import callback_requests, calls, metadata, table_versions, transfers
from records.types import CallbackRequest, CallRecord, Outcome, TableVersion, TransferRecord
from routing.privacy import caller_hash
from tests.db_fixtures import db_url  # noqa: F401

SHANGHAI = ZoneInfo("Asia/Shanghai")
KEY = b"test-key-not-secret"
CALLBACK_KEY = b"nYoV3uY0y1zqLr7cJ4a8m3xgS9pT2hQe6wK5dF1bU0A="   # a Fernet key for tests only
CALLER = "13812345678"


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    from records.db import alembic_config

    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def test_migration_matches_metadata(db_url):  # noqa: F811
    engine = make_engine(db_url)
    try:
        upgrade(engine)
        upgrade(engine)   # a second run is a no-op
        assert current_revision(engine) == head_revision()
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), metadata)
        assert diff == []
    finally:
        engine.dispose()


def test_records_round_trip(db_url, tmp_path):  # noqa: F811
    arrived = datetime(2021, 9, 17, 17, 0, 5, 250000, tzinfo=SHANGHAI)
    call = CallRecord(uniqueid="1631869205.17", dialed="12320", line="12320", caller=CALLER, arrived_at=arrived,
                      category="expert", rule_id="12320-expert", action="queue", target="expert-12320",
                      ivr_path=("main", "1", "expert-12320"), tags=("health", "expert"), language="zh",
                      wait_seconds=12.5, answered_by="PJSIP/agent-07", outcome="answered",
                      hangup_cause="16", ended_at=arrived + timedelta(minutes=4), table_version="9859a869991f")
    transfer = TransferRecord(uniqueid=call.uniqueid, kind="attended", from_line="12345", first_line="12345",
                              started_at=arrived + timedelta(minutes=2), target_trunk="seat-12348",
                              ended_at=arrived + timedelta(minutes=3), outcome="returned", agent="PJSIP/agent-07")
    callback = CallbackRequest(uniqueid="1631869300.2", line="12345", queue="general-12345",
                               number="13987654321", requested_at=arrived, language="en")
    version = TableVersion(version="9859a869991f", loaded_by="admin@ops", loaded_at=arrived,
                           source="conf/routing.yaml")
    rec = CallRecorder(db_url, tmp_path / "spool", KEY, auto_upgrade=True, callback_key=CALLBACK_KEY)
    try:
        rec.record_call(call)
        rec.record_transfer(transfer)
        rec.record_callback(callback)
        rec.record_table_version(version)
        assert rec.flush() == 4
        assert rec.healthy
    finally:
        rec.close()

    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            row = conn.execute(select(calls)).mappings().one()
            assert row["uniqueid"] == "1631869205.17"
            assert row["caller_masked"] == "138****5678"
            assert row["caller_hash"] == caller_hash(CALLER, KEY)
            assert row["arrived_at"] == arrived and row["arrived_at"].tzinfo is not None
            assert row["ended_at"] == arrived + timedelta(minutes=4)
            assert row["ivr_path"] == "main>1>expert-12320" and row["tags"] == "health+expert"
            assert (row["category"], row["rule_id"], row["action"], row["target"]) == (
                "expert", "12320-expert", "queue", "expert-12320")
            assert (row["wait_seconds"], row["answered_by"], row["outcome"], row["hangup_cause"]) == (
                12.5, "PJSIP/agent-07", "answered", "16")
            assert row["table_version"] == "9859a869991f"
            t = conn.execute(select(transfers)).mappings().one()
            assert (t["kind"], t["first_line"], t["target_trunk"], t["outcome"]) == (
                "attended", "12345", "seat-12348", "returned")
            assert t["started_at"] == transfer.started_at
            cb = conn.execute(select(callback_requests)).mappings().one()
            assert cb["number_masked"] == "139****4321" and cb["number_hash"] == caller_hash("13987654321", KEY)
            assert cb["status"] == "pending" and cb["taken_by"] is None
            assert CallbackCipher(CALLBACK_KEY).decrypt(cb["number_encrypted"]) == "13987654321"
            tv = conn.execute(select(table_versions)).mappings().one()
            assert (tv["version"], tv["loaded_by"], tv["source"]) == ("9859a869991f", "admin@ops", "conf/routing.yaml")
            assert tv["loaded_at"] == arrived
    finally:
        engine.dispose()
    # The full numbers reached neither disk nor SQL.
    for path in (tmp_path / "spool").iterdir():
        if path.is_file():
            assert CALLER.encode() not in path.read_bytes() and b"13987654321" not in path.read_bytes()


def test_later_revision_adds_the_outcome_and_replays_change_nothing(db_url, tmp_path):  # noqa: F811
    arrived = datetime(2021, 10, 8, 9, 0, tzinfo=SHANGHAI)
    routed = CallRecord(uniqueid="u-1", dialed="12366", line="12366", caller=CALLER, arrived_at=arrived,
                        category="subcenter", rule_id="12366-subcenter", action="queue", target="general-12345",
                        ivr_path=("main", "2"))
    ended = CallRecord(uniqueid="u-1", dialed="12366", line="12366", caller=None, arrived_at=arrived,
                       wait_seconds=7.0, answered_by="PJSIP/agent-01", outcome=Outcome.ANSWERED,
                       ended_at=arrived + timedelta(minutes=3), revision=1)
    rec = CallRecorder(db_url, tmp_path / "spool", KEY, auto_upgrade=True)
    try:
        rec.record_call(ended)      # AMI's record may even be written first
        rec.flush()
        rec.record_call(routed)
        rec.record_call(ended)      # and be replayed
        rec.flush()
        rec.record_call(routed)
        rec.record_call(ended)
        rec.record_call(routed)     # in one batch, in any order
        rec.flush()
    finally:
        rec.close()
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(select(calls)).mappings().all()
    finally:
        engine.dispose()
    assert len(rows) == 1
    row = rows[0]
    assert row["revision"] == 1 and row["outcome"] == "answered" and row["wait_seconds"] == 7.0
    assert row["rule_id"] == "12366-subcenter" and row["ivr_path"] == "main>2"
    assert row["caller_hash"] == caller_hash(CALLER, KEY)


def test_caller_history_counts_by_keyed_hash_in_the_window(db_url, tmp_path):  # noqa: F811
    at = datetime(2021, 9, 17, 12, 0, tzinfo=timezone.utc)
    rec = CallRecorder(db_url, tmp_path / "spool", KEY, auto_upgrade=True)
    try:
        for i, minutes_ago in enumerate([1, 5, 30, 59, 61, 120]):
            rec.record_call(CallRecord(uniqueid=f"h-{i}", dialed="12345", line="12345", caller=CALLER,
                                       arrived_at=at - timedelta(minutes=minutes_ago)))
        rec.record_call(CallRecord(uniqueid="other", dialed="12345", line="12345", caller="13900000000",
                                   arrived_at=at))
        rec.flush()
        assert rec.caller_history(CALLER, at, 60).calls_in_window == 4
        assert rec.caller_history(CALLER, at, 180).calls_in_window == 6
        assert rec.caller_history("13700000000", at, 60).calls_in_window == 0
    finally:
        rec.close()


def test_values_refuse_bad_input():
    with pytest.raises(ValueError, match="timezone-aware"):
        CallRecord(uniqueid="x", dialed="12345", line="12345", caller=None, arrived_at=datetime(2021, 1, 1))
    with pytest.raises(ValueError, match="outcome='maybe' is not one of"):
        CallRecord(uniqueid="x", dialed="12345", line="12345", caller=None,
                   arrived_at=datetime(2021, 1, 1, tzinfo=timezone.utc), outcome="maybe")
    with pytest.raises(ValueError, match="kind='blind'"):
        TransferRecord(uniqueid="x", kind="blind", from_line="12345", first_line="12345",
                       started_at=datetime(2021, 1, 1, tzinfo=timezone.utc))


def test_count_helper_sanity(db_url):  # noqa: F811
    """An empty, migrated database has no rows (guards the fixtures: each test gets its own database)."""
    engine = make_engine(db_url)
    try:
        upgrade(engine)
        with engine.connect() as conn:
            assert conn.execute(select(func.count()).select_from(calls)).scalar_one() == 0
    finally:
        engine.dispose()


def test_caller_hash_key_generated_once_private_and_configured_key_wins(tmp_path):
    from records.keys import caller_hash_key, existing_key

    assert existing_key(None, tmp_path) is None
    generated = caller_hash_key(None, tmp_path)
    path = tmp_path / "caller-hash.key"
    assert path.exists() and path.stat().st_mode & 0o777 == 0o600
    assert len(generated) == 64
    assert caller_hash_key(None, tmp_path) == generated == existing_key(None, tmp_path)
    assert caller_hash_key("from-the-environment", tmp_path) == b"from-the-environment"
    assert [p.name for p in tmp_path.iterdir()] == ["caller-hash.key"]


def test_unreachable_postgresql_skips_locally_and_fails_on_ci(monkeypatch):
    import socket

    from tests.db_fixtures import fresh_pg_database

    with socket.socket() as probe:          # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("HOTLINE_TEST_PG_URL", f"postgresql+psycopg://postgres@127.0.0.1:{port}/test")
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="PostgreSQL unreachable"):
        with fresh_pg_database():
            pass
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI=true: PostgreSQL .* is required"):
        with fresh_pg_database():
            pass
