"""Nothing lost: the spool survives a killed process, a replay writes nothing twice, and a SQLite database
that is locked or whose path is unwritable keeps records in the spool until it is back."""
from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from datetime import datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy import func, select

from records.db import make_engine
from records.recorder import CallRecorder
from records.schema import calls, transfers
from records.spool import Spool
from records.types import CallRecord, TransferRecord
from tests.db_fixtures import db_url  # noqa: F401

ROOT = Path(__file__).resolve().parents[1]
KEY = b"test-key-not-secret"
T0 = datetime(2021, 9, 17, 9, 0, tzinfo=timezone.utc)


def call(i: int) -> CallRecord:
    return CallRecord(uniqueid=f"1631869205.{i}", dialed="12345", line="12345", caller=f"1381234{i:04d}",
                      arrived_at=T0 + timedelta(seconds=i), action="queue", target="general-12345")


def count(url: str, table=calls) -> int:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(table)).scalar_one()
    finally:
        engine.dispose()


def ids(url: str) -> list[str]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return [r[0] for r in conn.execute(select(calls.c.uniqueid))]
    finally:
        engine.dispose()


def test_spool_survives_a_killed_process(db_url, tmp_path):  # noqa: F811
    spool_dir = tmp_path / "spool"
    script = textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {str(ROOT)!r})
        from datetime import datetime, timedelta, timezone
        from records.recorder import CallRecorder
        from records.types import CallRecord, TransferRecord
        t0 = datetime(2021, 9, 17, 9, 0, tzinfo=timezone.utc)
        # The database is never reached in this process: the flush is not even started.
        rec = CallRecorder("sqlite:////nonexistent-dir/x/records.sqlite3", {str(spool_dir)!r}, b"k",
                           segment_records=7)
        for i in range(40):
            rec.record_call(CallRecord(uniqueid=f"1631869205.{{i}}", dialed="12345", line="12345",
                                       caller=f"1381234{{i:04d}}", arrived_at=t0 + timedelta(seconds=i)))
        rec.record_transfer(TransferRecord(uniqueid="1631869205.3", kind="three_way", from_line="12345",
                                           first_line="12345", started_at=t0, target_trunk="subcenter-12366"))
        print("recorded", flush=True)
        time.sleep(60)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "recorded"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL
    assert len(list(spool_dir.glob("seg-*.jsonl"))) == 6     # 41 records, 7 per segment

    rec = CallRecorder(db_url, spool_dir, KEY, auto_upgrade=True)
    try:
        assert rec.flush() == 41
    finally:
        rec.close()
    assert sorted(ids(db_url)) == sorted(f"1631869205.{i}" for i in range(40))
    assert count(db_url, transfers) == 1
    assert list(spool_dir.glob("seg-*.jsonl")) == []           # trimmed only after the commit


def test_replaying_a_segment_writes_nothing_twice(db_url, tmp_path):  # noqa: F811
    spool_dir = tmp_path / "spool"
    rec = CallRecorder(db_url, spool_dir, KEY, auto_upgrade=True)
    try:
        for i in range(10):
            rec.record_call(call(i))
        rec.record_transfer(TransferRecord(uniqueid=call(1).uniqueid, kind="attended", from_line="12345",
                                           first_line="12345", started_at=T0, target_trunk="seat-12348"))
        rec._spool.seal()
        segment = rec._spool.segments()[0]
        copy = segment.read_bytes()
        assert rec.flush() == 11
        # A crash after the commit but before the trim leaves the segment behind: put it back and replay.
        segment.write_bytes(copy)
        assert rec.flush() == 11
        for i in range(10):                      # and the engine recording the same calls again
            rec.record_call(call(i))
        rec.flush()
    finally:
        rec.close()
    assert count(db_url) == 10
    assert count(db_url, transfers) == 1


def test_torn_line_is_set_aside_and_the_rest_written(db_url, tmp_path):  # noqa: F811
    spool_dir = tmp_path / "spool"
    rec = CallRecorder(db_url, spool_dir, KEY, auto_upgrade=True)
    try:
        rec.record_call(call(1))
        rec.record_call(call(2))
        rec._spool.seal()
        segment = rec._spool.segments()[0]
        with open(segment, "ab") as handle:
            handle.write(b'{"kind":"call","row":{"uniqueid":"torn')    # power cut mid-write
        rec.record_call(call(3))
        assert rec.flush() == 3
    finally:
        rec.close()
    assert count(db_url) == 3
    rejected = [json.loads(line) for line in (spool_dir / "rejected.jsonl").read_text().splitlines()]
    assert len(rejected) == 1 and rejected[0]["reason"] == "undecodable spool line"
    assert rejected[0]["line"].startswith('{"kind":"call"')


def test_a_row_the_database_refuses_does_not_hold_back_the_others(db_url, tmp_path):  # noqa: F811
    spool_dir = tmp_path / "spool"
    rec = CallRecorder(db_url, spool_dir, KEY, auto_upgrade=True)
    try:
        rec.record_call(call(1))
        rec._spool.append("call", {"uniqueid": "bad", "line": "12345"})     # dialed/arrived_at missing
        rec.record_call(call(2))
        assert rec.flush() == 3
        assert rec.healthy
    finally:
        rec.close()
    assert sorted(ids(db_url)) == [call(1).uniqueid, call(2).uniqueid]
    (rejected,) = [json.loads(line) for line in (spool_dir / "rejected.jsonl").read_text().splitlines()]
    assert "lacks required field 'dialed'" in rejected["reason"]
    assert json.loads(rejected["line"])["row"]["uniqueid"] == "bad"


