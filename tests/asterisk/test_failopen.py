"""Fail-open paths on the real Asterisk 22: a stalled, unreachable or saturated engine, and the emergency retry.

Asterisk decides here (NOTES-2.md "FastAGI and the stalled engine"): with the engine SIGSTOPped, res_agi waits
for it without limit unless AGIEXITONHANGUP=yes; the T extension only runs once AGI() returned. The rigs use
short engine timeouts (dialplan render --engine-timeout / --emergency-engine-timeout) so the tests are quick.
"""
from __future__ import annotations

import asyncio
import re
import time

import pytest

from tests.asterisk import harness
from tests.asterisk.harness import place_call

ENGINE_TIMEOUT = 3            # seconds, every non-emergency line of these rigs
EMERGENCY_TIMEOUT = 2         # seconds, 110/119/120/122
SLACK = 1.5                   # Asterisk's timer, a loaded 2-core machine
WORKDAY_10H = "2026-11-26T10:00:00+08:00"
CALLER = "13800001111"
TIMEOUTS = ("--engine-timeout", str(ENGINE_TIMEOUT), "--emergency-engine-timeout", str(EMERGENCY_TIMEOUT))


def since(event: dict[str, str], start: float) -> float:
    return float(event["_t"]) - start


async def hang_up(ami, tag: str) -> None:
    for channel in (f"ph{tag}", tag):
        await ami.action("Hangup", Channel=channel)


async def emergency_dial(ami, tag: str, trunk: str = "emergency-110", timeout: float = 10, count: int = 1):
    return await ami.wait("DialBegin", timeout=timeout, count=count, Uniqueid=re.escape(tag),
                          DestChannel=f"PJSIP/{re.escape(trunk)}-[0-9a-f]{{8}}")


# ---------------------------------------------------------------------------------------------- stalled engine


@pytest.fixture(scope="module")
def stall_rig(make_rig):
    return make_rig("fo-stall", render_args=TIMEOUTS)


async def test_110_with_the_engine_stopped_reaches_its_trunk_within_the_emergency_timeout(stall_rig):
    rig = stall_rig
    rig.far_end.behave("110", "answer")
    async with rig.ami() as ami:
        rig.engine.stall()
        try:
            start = time.monotonic()
            tag = await place_call(ami, "110", caller=CALLER)
            dial = await emergency_dial(ami, tag, timeout=EMERGENCY_TIMEOUT + 8)
            assert since(dial, start) <= EMERGENCY_TIMEOUT + SLACK, since(dial, start)
            assert dial["DialString"] == "110@emergency-110"
            assert dial["DestConnectedLineNum"] == CALLER      # the caller's number goes with the call
            answered = await ami.wait("DialEnd", timeout=5, Uniqueid=re.escape(tag))
            assert answered["DialStatus"] == "ANSWER"
            failopen = ami.find("VarSet", Uniqueid=re.escape(tag), Variable="HOTLINE_FAILOPEN")
            assert [e["Value"] for e in failopen] == ["engine-timeout"]
            assert ami.find("QueueCallerJoin", Uniqueid=re.escape(tag)) == []
        finally:
            rig.engine.resume()
            await hang_up(ami, tag)


async def test_12345_with_the_engine_stopped_reaches_the_general_queue_within_its_timeout(stall_rig):
    rig = stall_rig
    async with rig.ami() as ami:
        rig.engine.stall()
        try:
            start = time.monotonic()
            tag = await place_call(ami, "12345", caller=CALLER)
            join = await ami.wait("QueueCallerJoin", timeout=ENGINE_TIMEOUT + 8, Uniqueid=re.escape(tag))
            assert join["Queue"] == "general-12345"
            assert since(join, start) <= ENGINE_TIMEOUT + SLACK, since(join, start)
            tags = ami.find("VarSet", Uniqueid=re.escape(tag), Variable="HOTLINE_TAGS")
            assert tags and tags[-1]["Value"].endswith("failopen")
        finally:
            rig.engine.resume()
            await hang_up(ami, tag)


