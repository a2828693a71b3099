"""Fail open: whatever breaks in the lookup or the session, the call is told to go to 12345's queue."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from ivr.agi.commands import Response, SetVariable
from ivr.engine import CallFlow, build_record, dialed_number, fail_open_commands, fail_open_decision
from routing.decide import decide
from routing.model import CallerHistory
from tests.test_fastagi_support import WORKDAY_10H, call, running_engine, shipped_config


def broken_decide(*args, **kwargs):
    raise RuntimeError("database gone")


class Recorder:
    def __init__(self, history_error: Exception | None = None) -> None:
        self.calls = []
        self.history_asked = []
        self.history_error = history_error

    def record_call(self, rec) -> None:
        self.calls.append(rec)

    def caller_history(self, caller, at, minutes):          # classic AGI: the SQL count
        self.history_asked.append((caller, minutes))
        if self.history_error:
            raise self.history_error
        return CallerHistory(calls_in_window=0)

    def note_arrival(self, caller, uniqueid, at, minutes):  # FastAGI: the in-memory count
        return self.caller_history(caller, at, minutes)


async def test_decide_raising_fails_open(caplog):
    rec = Recorder()
    async with running_engine(decide_fn=broken_decide, recorder=rec) as (server, _):
        t = await call(server, "12320", ["1"], at=WORKDAY_10H)
    assert t.variables == {"HOTLINE_AT": WORKDAY_10H, "HOTLINE_TARGET": "general-12345", "HOTLINE_LINE": "12320",
                           "HOTLINE_TAGS": "health+failopen", "CALLERID(name)": "[12320] Probe Caller",
                           "HOTLINE_ACTION": "queue"}
    (record,) = rec.calls
    assert record.action == "queue" and record.target == "general-12345" and record.dialed == "12320"


class ExplodingSession:
    """A session with a bug: it sets one variable, then raises."""

    def __init__(self, env, route, menus, table, *, at=None):
        pass

    def run(self):
        yield SetVariable("HOTLINE_TARGET", "expert-12320")
        raise KeyError("bug in the menu code")


async def test_session_raising_mid_call_fails_open():
    async with running_engine(session_factory=ExplodingSession) as (server, _):
        t = await call(server, "12320", ["1"], at=WORKDAY_10H)
        nxt = await call(server, "12345", ["2"], at=WORKDAY_10H)
    assert t.variables["HOTLINE_ACTION"] == "queue" and t.variables["HOTLINE_TARGET"] == "general-12345"
    assert t.variables["HOTLINE_LINE"] == "12320"
    assert nxt.variables["HOTLINE_ACTION"] == "queue"


async def test_recorder_gets_a_call_record_and_history_is_asked_fail_open():
    rec = Recorder(history_error=OSError("pg down"))
    async with running_engine(recorder=rec) as (server, _):
        t = await call(server, "12320", ["1"], at=WORKDAY_10H, caller="13812345678", uniqueid="u.1")
        gone = await call(server, "12345", ["hangup"], at=WORKDAY_10H, uniqueid="u.2")
    assert t.destination == "queue expert-12320"
    assert rec.history_asked and rec.history_asked[0][0] == "13812345678"
    first, second = rec.calls
    from records.types import CallRecord, Outcome
    assert isinstance(first, CallRecord)
    assert (first.uniqueid, first.line, first.action, first.target) == ("u.1", "12320", "queue", "expert-12320")
    assert first.caller == "13812345678" and first.ivr_path[:1] == ("expert-12320",)
    assert first.arrived_at == datetime.fromisoformat(WORKDAY_10H)
    assert second.uniqueid == "u.2" and second.outcome is Outcome.IVR_HANGUP


def test_dialed_number_falls_back_to_extension_then_dnid():
    assert dialed_number({"arg_1": "12320", "extension": "s"}) == "12320"
    assert dialed_number({"arg_1": "", "extension": "12349", "dnid": "1"}) == "12349"
    assert dialed_number({"extension": "unknown", "dnid": "12366"}) == "12366"


def test_fail_open_without_a_table_leaves_the_decision_to_the_dialplan():
    """No table (classic AGI, broken file): no HOTLINE_ACTION, so the dialplan's fail-open, rendered from the
    table Asterisk runs with, handles the call (emergency lines to their trunk, others to 12345's queue)."""
    for dialed in ("+86 12320", "110"):
        cmds = fail_open_commands({"arg_1": dialed})
        assert all(c.name != "HOTLINE_ACTION" for c in cmds)
    assert fail_open_decision({"arg_1": "+86 12320"}).line == "12320"


@pytest.mark.parametrize("dialed, trunk", [("110", "emergency-110"), ("119", "emergency-119"),
                                           ("120", "emergency-120"), ("122", "emergency-122")])
def test_fail_open_sends_emergency_lines_to_their_trunk(dialed, trunk):
    cmds = fail_open_commands({"arg_1": dialed, "calleridname": "Zhang"}, shipped_config().table)
    assert cmds[0] == SetVariable("HOTLINE_TARGET", trunk) and cmds[-1] == SetVariable("HOTLINE_ACTION", "dial")
    assert SetVariable("HOTLINE_LINE", dialed) in cmds
    assert SetVariable("HOTLINE_TAGS", "emergency+failopen") in cmds
    assert SetVariable("CALLERID(name)", f"[{dialed}] Zhang") in cmds


def test_fail_open_any_line_the_table_routes_as_emergency_and_never_queues_a_builtin_one():
    import dataclasses
    from types import MappingProxyType

    table = shipped_config().table
    lines = dict(table.lines)
    lines["96110"] = dataclasses.replace(table.lines["110"], number="96110")
    del lines["122"]
    edited = dataclasses.replace(table, lines=MappingProxyType(lines))
    assert fail_open_decision({"arg_1": "96110"}, edited).action == "dial"
    assert fail_open_decision({"arg_1": "96110"}, edited).target == "emergency-110"
    # 122 is no line of this table: the engine does not queue it; the dialplan decides
    assert fail_open_decision({"arg_1": "122"}, edited).action is None
    unknown = fail_open_decision({"arg_1": "99999"}, edited)
    assert (unknown.action, unknown.target, unknown.tags) == ("queue", "general-12345", "unknown-line+failopen")


async def test_decide_raising_on_an_emergency_line_dials_its_trunk():
    rec = Recorder()
    async with running_engine(decide_fn=broken_decide, recorder=rec) as (server, _):
        t = await call(server, "110", at=WORKDAY_10H)
    assert t.destination == "dial trunk emergency-110" and t.variables["HOTLINE_LINE"] == "110"
    (record,) = rec.calls
    assert (record.action, record.target) == ("dial", "emergency-110")


async def test_session_raising_on_an_emergency_line_dials_its_trunk():
    async with running_engine(session_factory=ExplodingSession) as (server, _):
        t = await call(server, "119", at=WORKDAY_10H)
    assert t.destination == "dial trunk emergency-119"


@pytest.mark.parametrize("reply", [Response(code=200, result=1), Response(code=511)])
def test_call_flow_is_sans_io(reply):
    """Driven with plain Response values: the same generator the FastAGI and classic adapters pump."""
    flow = CallFlow({"arg_1": "110", "uniqueid": "x"}, shipped_config(),
                    datetime(2026, 2, 17, 3, tzinfo=timezone.utc), decide_fn=decide)
    gen = flow.run()
    cmds = [next(gen)]
    try:
        while True:
            cmds.append(gen.send(reply))
    except StopIteration as stop:
        outcome = stop.value
    assert outcome.target == "emergency-110" and cmds[-1] == SetVariable("HOTLINE_ACTION", "dial")
    rec = build_record(flow, hungup=False)
    assert rec.action == "dial" and rec.target == "emergency-110"