def test_a_segment_being_written_is_never_taken(tmp_path):
    writer = Spool(tmp_path / "spool")
    reader = Spool(tmp_path / "spool")
    try:
        writer.append("call", {"uniqueid": "a"})
        (path,) = reader.segments()
        with reader.take(path) as segment:
            assert segment is None                 # locked by its writer
        writer.append("call", {"uniqueid": "b"})
        writer.seal()
        with reader.take(path) as segment:
            assert [e.row["uniqueid"] for e in segment.entries] == ["a", "b"]
            with Spool(tmp_path / "spool").take(path) as other:
                assert other is None               # one flusher at a time
            reader.remove(path)
        assert reader.segments() == []
    finally:
        writer.close()
        reader.close()


def test_many_processes_share_one_spool_directory(db_url, tmp_path):  # noqa: F811
    """Classic AGI runs a process per call: they all append to one spool while another process flushes."""
    spool_dir = tmp_path / "spool"
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(ROOT)!r})
        from datetime import datetime, timedelta, timezone
        from records.recorder import CallRecorder
        from records.types import CallRecord
        worker = int(sys.argv[1])
        t0 = datetime(2021, 9, 17, 9, 0, tzinfo=timezone.utc)
        rec = CallRecorder("sqlite:////nonexistent-dir/x/records.sqlite3", {str(spool_dir)!r}, b"k",
                           segment_records=3)
        for i in range(30):
            rec.record_call(CallRecord(uniqueid=f"w{{worker}}-{{i}}", dialed="12345", line="12345",
                                       caller=None, arrived_at=t0 + timedelta(seconds=i)))
        rec._spool.close()   # exits without flushing: the segments are left for the flusher
    """)
    rec = CallRecorder(db_url, spool_dir, KEY, auto_upgrade=True)
    procs = [subprocess.Popen([sys.executable, "-c", script, str(n)]) for n in range(4)]
    try:
        while any(p.poll() is None for p in procs):
            rec.flush()                            # concurrently with the writers
        assert [p.wait(timeout=30) for p in procs] == [0, 0, 0, 0]
        rec.flush()
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
        rec.close()
    assert sorted(ids(db_url)) == sorted(f"w{n}-{i}" for n in range(4) for i in range(30))
    assert list(spool_dir.glob("seg-*.jsonl")) == []


def test_sqlite_locked_keeps_records_spooled_until_released(tmp_path):
    url = f"sqlite:///{tmp_path / 'records.sqlite3'}"
    rec = CallRecorder(url, tmp_path / "spool", KEY, op_timeout=0.2)
    try:
        rec.record_call(call(0))
        assert rec.flush() == 1                        # schema created on SQLite by default
        blocker = sqlite3.connect(tmp_path / "records.sqlite3", isolation_level=None)
        blocker.execute("BEGIN EXCLUSIVE")
        try:
            for i in range(1, 6):
                rec.record_call(call(i))
            assert rec.flush() == 0
            assert not rec.healthy
            assert len(list((tmp_path / "spool").glob("seg-*.jsonl"))) == 1
            assert rec.caller_history(call(1).caller, T0 + timedelta(minutes=1), 60).calls_in_window == 0
            for i in range(6, 9):                      # records keep coming during the outage
                rec.record_call(call(i))
            assert rec.flush() == 0
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        assert rec.flush() == 8
        assert rec.healthy
        assert rec.caller_history(call(1).caller, T0 + timedelta(minutes=1), 60).calls_in_window == 1
    finally:
        rec.close()
    assert sorted(ids(url)) == sorted(call(i).uniqueid for i in range(9))


def test_sqlite_path_unwritable_then_fixed(tmp_path):
    blocker = tmp_path / "var"
    blocker.write_text("a file where the database directory should be")
    url = f"sqlite:///{blocker / 'records.sqlite3'}"
    rec = CallRecorder(url, tmp_path / "spool", KEY, op_timeout=0.2)
    try:
        for i in range(5):
            rec.record_call(call(i))
        assert rec.flush() == 0
        assert not rec.healthy
        blocker.unlink()                               # the admin fixes the path
        assert rec.flush() == 5
    finally:
        rec.close()
    assert count(url) == 5


def test_spool_files_are_private(tmp_path):
    spool = Spool(tmp_path / "spool")
    try:
        spool.append("call", {"uniqueid": "x"})
        spool.seal()
        (segment,) = spool.segments()
        assert os.stat(segment).st_mode & 0o077 == 0
    finally:
        spool.close()


def test_health_comes_back_only_when_the_database_does(tmp_path):
    blocker = tmp_path / "var"
    blocker.write_text("not a directory")
    url = f"sqlite:///{blocker / 'records.sqlite3'}"
    rec = CallRecorder(url, tmp_path / "spool", KEY, op_timeout=0.2)
    try:
        assert rec.caller_history("13812345678", T0, 60).calls_in_window == 0
        assert not rec.healthy                     # the failed lookup said so
        assert rec.flush() == 0 and not rec.healthy   # nothing to write, and the database is still away
        blocker.unlink()
        assert rec.flush() == 0 and rec.healthy
    finally:
        rec.close()
