"""Issue 14: the spool's group commit and the abuse counts in memory. Records of calls ending together share one
write() and one fsync(), each acknowledged only once durable, with one wake-up per round; a full disk still
loses nothing; the FastAGI call path asks no SQL and hops to no thread for the caller history or its record."""
from __future__ import annotations

import asyncio
import errno
import json
import os
import threading
from datetime import datetime, timedelta

import pytest

from ivr.engine import ConfigHolder, load_config
from records import spool as spool_module
from records.recorder import CallRecorder
from records.spool import REJECTED, AppendError, Spool
from records.types import CallRecord
from routing.decide import decide
from tests.test_fastagi_support import MENUS, TABLE, WORKDAY_10H, call, running_engine
from tests.test_records_full_disk import FaultyWrite, ids, spool_lines

KEY = b"test-key-not-secret"
T0 = datetime.fromisoformat(WORKDAY_10H)


def record(i: int, caller: str = "13812345678") -> CallRecord:
    return CallRecord(uniqueid=f"1764122400.{i}", dialed="12345", line="12345", caller=caller,
                      arrived_at=T0 + timedelta(seconds=i), action="queue", target="general-12345")


async def until(predicate, what: str, timeout: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.005)


# ------------------------------------------------------------------ the spool's batch append

class Counting:
    def __init__(self, real) -> None:
        self.real, self.calls = real, 0

    def __call__(self, *args):
        self.calls += 1
        return self.real(*args)


def test_a_batch_is_one_write_per_segment_it_fills(tmp_path, monkeypatch):
    spool = Spool(tmp_path / "spool", segment_records=3)
    lines = [Spool.encode("call", {"uniqueid": f"u{i}"}) for i in range(7)]
    writes = Counting(os.write)
    monkeypatch.setattr(spool_module.os, "write", writes)
    try:
        spool.append_lines(lines)
    finally:
        monkeypatch.undo()
        spool.close()
    assert writes.calls == 3                                       # 3 + 3 + 1 records
    per_segment = [len(p.read_bytes().splitlines()) for p in spool.segments()]
    assert per_segment == [3, 3, 1]


def test_a_batch_that_fails_part_way_says_how_much_is_durable_and_leaves_no_torn_line(tmp_path, monkeypatch):
    spool = Spool(tmp_path / "spool", segment_records=3)
    lines = [Spool.encode("call", {"uniqueid": f"u{i}", "pad": "x" * 50}) for i in range(7)]
    faulty = FaultyWrite(os.write, fail_after=len(b"".join(lines[:3])) + 30)   # the second segment tears
    monkeypatch.setattr(spool_module.os, "write", faulty)
    try:
        with pytest.raises(AppendError) as raised:
            spool.append_lines(lines)
    finally:
        monkeypatch.undo()
        spool.close()
    assert raised.value.durable == 3 and raised.value.errno == errno.ENOSPC
    on_disk = spool_lines(tmp_path / "spool")
    assert [json.loads(line)["row"]["uniqueid"] for line in on_disk] == ["u0", "u1", "u2"]


# ------------------------------------------------------------------ the recorder's group commit

async def test_calls_ending_together_share_one_write_and_are_acknowledged_only_once_durable(tmp_path, monkeypatch):
    gate, batches = threading.Event(), []
    real = Spool.append_lines

    def first_round_held(self, lines):
        batches.append(len(lines))
        if len(batches) == 1:
            assert gate.wait(10)          # the disk is slow: the next calls end meanwhile
        real(self, lines)

    monkeypatch.setattr(Spool, "append_lines", first_round_held)
    loop = asyncio.get_running_loop()
    wakeups = []
    real_wake = loop.call_soon_threadsafe

    def counted_wake(*args, **kwargs):
        if threading.current_thread().name == "records-commit":
            wakeups.append(args)
        return real_wake(*args, **kwargs)

    monkeypatch.setattr(loop, "call_soon_threadsafe", counted_wake)
    rec = CallRecorder(f"sqlite:///{tmp_path / 'r.sqlite3'}", tmp_path / "spool", KEY, auto_upgrade=True)
    try:
        first = rec.submit(record(0))
        await until(lambda: batches == [1], "the first round to start")
        rest = [rec.submit(record(i)) for i in range(1, 50)]
        await asyncio.sleep(0.05)
        assert not first.done() and not any(f.done() for f in rest)   # nothing acknowledged before its fsync
        gate.set()
        await asyncio.gather(first, *rest)
        assert batches == [1, 49]                                    # the 49 shared one write and one fsync
        assert len(wakeups) == 2                                     # one wake-up of the loop per round
        on_disk = sorted(json.loads(line)["row"]["uniqueid"] for line in spool_lines(tmp_path / "spool"))
        assert on_disk == sorted(record(i).uniqueid for i in range(50))
        assert rec.flush() == 50
    finally:
        monkeypatch.setattr(loop, "call_soon_threadsafe", real_wake)
        rec.close()


