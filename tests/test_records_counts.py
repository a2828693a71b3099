"""Issue 14: the abuse counts in memory, fed from SQL: seeded from the calls of the window at start, read again
when a reloaded table widens the window, kept while the database is away, never fed by a dry run; and two
engines sharing one PostgreSQL database count each other's calls once a refresh has read them."""
from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import pytest

from records.db import make_engine, upgrade
from records.recorder import CallRecorder
from records.types import CallRecord
from tests.db_fixtures import db_url, pg_url  # noqa: F401
from tests.test_fastagi_support import WORKDAY_10H, call, running_engine
from tests.test_records_group_commit import limited_holder, until

KEY = b"test-key-not-secret"
AT = datetime.fromisoformat(WORKDAY_10H)
CALLER = "13812345678"


def earlier_call(uniqueid: str, minutes_ago: float, caller: str = CALLER) -> CallRecord:
    return CallRecord(uniqueid=uniqueid, dialed="12345", line="12345", caller=caller,
                      arrived_at=AT - timedelta(minutes=minutes_ago))


def test_counts_are_seeded_from_sql_and_read_again_when_the_window_widens(db_url, tmp_path):  # noqa: F811
    other = CallRecorder(db_url, tmp_path / "other-spool", KEY, auto_upgrade=True)   # another engine's records
    try:
        for i, minutes_ago in enumerate([1, 30, 59, 90, 170, 200]):
            other.record_call(earlier_call(f"h-{i}", minutes_ago))
        other.record_call(earlier_call("x", 1, caller="13900000000"))
        assert other.flush() == 7
    finally:
        other.close()
    rec = CallRecorder(db_url, tmp_path / "spool", KEY, auto_upgrade=True, clock=lambda: AT)
    try:
        rec.flush()
        assert rec.refresh_counts() == 4                 # the default 60 min: 3 of this caller, 1 of the other
        assert rec.note_arrival(CALLER, "now-1", AT, 60).calls_in_window == 3
        # a reload to a 180-minute window: memory has only 60 min, the next refresh reads the rest
        assert rec.note_arrival(CALLER, "now-2", AT, 180).calls_in_window == 4   # 3 + now-1, until then
        assert rec.refresh_counts() == 2                 # 90 and 170 min ago
        assert rec.note_arrival(CALLER, "now-3", AT, 180).calls_in_window == 7
        assert rec.refresh_counts() == 0                 # nothing new: nothing counted twice
    finally:
        rec.close()


def test_counts_go_on_from_memory_while_the_database_is_away(tmp_path):
    rec = CallRecorder("postgresql+psycopg://postgres@127.0.0.1:1/down", tmp_path / "spool", KEY, op_timeout=0.3,
                       clock=lambda: AT)
    try:
        assert rec.refresh_counts() == 0                 # fails open, never raises
        assert [rec.note_arrival(CALLER, f"u{i}", AT + timedelta(seconds=i), 60).calls_in_window
                for i in range(3)] == [0, 1, 2]          # better than the SQL count's zero
    finally:
        rec.close()


@pytest.mark.postgres
async def test_two_engines_sharing_postgresql_count_each_others_calls(pg_url, tmp_path):  # noqa: F811
    direct = make_engine(pg_url)
    upgrade(direct)
    direct.dispose()
    clock = lambda: AT + timedelta(minutes=5)  # noqa: E731 - the recorders live at the calls' test instant
    recs = [CallRecorder(pg_url, tmp_path / f"spool-{n}", KEY, flush_interval=0.05, clock=clock) for n in "ab"]
    tasks = [asyncio.create_task(rec.run()) for rec in recs]
    holder = limited_holder(tmp_path, 3)                 # over 3 calls within 60 min: abuse review

    def at(i: int) -> str:
        return (AT + timedelta(seconds=i)).isoformat()

    try:
        async with running_engine(holder=holder, recorder=recs[0]) as (a, _), \
                running_engine(holder=holder, recorder=recs[1]) as (b, _):
            first = [await call(server, "12345", ["1"], at=at(i), caller=CALLER, uniqueid=f"u.{i}")
                     for i, server in enumerate([a, b, a, b])]
            assert [t.variables.get("HOTLINE_TARGET") for t in first] == ["general-12345"] * 4
            # each engine noted 2 of them itself; the other 2 it learns from SQL, once recorded and refreshed
            for rec in recs:
                await until(lambda: rec.recent_calls(CALLER, AT + timedelta(seconds=4), 60) == 4,
                            "the other engine's calls to be counted", timeout=20)
            on_a = await call(a, "12345", ["1"], at=at(4), caller=CALLER, uniqueid="u.4")
            on_b = await call(b, "12345", ["1"], at=at(5), caller=CALLER, uniqueid="u.5")
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for rec in recs:
            await asyncio.to_thread(rec.close)
    assert on_a.variables.get("HOTLINE_TARGET") == "abuse-review"    # 4 earlier calls > 3, 2 of them on b
    assert on_b.variables.get("HOTLINE_TARGET") == "abuse-review"
