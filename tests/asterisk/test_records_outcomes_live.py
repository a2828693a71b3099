"""Defect 15 on the real Asterisk 22: a call that reaches a queue with no engine record (the engine stalled, the
call failed open) is recorded from the events the generated AMI user `hotline` (read=call,agent,user) gets:
the number dialed comes from the dialplan's HotlineQueued UserEvent (VarSet is not in that user's classes, and
QueueCallerJoin says Exten "s"), the arrival from the channel's Newchannel, seconds before the queue join.
"""
from __future__ import annotations

import asyncio
import re
from datetime import datetime, timedelta, timezone

import pytest

from records.outcomes import QueueOutcomeTracker
from supervisor.state import LiveState
from tests.asterisk import harness
from tests.asterisk.harness import place_call

ENGINE_TIMEOUT = 2           # s: the rendered --engine-timeout; the silent engine makes every call wait it out


@pytest.fixture(scope="module")
def rig(make_rig):
    # The engine never starts: a listener on its port accepts and says nothing (a stalled engine).
    return make_rig("records-outcomes", start_engines=False, render_args=["--engine-timeout", str(ENGINE_TIMEOUT)])


async def silent_engine(port: int):
    held = []

    async def hold(reader, writer):
        held.append(writer)
        await reader.read()          # until Asterisk gives up and closes

    server = await asyncio.start_server(hold, "127.0.0.1", port)
    return server, held


def instant(event: dict[str, str], start_mono: float, start_utc: datetime) -> datetime:
    return start_utc + timedelta(seconds=float(event["_t"]) - start_mono)


async def test_failed_open_queued_call_has_the_dialed_number_and_its_real_arrival(rig):
    import time

    server, held = await silent_engine(rig.engine.port)
    start_mono, start_utc = time.monotonic(), datetime.now(timezone.utc)
    try:
        async with rig.ami() as ami, rig.ami("hotline", harness.AMI_SECRET) as hotline:
            tag = await place_call(ami, "12366", caller="13800001366")
            join = await hotline.wait("QueueCallerJoin", Uniqueid=re.escape(tag), timeout=ENGINE_TIMEOUT + 10)
            for phone in ami.find("Newchannel", Uniqueid=re.escape(f"ph{tag}")):   # the caller hangs up
                await ami.action("Hangup", Channel=phone["Channel"], timeout=5)
            await hotline.wait("Hangup", Uniqueid=re.escape(tag), timeout=10)
            assert join["Exten"] == "s"                       # what made the record say dialed='s'
            assert not hotline.find("VarSet")                 # the hotline user cannot see HOTLINE_DIALED set
            (queued,) = hotline.find("UserEvent", Uniqueid=re.escape(tag), UserEvent="HotlineQueued")
            assert queued["Dialed"] == "12366"
            tracker = QueueOutcomeTracker()
            records = [r for e in hotline.events for r in tracker.feed(e, instant(e, start_mono, start_utc))]
    finally:
        for writer in held:
            writer.close()
        server.close()
        await server.wait_closed()
    (record,) = [r for r in records if r.uniqueid == tag]
    (born,) = [e for e in hotline.events if e["Event"] == "Newchannel" and e["Uniqueid"] == tag]
    assert (record.dialed, record.line) == ("12366", "12366")
    assert record.arrived_at == instant(born, start_mono, start_utc)
    joined = instant(join, start_mono, start_utc)
    assert (joined - record.arrived_at).total_seconds() >= ENGINE_TIMEOUT - 0.5   # the engine's wait, before the queue
    assert record.outcome.value == "abandoned"
    # the queue it waited in, as Asterisk named it, and the live view's figures from the same events
    assert [(leg["queue"], leg["result"]) for leg in record.queue_legs] == [(join["Queue"], "abandoned")]
    state = LiveState()
    for e in hotline.events:
        state.apply("pbx", e, instant(e, start_mono, start_utc).timestamp())
    (tile,) = [q for srv in state.view(record.ended_at.timestamp(), full_numbers=False)["servers"]
               for q in srv["queues"] if q["name"] == join["Queue"]]
    assert (tile["answered"], tile["abandoned"], tile["overflowed"]) == (0, 1, 0)
