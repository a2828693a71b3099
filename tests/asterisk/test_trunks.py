"""On the real Asterisk: the citizen's number reaches every far end we dial (defect 4), and the shipped table's
placeholder trunk hosts load without errors (defect 8).

What each far end sees is read from the INVITE it received (FarEnd.invite: From, P-Asserted-Identity, Privacy).
A caller who withholds the number is a Local channel through [trunks-clir], which sets CALLERID(pres)=prohib as
the recordings did (tests/transcripts/pjsip-logger-emergency-invite-v9-clir-pai-trust.txt).
"""
from __future__ import annotations

import asyncio
import re
import time

import pytest

from tests.asterisk.harness import Ami, place_call

CITIZEN = "13800001111"
CLIR = """
[trunks-clir]
; a caller who withholds the number (CLIR), then the carrier's DID step as for anyone
exten => _X.,1,Set(CALLERID(pres)=prohib)
 same => n,Goto(hotline-from-carrier,${EXTEN},1)
"""


@pytest.fixture(scope="module")
def rig(make_rig):
    return make_rig("trunks", extra_extensions=CLIR)


@pytest.fixture(scope="module")
def rig_down(make_rig):
    """No engine listening: every call fails open (emergency lines to their trunk)."""
    return make_rig("trunks-down", engines=0, dead_engines=1, extra_extensions=CLIR)


async def call(ami: Ami, did: str, *, withheld: bool = False, dtmf: str = "") -> str:
    """A caller (CITIZEN, "E2E Caller") to a DID, withholding the number or not, pressing `dtmf` after 1 s (a
    menu's choice); returns the ;2 uniqueid."""
    tag = f"tr{time.monotonic_ns() % 10**12}"
    context = "trunks-clir" if withheld else "hotline-from-carrier"
    reply = await ami.action("Originate", Channel=f"Local/{did}@{context}/n", Context="test-caller", Exten="s",
                             Priority="1", CallerID=f'"E2E Caller" <{CITIZEN}>', Async="true",
                             ChannelId=f"ph{tag}", OtherChannelId=tag, Variable=[f"DTMF={dtmf}", "STAY=30"])
    assert reply.get("Response") == "Success", reply
    return tag


async def invite(far_end, number: str, timeout: float = 10) -> dict[str, str]:
    """The headers of the next INVITE the far end gets for `number` (call far_end.forget() before dialing)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = far_end.invite(number)
        if got.get("count"):
            return got
        await asyncio.sleep(0.1)
    raise AssertionError(f"the far end received no INVITE for {number} within {timeout} s")


async def hang_up(ami: Ami, *patterns: str) -> None:
    for pattern in patterns:
        await ami.action("Hangup", Channel=f"/{pattern}/")


def assert_asserted(headers: dict[str, str]) -> None:
    assert f"<sip:{CITIZEN}@" in headers["pai"], headers


# ---------------------------------------------------------------------------------------------- emergency


async def test_110_the_emergency_gateway_gets_the_number_in_from_and_pai(rig):
    rig.far_end.forget()
    async with rig.ami() as ami:
        await call(ami, "110")
        try:
            got = await invite(rig.far_end, "110")
        finally:
            await hang_up(ami, "^Local/110@hotline-from-carrier-.*")
    assert_asserted(got)
    assert f"<sip:{CITIZEN}@" in got["from"] and "[110] E2E Caller" in got["from"]   # engine's name, our number
    assert "<sip:emergency-110@" in got["contact"]     # contact_user: not Asterisk's default "asterisk"
    assert got["privacy"] == ""


async def test_110_withheld_number_still_reaches_the_gateway_marked_privacy_id(rig):
    rig.far_end.forget()
    async with rig.ami() as ami:
        await call(ami, "110", withheld=True)
        try:
            got = await invite(rig.far_end, "110")
        finally:
            await hang_up(ami, "^Local/110@trunks-clir-.*")
    assert_asserted(got)
    assert got["privacy"] == "id"
    assert CITIZEN not in got["from"] and "anonymous" in got["from"].lower()      # withheld towards anyone else


async def test_110_failing_open_with_no_engine_keeps_the_number_withheld_or_not(rig_down):
    for withheld in (False, True):
        rig_down.far_end.forget()
        async with rig_down.ami() as ami:
            await call(ami, "110", withheld=withheld)
            try:
                got = await invite(rig_down.far_end, "110")
            finally:
                await hang_up(ami, "^Local/110@(hotline-from-carrier|trunks-clir)-.*")
        assert_asserted(got)
        assert got["privacy"] == ("id" if withheld else "")


async def test_handover_of_a_waiting_caller_to_110_carries_the_number(rig):
    """An agent's hand-over: the caller is Redirected to hotline-warm-transfer,110 (ivr/ami/transfers.py)."""
    rig.far_end.forget()
    async with rig.ami() as ami:
        tag = await call(ami, "12345", dtmf="1")
        try:
            joined = await ami.wait("QueueCallerJoin", Uniqueid=re.escape(tag), timeout=15)
            reply = await ami.action("Redirect", Channel=joined["Channel"], Context="hotline-warm-transfer",
                                     Exten="110", Priority="1")
            assert reply.get("Response") == "Success", reply
            got = await invite(rig.far_end, "110")
        finally:
            await hang_up(ami, "^Local/12345@hotline-from-carrier-.*")
    assert_asserted(got)