# ---------------------------------------------------------------------------------------------- stall after the decision


class HoldingProxy:
    """Between Asterisk and a real engine: forwards every byte, but once the engine has set HOTLINE_ACTION and
    closed, keeps Asterisk's side open and silent: an engine that stalls right after deciding."""

    def __init__(self, listen_port: int, upstream_port: int) -> None:
        self.listen_port, self.upstream_port = listen_port, upstream_port
        self.decided = asyncio.Event()
        self._held: list[asyncio.StreamWriter] = []

    async def start(self) -> "HoldingProxy":
        self.server = await asyncio.start_server(self._session, "127.0.0.1", self.listen_port, reuse_address=True)
        return self

    async def _session(self, a_reader, a_writer) -> None:
        e_reader, e_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)

        async def to_engine():
            while data := await a_reader.read(4096):
                e_writer.write(data)
            e_writer.close()

        async def to_asterisk():
            seen = b""
            while data := await e_reader.read(4096):
                seen += data
                a_writer.write(data)
                if b"SET VARIABLE HOTLINE_ACTION " in seen:
                    self.decided.set()
            self._held.append(a_writer)            # the engine closed: Asterisk hears nothing more

        up = asyncio.create_task(to_engine())
        await to_asterisk()
        await up

    async def close(self) -> None:
        for writer in self._held:
            writer.close()
        self.server.close()


@pytest.fixture(scope="module")
def decided_rig(make_rig):
    return make_rig("fo-decided", render_args=TIMEOUTS)


async def test_a_stall_after_the_engine_decided_carries_out_the_decision(decided_rig, workdir):
    rig = decided_rig
    rig.engine.stop()
    upstream = harness.Engine(workdir / "fo-decided" / "upstream", rig.table).start()
    proxy = await HoldingProxy(rig.engine.port, upstream.port).start()
    try:
        async with rig.ami() as ami:
            start = time.monotonic()
            tag = await place_call(ami, "12329", caller=CALLER, variables={"HOTLINE_AT": WORKDAY_10H})
            await asyncio.wait_for(proxy.decided.wait(), 10)
            timed_out = await ami.wait("Newexten", timeout=ENGINE_TIMEOUT + 8, Uniqueid=re.escape(tag),
                                       Context="hotline-engine", Exten="T")
            assert since(timed_out, start) <= ENGINE_TIMEOUT + SLACK
            join = await ami.wait("QueueCallerJoin", timeout=5, Uniqueid=re.escape(tag))
            assert join["Queue"] == "expert-12329"                # the engine's decision, not general-12345
            assert ami.find("VarSet", Uniqueid=re.escape(tag), Variable="HOTLINE_FAILOPEN") == []
            await hang_up(ami, tag)
    finally:
        await proxy.close()
        upstream.stop()


# ---------------------------------------------------------------------------------------------- engine down


@pytest.fixture(scope="module")
def down_rig(make_rig):
    return make_rig("fo-down", engines=0, dead_engines=1, render_args=TIMEOUTS)


@pytest.mark.parametrize("did", ["110", "12345"])
async def test_nothing_listening_fails_open_at_once(down_rig, did):
    rig = down_rig
    rig.far_end.behave("110", "answer")
    async with rig.ami() as ami:
        start = time.monotonic()
        tag = await place_call(ami, did, caller=CALLER)
        try:
            if did == "110":
                event = await emergency_dial(ami, tag)
                assert event["DestConnectedLineNum"] == CALLER
            else:
                event = await ami.wait("QueueCallerJoin", timeout=10, Uniqueid=re.escape(tag))
                assert event["Queue"] == "general-12345"
            assert since(event, start) <= SLACK + 1      # a refused connection costs nothing like the timeout
        finally:
            await hang_up(ami, tag)


