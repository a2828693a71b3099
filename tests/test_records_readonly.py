"""Defect 13: a SQLite database that is read-only when the engine starts, then fixed while it runs: the spooled
records reach SQL within the back-off (no restart), and the caller history (the abuse rule) sees them."""
from __future__ import annotations

import asyncio
import subprocess
import time
from datetime import datetime, timedelta, timezone

import pytest

from records.db import make_engine, upgrade
from records.recorder import CallRecorder
from records.types import CallRecord
from tests.test_records_spool import count

KEY = b"test-key-not-secret"
T0 = datetime(2021, 9, 17, 9, 0, tzinfo=timezone.utc)


@pytest.fixture
def read_only_sqlite(tmp_path):
    """A SQLite file with its schema, mounted read-only over itself (root ignores file modes); `fix()` lifts the
    read-only mount lazily, so connections opened meanwhile keep the read-only file, as a chmod'ed one would."""
    db = tmp_path / "records.sqlite3"
    engine = make_engine(f"sqlite:///{db}")
    upgrade(engine)
    engine.dispose()
    for args in (["mount", "--bind", str(db), str(db)], ["mount", "-o", "remount,ro,bind", str(db)]):
        result = subprocess.run(args, capture_output=True, text=True)
        if result.returncode != 0:
            subprocess.run(["umount", "-l", str(db)], capture_output=True)
            pytest.skip(f"cannot make a read-only bind mount here: {result.stderr.strip()}")
    mounted = [True]

    def fix() -> None:
        subprocess.run(["umount", "-l", str(db)], check=True)
        mounted[0] = False

    try:
        yield f"sqlite:///{db}", fix
    finally:
        if mounted[0]:
            subprocess.run(["umount", "-l", str(db)], capture_output=True)


async def until(check, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.02)


async def test_sqlite_read_only_at_start_recovers_without_a_restart(read_only_sqlite, tmp_path):
    url, fix = read_only_sqlite
    rec = CallRecorder(url, tmp_path / "spool", KEY, flush_interval=0.05, max_backoff=0.4, op_timeout=0.5)
    task = asyncio.create_task(rec.run())
    try:
        caller = "13812345678"
        rec.record_call(CallRecord(uniqueid="u1", dialed="12345", line="12345", caller=caller, arrived_at=T0))
        await until(lambda: not rec.healthy, 5, "the recorder to find the database read-only")
        assert rec._spool.pending_segments() == 1 and count(url) == 0
        fix()
        await until(lambda: rec.healthy, 5, "records.database_back within the back-off")
        await until(lambda: count(url) == 1, 5, "the spooled record in SQL")
        history = await asyncio.to_thread(rec.caller_history, caller, T0 + timedelta(minutes=1), 60)
        assert history.calls_in_window == 1
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        rec.close()
    assert count(url) == 1