# ---------------------------------------------------------------------------------------------- seats, sub-centers


async def seat_leg(rig, pres: str) -> dict[str, str]:
    """The warm-transfer leg as Atxfer makes it: the agent's caller ID, the citizen's inherited values."""
    rig.far_end.forget()
    async with rig.ami() as ami:
        reply = await ami.action("Originate", Channel="Local/12348@hotline-warm-transfer/n", Context="test-caller",
                                 Exten="s", Priority="1", CallerID='"Agent 7" <8007>', Async="true",
                                 Variable=[f"__HOTLINE_CALLER_NUM={CITIZEN}", f"__HOTLINE_CALLER_PRES={pres}",
                                           "STAY=30"])
        assert reply.get("Response") == "Success", reply
        try:
            return await invite(rig.far_end, "12348")
        finally:
            await hang_up(ami, "^Local/12348@hotline-warm-transfer-.*")


async def test_retained_seat_sees_the_citizen_not_the_agent(rig):
    """The warm-transfer leg is the agent's (AMI Atxfer): its caller ID is the agent's, its inherited
    HOTLINE_CALLER_NUM the citizen's (set at the DID step, inherited through the queue member's channel)."""
    got = await seat_leg(rig, "allowed")
    assert_asserted(got)
    assert "8007" not in got["pai"]
    assert "<sip:hotline12345@" in got["from"]          # the seat's registered user stays in From


async def test_retained_seat_does_not_learn_a_withheld_number(rig):
    """Seats keep the default withheld: hide: the caller's choice is respected (only emergency trunks send)."""
    got = await seat_leg(rig, "prohib")
    assert CITIZEN not in got["pai"] + got["from"] + got["rpid"] and "8007" not in got["pai"] + got["from"]
    assert "anonymous" in got["from"].lower()


async def test_the_agents_channel_carries_the_citizens_number_for_its_transfer_legs(rig):
    """The first link of the chain above: the number set at the DID step reaches the answering agent's channel
    (app_queue passes '__' variables on); Atxfer passes the agent's on to the leg it creates (bridge_basic.c
    dial_transfer), which the test above starts from."""
    member = "Local/ag7@test-agent/n"
    async with rig.ami() as ami:
        await ami.action("QueueAdd", Queue="general-12345", Interface=member, MemberName="ag7")
        try:
            tag = await call(ami, "12348", withheld=True)
            connect = await ami.wait("AgentConnect", Uniqueid=re.escape(tag), timeout=20)
            assert await ami.getvar(connect["DestChannel"], "HOTLINE_CALLER_NUM") == CITIZEN
            assert await ami.getvar(connect["DestChannel"], "HOTLINE_CALLER_PRES") == "prohib"
        finally:
            await ami.action("QueueRemove", Queue="general-12345", Interface=member)
            await hang_up(ami, "^Local/12348@trunks-clir-.*", "^Local/ag7@test-agent-.*")


async def test_subcenter_three_way_leg_sees_the_citizen(rig):
    """The three-way target leg, originated as ThreeWayTransfer does (CallerID = the line, HOTLINE_CALLER_CHANNEL
    = the caller's channel), while the caller waits in the queue."""
    rig.far_end.forget()
    async with rig.ami() as ami:
        tag = await call(ami, "12360", dtmf="1")
        try:
            joined = await ami.wait("QueueCallerJoin", Uniqueid=re.escape(tag), timeout=20)
            reply = await ami.action("Originate", Channel="Local/12360@hotline-threeway", Context="hotline-threeway",
                                     Exten="target", Priority="1", CallerID='"12360" <12360>', Async="true",
                                     Variable=["HOTLINE_CONF=trunks-room",
                                               f"HOTLINE_CALLER_CHANNEL={joined['Channel']}"])
            assert reply.get("Response") == "Success", reply
            got = await invite(rig.far_end, "12360")
        finally:
            await hang_up(ami, "^Local/12360@hotline-(from-carrier|threeway)-.*")
    assert_asserted(got)
    assert f"<sip:{CITIZEN}@" in got["from"]


# ---------------------------------------------------------------------------------------------- placeholders


async def test_shipped_table_as_is_loads_without_errors_and_names_each_placeholder(make_rig):
    rig = make_rig("trunks-shipped", shipped_table=True, start_engines=False, engines=0, dead_engines=1)
    errors = [line for line in rig.pbx.log_text("messages").splitlines() if "ERROR[" in line]
    assert errors == []
    assert "No objects found" in rig.pbx.cli("pjsip show registrations")   # nothing to warn about every 60 s
    assert "emergency-110" in rig.pbx.cli("pjsip show endpoint emergency-110")
    table_lines = rig.table.read_text(encoding="utf-8").splitlines()
    for tid in ("carrier-in", "seat-12348", "seat-12333", "subcenter-12360", "subcenter-12366", "subcenter-12305",
                "emergency-110", "emergency-119", "emergency-120", "emergency-122"):
        host_line = next(i for i, l in enumerate(table_lines, 1) if l.strip() == f"{tid}:") + 3
        assert re.search(rf"{re.escape(str(rig.table))}:{host_line}:\d+: warning: trunk '{tid}': host \S+\.invalid "
                         "is a placeholder", rig.render_warnings), rig.render_warnings