@pytest.fixture(scope="module")
def mute_rig(make_rig):
    return make_rig("fo-mute", engines=1, dead_engines=1, render_args=TIMEOUTS)


@pytest.mark.parametrize("did, bound", [("110", EMERGENCY_TIMEOUT), ("12345", ENGINE_TIMEOUT)])
async def test_a_listed_engine_that_accepts_and_never_talks_costs_at_most_the_bound(mute_rig, did, bound):
    """The first engine of the list accepts the connection and never says a word (a hung host whose kernel
    still accepts): the caller waits the line's engine timeout, then the call fails open."""
    rig = mute_rig
    conf = (rig.pbx.confdir / "extensions_hotline.conf").read_text()
    first = int(re.search(r"AGI\(agi://127\.0\.0\.1:(\d+)/route", conf).group(1))
    assert first != rig.engine.port
    held: list[asyncio.StreamWriter] = []

    async def mute(reader, writer):
        held.append(writer)
        while await reader.read(4096):
            pass

    listener = await asyncio.start_server(mute, "127.0.0.1", first, reuse_address=True)
    rig.far_end.behave("110", "answer")
    try:
        async with rig.ami() as ami:
            start = time.monotonic()
            tag = await place_call(ami, did, caller=CALLER)
            try:
                if did == "110":
                    event = await emergency_dial(ami, tag, timeout=bound + 8)
                    assert event["DestConnectedLineNum"] == CALLER
                else:
                    event = await ami.wait("QueueCallerJoin", timeout=bound + 8, Uniqueid=re.escape(tag))
                    assert event["Queue"] == "general-12345"
                assert since(event, start) <= bound + SLACK, since(event, start)
                assert held, "the mute engine was connected to"
            finally:
                await hang_up(ami, tag)
    finally:
        for writer in held:
            writer.close()
        listener.close()


@pytest.fixture(scope="module")
def silent_rig(make_rig):
    return make_rig("fo-nosounds", render_args=TIMEOUTS, sounds=False)


async def test_a_sound_that_cannot_be_played_does_not_end_agi(silent_rig):
    """AGIEXITONHANGUP leaves AGI only on a hang-up: STREAM FILE of a missing sound fails that command alone
    (res_agi), the engine goes on, decides, and the dialplan carries the decision out."""
    rig = silent_rig
    async with rig.ami() as ami:
        tag = await place_call(ami, "12349", caller=CALLER, variables={"HOTLINE_AT": WORKDAY_10H})
        try:
            join = await ami.wait("QueueCallerJoin", timeout=ENGINE_TIMEOUT + 5, Uniqueid=re.escape(tag))
            assert join["Queue"] == "minors-protection"
            status = ami.find("VarSet", Uniqueid=re.escape(tag), Variable="AGISTATUS")
            assert [e["Value"] for e in status] == ["FAILURE"]
            assert ami.find("VarSet", Uniqueid=re.escape(tag), Variable="HOTLINE_FAILOPEN") == []
            assert "ivr.prompt_unplayable" in rig.engine.log()
        finally:
            await hang_up(ami, tag)


# ---------------------------------------------------------------------------------------------- over the cap


@pytest.fixture(scope="module")
def cap_rig(make_rig):
    return make_rig("fo-cap", engine_args=("--max-sessions", "1"))


async def test_over_the_session_cap_110_goes_to_its_trunk(cap_rig):
    rig = cap_rig
    rig.far_end.behave("110", "answer")
    async with rig.ami() as ami:
        held = await place_call(ami, "12345", caller="13800002222", stay=20)   # sits in the main menu
        try:
            await ami.wait("AGIExecStart", timeout=10, Channel=r"Local/12345@hotline-from-carrier-.*;2",
                           Command="GET OPTION.*")
            tag = await place_call(ami, "110", caller=CALLER)
            dial = await emergency_dial(ami, tag, timeout=10)
            assert dial["DestConnectedLineNum"] == CALLER
            actions = ami.find("VarSet", Uniqueid=re.escape(tag), Variable="HOTLINE_ACTION")
            assert [e["Value"] for e in actions] == ["dial"]            # the over-cap answer, from the engine
            assert ami.find("QueueCallerJoin", Uniqueid=re.escape(tag)) == []
            assert "fastagi.over_capacity" in rig.engine.log()
            await hang_up(ami, tag)
        finally:
            await hang_up(ami, held)


