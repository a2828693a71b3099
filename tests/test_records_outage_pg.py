"""PostgreSQL goes away mid-run (cut, then blackholed) while records keep coming: every record arrives once.

The machine's PostgreSQL server keeps running: the outage is made by our own TCP proxy between the
recorder and the server.
"""
from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, make_url, select

from records.db import make_engine, upgrade
from records.recorder import CallRecorder
from records.schema import calls, transfers
from records.types import CallRecord, TransferRecord
from tests.db_fixtures import TcpProxy, pg_url  # noqa: F401

pytestmark = pytest.mark.postgres

KEY = b"test-key-not-secret"
T0 = datetime(2021, 9, 17, 9, 0, tzinfo=timezone.utc)
CALLER = "13812345678"


def call(i: int) -> CallRecord:
    return CallRecord(uniqueid=f"1631869205.{i}", dialed="12320", line="12320", caller=CALLER,
                      arrived_at=T0 + timedelta(seconds=i), action="queue", target="expert-12320")


def transfer(i: int) -> TransferRecord:
    return TransferRecord(uniqueid=f"1631869205.{i}", kind="escalate", from_line="12345", first_line="12345",
                          started_at=T0 + timedelta(seconds=i, milliseconds=500), target_queue="expert-12320",
                          outcome="answered")


async def wait_for(predicate, timeout: float, what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.02)


async def test_records_survive_a_cut_and_a_blackholed_postgresql(pg_url, tmp_path):  # noqa: F811
    direct = make_engine(pg_url)
    upgrade(direct)
    target = make_url(pg_url)
    proxy = TcpProxy(target.host or "127.0.0.1", target.port or 5432)
    port = await proxy.start()
    proxied = target.set(port=port).render_as_string(hide_password=False)
    rec = CallRecorder(proxied, tmp_path / "spool", KEY, flush_interval=0.05, max_backoff=0.2,
                       op_timeout=1.0, history_timeout=0.3, batch_size=7)
    runner = asyncio.create_task(rec.run())

    async def db_count(table=calls) -> int:
        def query() -> int:
            with direct.connect() as conn:
                return conn.execute(select(func.count()).select_from(table)).scalar_one()
        return await asyncio.to_thread(query)

    async def unhealthy() -> bool:
        return not rec.healthy

    sent = 0

    async def send(n: int) -> None:
        nonlocal sent
        for _ in range(n):
            rec.record_call(call(sent))
            if sent % 5 == 0:
                rec.record_transfer(transfer(sent))
            sent += 1
            await asyncio.sleep(0.002)   # calls keep arriving while the flusher works

    try:
        await send(30)
        await wait_for(lambda: _eq(db_count(), 30), 10, "the first 30 calls")
        history = await asyncio.to_thread(rec.caller_history, CALLER, T0 + timedelta(minutes=1), 60)
        assert history.calls_in_window == 30

        proxy.cut()                                     # connection refused / reset at once
        await send(25)
        await wait_for(unhealthy, 10, "the recorder to notice the cut")
        await send(25)
        assert await db_count() == 30

        proxy.restore()
        await wait_for(lambda: _eq(db_count(), sent), 10, "the calls spooled during the cut")
        await wait_for(lambda: _healthy(rec), 5, "health back")

        proxy.blackhole()                               # packets vanish: nothing fails, everything stalls
        await send(30)
        await wait_for(unhealthy, 10, "the recorder to give up on the stalled connection")
        history = await asyncio.to_thread(rec.caller_history, CALLER, T0 + timedelta(minutes=1), 60)
        assert history.calls_in_window == 0             # fails open, at once
        await send(20)

        proxy.restore()
        await wait_for(lambda: _eq(db_count(), sent), 15, "every call after the blackhole")
        await wait_for(lambda: _eq(db_count(transfers), len(range(0, sent, 5))), 5, "every transfer")
    finally:
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)
        await asyncio.to_thread(rec.close)
        await proxy.stop()

    with direct.connect() as conn:
        got = [row[0] for row in conn.execute(select(calls.c.uniqueid))]
        transfer_rows = conn.execute(select(func.count()).select_from(transfers)).scalar_one()
    direct.dispose()
    assert sent == 130
    assert sorted(got) == sorted(call(i).uniqueid for i in range(sent))   # all of them, none twice
    assert transfer_rows == len(range(0, sent, 5))
    assert list((tmp_path / "spool").glob("seg-*.jsonl")) == []            # trimmed after commit
    assert not (tmp_path / "spool" / "rejected.jsonl").exists()


async def _eq(awaitable, expected: int) -> bool:
    return await awaitable == expected


async def _healthy(rec: CallRecorder) -> bool:
    return rec.healthy
