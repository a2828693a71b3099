"""Defect 12: a record is durable only when all of it is on disk. Short writes are finished, a write that fails
half-way (ENOSPC) leaves no torn line and the record is kept in memory; nothing reaches rejected.jsonl and
every record reaches SQL, on a fault-injecting os.write and on a real, tiny, full tmpfs."""
from __future__ import annotations

import errno
import json
import os
import subprocess
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import select

from records import spool as spool_module
from records.db import make_engine
from records.recorder import CallRecorder
from records.schema import calls
from records.spool import REJECTED, Spool
from records.types import CallRecord
from tests.db_fixtures import db_url  # noqa: F401

KEY = b"test-key-not-secret"
T0 = datetime(2021, 9, 17, 9, 0, tzinfo=timezone.utc)


def call(i: int) -> CallRecord:
    return CallRecord(uniqueid=f"1631869205.{i}", dialed="12345", line="12345", caller=f"1381234{i:04d}",
                      arrived_at=T0 + timedelta(seconds=i), action="queue", target="general-12345",
                      ivr_path=("main", "1") * 20)          # a few hundred bytes a line


def ids(url: str) -> list[str]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return sorted(r[0] for r in conn.execute(select(calls.c.uniqueid)))
    finally:
        engine.dispose()


class FaultyWrite:
    """os.write as a nearly full disk does it: `short` calls write only half of what they are given (and
    say so); then, once `fail_after` bytes went to disk, ENOSPC (after writing what still fitted)."""

    def __init__(self, real, short: int = 0, fail_after: int | None = None) -> None:
        self.real, self.short, self.fail_after, self.written = real, short, fail_after, 0
        self.failing = fail_after is not None

    def __call__(self, fd: int, data) -> int:
        data = bytes(data)
        if self.failing and self.fail_after is not None:
            room = self.fail_after - self.written
            if room < len(data):
                if room > 0:
                    self.written += self.real(fd, data[:room])   # the torn part reaches the file
                raise OSError(errno.ENOSPC, "No space left on device")
        if self.short > 0 and len(data) > 1:
            self.short -= 1
            data = data[:len(data) // 2]
        n = self.real(fd, data)
        self.written += n
        return n


def spool_lines(directory: Path) -> list[bytes]:
    return [line for path in sorted(directory.glob("seg-*.jsonl")) for line in path.read_bytes().splitlines(True)]


def test_short_writes_are_finished(tmp_path, monkeypatch):
    faulty = FaultyWrite(os.write, short=5)
    monkeypatch.setattr(spool_module.os, "write", faulty)
    spool = Spool(tmp_path / "spool")
    try:
        spool.append("call", {"uniqueid": "a", "pad": "x" * 300})
        spool.append("call", {"uniqueid": "b"})
    finally:
        spool.close()
    assert faulty.short == 0                               # the short writes did happen
    lines = spool_lines(tmp_path / "spool")
    assert [json.loads(line)["row"]["uniqueid"] for line in lines] == ["a", "b"]


def test_a_record_torn_by_enospc_is_cut_off_and_raised(tmp_path, monkeypatch):
    spool = Spool(tmp_path / "spool")
    try:
        spool.append("call", {"uniqueid": "a"})
        faulty = FaultyWrite(os.write, fail_after=20)      # 20 bytes of the next line fit, then the disk is full
        monkeypatch.setattr(spool_module.os, "write", faulty)
        with pytest.raises(OSError) as raised:
            spool.append("call", {"uniqueid": "b", "pad": "x" * 100})
        assert raised.value.errno == errno.ENOSPC and faulty.written == 20
        monkeypatch.undo()                                 # space is back before anything was sealed
        spool.append("call", {"uniqueid": "c"})
    finally:
        spool.close()
    lines = spool_lines(tmp_path / "spool")
    assert [json.loads(line)["row"]["uniqueid"] for line in lines] == ["a", "c"]   # no torn half, nothing glued


def test_nothing_lost_when_the_spool_disk_fills(db_url, tmp_path, monkeypatch):  # noqa: F811
    rec = CallRecorder(db_url, tmp_path / "spool", KEY, auto_upgrade=True)
    try:
        rec.record_call(call(0))
        faulty = FaultyWrite(os.write, fail_after=len(b"x") * 150)
        monkeypatch.setattr(spool_module.os, "write", faulty)
        for i in range(1, 6):                              # the first tears, the others find no room at all
            rec.record_call(call(i))
        monkeypatch.undo()
        rec.record_call(call(6))                           # space is back
        assert rec.flush() == 7
    finally:
        rec.close()
    assert ids(db_url) == sorted(call(i).uniqueid for i in range(7))
    assert not (tmp_path / "spool" / REJECTED).exists()


def test_records_kept_in_memory_return_to_the_spool_when_it_has_room(tmp_path, monkeypatch):
    """Disk full and database away: the records wait in memory; once the disk has room again the next flush
    puts them back in the spool (durable again) before it tries the database, which is still away."""
    rec = CallRecorder("postgresql+psycopg://postgres@127.0.0.1:1/down", tmp_path / "spool", KEY, op_timeout=0.3)
    try:
        monkeypatch.setattr(spool_module.os, "write", FaultyWrite(os.write, fail_after=0))
        for i in range(3):
            rec.record_call(call(i))
        assert rec.flush() == 0 and not rec.healthy
        assert spool_lines(tmp_path / "spool") == []
        monkeypatch.undo()
        assert rec.flush() == 0
        lines = spool_lines(tmp_path / "spool")
        assert sorted(json.loads(line)["row"]["uniqueid"] for line in lines) == [call(i).uniqueid for i in range(3)]
    finally:
        rec.close()


@pytest.fixture
def tiny_tmpfs(tmp_path):
    mount = tmp_path / "tmpfs"
    mount.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k,mode=0700", "tmpfs", str(mount)],
                            capture_output=True, text=True)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {result.stderr.strip() or result.returncode}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_real_full_tmpfs_loses_nothing(db_url, tiny_tmpfs, tmp_path):  # noqa: F811
    spool_dir = tiny_tmpfs / "spool"
    rec = CallRecorder(db_url, spool_dir, KEY, auto_upgrade=True, segment_records=100_000)
    filler = tiny_tmpfs / "filler"
    try:
        rec.flush()                                        # schema ready before the disk fills
        with open(filler, "wb") as out:                    # leave a few KB: some records fit, one tears
            try:
                out.write(b"\0" * (60 * 1024))
            except OSError:
                pass
        total = 200
        for i in range(total):
            rec.record_call(call(i))
        assert rec._unspooled, "the tmpfs never filled: the test proves nothing"
        on_disk = spool_lines(spool_dir)
        assert all(line.endswith(b"\n") and json.loads(line) for line in on_disk)   # no torn line stays
        filler.unlink()                                    # space returns before the segment was sealed
        rec.record_call(call(total))
        assert rec.flush() == total + 1
    finally:
        rec.close()
    assert ids(db_url) == sorted(call(i).uniqueid for i in range(total + 1))
    assert not (spool_dir / REJECTED).exists()