# ---------------------------------------------------------------------------------------------- emergency retry


RETRY = {"attempts": 3, "ring_seconds": 2, "pause_seconds": 1, "within_seconds": 4}


@pytest.fixture(scope="module")
def retry_rig(make_rig, far_end):
    backup = (f"  emergency-110-b:\n    name: 110 backup gateway\n    kind: emergency\n    host: {far_end.host}\n"
              f"    port: {far_end.port}\n    match: [{far_end.host}]\n    dial: 1100\n")
    fields = ", ".join(f"{k}: {v}" for k, v in RETRY.items())
    routes = (f"  trunks:\n    emergency-110: {{{fields}, next: emergency-110-b}}\n"
              "    emergency-110-b: {attempts: 1, ring_seconds: 10, within_seconds: 10}")

    def edit(text: str) -> str:
        text = text.replace("\n\nemergency:", "\n" + backup + "\nemergency:", 1)   # the last trunk, whatever its keys
        return text.replace("  trunks: {}               # per emergency trunk: any of the fields above, and next",
                            routes)
    rig = make_rig("fo-retry", edit_table=edit)
    yield rig
    far_end.behave("110", "answer")


async def _retry_call(rig, how: str):
    rig.far_end.behave("110", how)
    rig.far_end.behave("1100", "answer")
    async with rig.ami() as ami:
        tag = await place_call(ami, "110", caller=CALLER)
        try:
            backup = await emergency_dial(ami, tag, trunk="emergency-110-b", timeout=20)
            dials = ami.find("DialBegin", Uniqueid=re.escape(tag), DestChannel=r"PJSIP/emergency-110-[0-9a-f]{8}")
            played = ami.find("Newexten", Uniqueid=re.escape(tag), Application="Playback",
                              AppData="hotline/emergency-unreachable")
            answered = await ami.wait("DialEnd", timeout=5, Uniqueid=re.escape(tag),
                                      DestChannel=r"PJSIP/emergency-110-b-.*")
            return dials, played, backup, answered
        finally:
            await hang_up(ami, tag)


@pytest.mark.parametrize("how", ["busy", "congestion"])
async def test_emergency_retry_against_a_gateway_failing_at_once_is_paced(retry_rig, how):
    dials, played, backup, answered = await _retry_call(retry_rig, how)
    assert len(dials) == RETRY["attempts"]
    times = [float(d["_t"]) for d in dials]
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert all(gap >= RETRY["pause_seconds"] - 0.1 for gap in gaps), gaps      # never 3 attempts in 2 ms
    assert len(played) == 1 and float(played[0]["_t"]) < float(backup["_t"])   # announcement, then next route
    assert answered["DialStatus"] == "ANSWER" and backup["DestConnectedLineNum"] == CALLER


async def test_emergency_retry_against_a_ringing_gateway_is_bounded(retry_rig):
    dials, played, backup, answered = await _retry_call(retry_rig, "ring")
    first = float(dials[0]["_t"])
    # all attempts end within the bound (EPOCH counts whole seconds: up to 1 s more), then the announcement
    assert float(played[0]["_t"]) - first <= RETRY["within_seconds"] + 1 + SLACK
    assert float(played[0]["_t"]) - first >= RETRY["within_seconds"] - 1.5
    assert 1 <= len(dials) <= RETRY["attempts"]
    assert float(backup["_t"]) > float(played[0]["_t"]) and answered["DialStatus"] == "ANSWER"