async def test_a_full_disk_under_group_commit_loses_nothing(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'r.sqlite3'}"
    rec = CallRecorder(url, tmp_path / "spool", KEY, auto_upgrade=True)
    try:
        await rec.submit(record(0))
        monkeypatch.setattr(spool_module.os, "write", FaultyWrite(os.write, fail_after=40))   # the next one tears
        await asyncio.gather(*(rec.submit(record(i)) for i in range(1, 6)))   # acknowledged: kept in memory
        monkeypatch.undo()
        assert all(line.endswith(b"\n") and json.loads(line) for line in spool_lines(tmp_path / "spool"))
        assert len(rec._unspooled) == 5
        await rec.submit(record(6))                                  # space is back
        assert rec.flush() == 7
    finally:
        rec.close()
    assert ids(url) == sorted(record(i).uniqueid for i in range(7))
    assert not (tmp_path / "spool" / REJECTED).exists()


async def test_a_record_submitted_after_close_is_kept_in_memory(tmp_path):
    rec = CallRecorder(f"sqlite:///{tmp_path / 'r.sqlite3'}", tmp_path / "spool", KEY, auto_upgrade=True)
    await rec.submit(record(0))
    rec.close()
    await rec.submit(record(1))                                      # resolves at once, never hangs
    assert [e.row["uniqueid"] for e in rec._unspooled] == [record(1).uniqueid]


# ------------------------------------------------------------------ the engine's call path

def limited_holder(tmp_path, max_calls: int) -> ConfigHolder:
    text = TABLE.read_text(encoding="utf-8")
    assert "  max_calls: 20\n" in text
    table = tmp_path / "routing.yaml"
    table.write_text(text.replace("  max_calls: 20\n", f"  max_calls: {max_calls}\n"), encoding="utf-8")
    return ConfigHolder(load_config(table, MENUS), table, MENUS)


async def test_the_call_path_asks_no_sql_and_no_thread_for_history_or_record(tmp_path, monkeypatch):
    rec = CallRecorder(f"sqlite:///{tmp_path / 'r.sqlite3'}", tmp_path / "spool", KEY, auto_upgrade=True)
    rec.flush()                                                      # schema ready; no flush task runs below
    seen = []

    def spy_decide(table, dialed, caller, at, history=None, **kw):
        seen.append(history.calls_in_window if history is not None else None)
        return decide(table, dialed, caller, at, history, **kw)

    def no_sql(*args, **kwargs):
        raise AssertionError("SQL on the call path")

    hops = []
    real_to_thread = asyncio.to_thread

    async def counted_to_thread(func, *args, **kwargs):
        hops.append(getattr(func, "__qualname__", repr(func)))
        return await real_to_thread(func, *args, **kwargs)

    monkeypatch.setattr(rec, "_guarded", no_sql)
    monkeypatch.setattr(rec, "caller_history", no_sql)
    monkeypatch.setattr(asyncio, "to_thread", counted_to_thread)
    try:
        async with running_engine(holder=limited_holder(tmp_path, 2), recorder=rec,
                                  decide_fn=spy_decide) as (server, _):
            results = [await call(server, "12345", ["1"], at=WORKDAY_10H, caller="13812345678",
                                  uniqueid=f"u.{i}") for i in range(4)]
            other = await call(server, "12345", ["1"], at=WORKDAY_10H, caller="13900000000", uniqueid="u.9")
    finally:
        monkeypatch.undo()
    try:
        assert seen == [0, 1, 2, 3, 0]                               # counted in memory, this call not included
        targets = [r.variables.get("HOTLINE_TARGET") for r in results]
        assert targets[3] == "abuse-review" and "abuse-review" not in targets[:3]   # 3 earlier calls: over 2
        assert other.variables.get("HOTLINE_TARGET") != "abuse-review"
        assert hops == []                                            # no thread hop per call
        assert rec._committer.committed == 5                         # every record durable via the committer
        assert rec.flush() == 5
    finally:
        rec.close()


async def test_a_dry_run_recorder_never_counts(tmp_path):
    from scripts.cli_engine import _recorder
    from scripts.settings import Settings

    settings = Settings(db_url=f"sqlite:///{tmp_path / 'r.sqlite3'}", spool_dir=tmp_path / "spool",
                        caller_hash_key="k", callback_key="nYoV3uY0y1zqLr7cJ4a8m3xgS9pT2hQe6wK5dF1bU0A=")
    rec = _recorder(settings, dry_run=True)
    try:
        assert [rec.note_arrival("13812345678", f"u{i}", T0, 60).calls_in_window for i in range(3)] == [0, 0, 0]
        for i in range(3):
            rec.record_call(record(i))
        rec.flush()
        assert rec.refresh_counts() == 0                             # reads nothing back either
        assert rec.note_arrival("13812345678", "u9", T0 + timedelta(minutes=1), 60).calls_in_window == 0
    finally:
        rec.close()
