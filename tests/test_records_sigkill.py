"""Issue 14: with the spool's group commit, a SIGKILL of the engine loses no record of a call that ended more
than 50 ms before it. A real `hotline serve` (records on SQLite + spool), real calls over TCP, a real SIGKILL
while calls are ending; a new recorder then flushes what the dead process left in the spool."""
from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
import time
from pathlib import Path

import sqlalchemy as sa

from ivr.emulator import place_call
from records.recorder import CallRecorder

ROOT = Path(__file__).resolve().parents[1]
CALLBACK_KEY = "nYoV3uY0y1zqLr7cJ4a8m3xgS9pT2hQe6wK5dF1bU0A="   # a Fernet key for tests only
MARGIN = 0.050           # the promise: ended more than 50 ms before the kill -> recorded
WORKERS = 6              # calls in flight at once, so several end within the same few milliseconds
KILL_AFTER = 120         # calls ended before the kill, at least
CALLING_FOR = 0.5        # seconds of calls before the kill, at least (a fast machine ends 120 calls in 80 ms)


async def test_sigkill_loses_no_record_of_a_call_that_ended_50ms_before(tmp_path):
    db_url = f"sqlite:///{tmp_path / 'records.sqlite3'}"
    spool_dir = tmp_path / "spool"
    env = dict(os.environ, PYTHONPATH=str(ROOT), HOTLINE_DB_URL=db_url, HOTLINE_SPOOL_DIR=str(spool_dir),
               HOTLINE_CALLER_HASH_KEY="test-key", HOTLINE_CALLBACK_KEY=CALLBACK_KEY)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "scripts.hotline", "serve", "--port", "0", "--no-ami", "--no-web",
        "--pid-file", str(tmp_path / "hotline.pid"), cwd=ROOT, env=env, stderr=asyncio.subprocess.PIPE)
    try:
        port = await asyncio.wait_for(_listening_port(proc), 30)
        ended: list[tuple[str, float]] = []          # (uniqueid, when the client saw the engine close)
        enough = asyncio.Event()
        killed = False

        async def caller(worker: int) -> None:
            n = 0
            while not killed:
                uniqueid = f"1795698853.{worker}{n:05d}"
                n += 1
                t = await place_call("127.0.0.1", port, dialed="12345", dtmf=["1"], uniqueid=uniqueid,
                                     caller=f"13800{worker:02d}{n % 7:04d}", timeout=10)
                if killed:
                    return
                assert t.closed_by == "server" and not t.error, (t.closed_by, t.error)
                ended.append((uniqueid, time.monotonic()))
                if len(ended) >= KILL_AFTER and time.monotonic() - ended[0][1] >= CALLING_FOR:
                    enough.set()

        workers = [asyncio.create_task(caller(w)) for w in range(WORKERS)]
        await asyncio.wait_for(enough.wait(), 120)
        killed_at = time.monotonic()                 # right after a call ended, with others ending around it
        proc.send_signal(signal.SIGKILL)
        killed = True
        assert await asyncio.wait_for(proc.wait(), 10) == -signal.SIGKILL
        await asyncio.gather(*workers, return_exceptions=True)   # calls cut by the kill: no promise for them
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()

    must = {uniqueid for uniqueid, at in ended if at < killed_at - MARGIN}
    assert len(must) >= KILL_AFTER // 2, "too few calls ended well before the kill: the test proves nothing"
    recorder = CallRecorder(db_url, spool_dir, b"test-key", auto_upgrade=True)
    try:
        recorder.flush()                             # adopts the dead engine's segments (its locks are gone)
    finally:
        recorder.close()
    engine = sa.create_engine(db_url)
    try:
        with engine.connect() as conn:
            recorded = {row[0] for row in conn.execute(sa.text("select uniqueid from calls"))}
    finally:
        engine.dispose()
    assert must - recorded == set()
    assert list(spool_dir.glob("seg-*.jsonl")) == []


async def _listening_port(proc) -> int:
    while True:
        raw = await proc.stderr.readline()
        if not raw:
            raise AssertionError(f"hotline serve ended before listening (exit {await proc.wait()})")
        found = re.search(r"listening on [\d.]+:(\d+)", raw.decode("utf-8", "replace"))
        if found:
            asyncio.get_running_loop().create_task(_drain(proc.stderr))
            return int(found.group(1))


async def _drain(stream) -> None:
    while await stream.readline():
        pass
