"""The AMI emulator's transfers against the recordings of Asterisk 22 (NOTES-2.md): the same events, in the same
order, with the same key fields, as user hotline (read=call,agent) receives them. Channels are compared by role
(caller, agent, the Local leg's halves, the seat), since names and ids differ from run to run."""
from __future__ import annotations

import asyncio
import re

import pytest

from ivr.ami.client import AmiClient
from ivr.ami.emulator import AmiEmulator
from ivr.ami.framing import Message
from ivr.ami.transfers import TransferDriver, TransferRequest
from records.types import TransferOutcome
from routing.model import TransferKind
from tests.test_ami_emulator import field_shapes
from tests.test_transfer_replay import load

AGENT = "Local/lg1@e2e-agent/n"
EXPERT = "Local/ag2@e2e-agent/n"
KEY = {"Hold", "Unhold", "MusicOnHoldStart", "MusicOnHoldStop", "Newchannel", "BridgeCreate", "BridgeEnter",
       "BridgeLeave", "BridgeMerge", "BridgeDestroy", "DialBegin", "DialEnd", "AttendedTransfer", "AgentComplete",
       "Hangup", "LocalOptimizationBegin", "LocalOptimizationEnd"}


def role_of(names: dict[str, str], channel: str | None) -> str | None:
    if not channel:
        return "-"
    if channel in names:
        return names[channel]
    if "@hotline-warm-transfer-" in channel:
        return "leg" + channel[-1]
    if channel.startswith("PJSIP/"):
        return "seat"
    return None                       # the caller's phone half, the agent's ;2: not part of the comparison


def sequence(events: list[Message], names: dict[str, str]) -> list[tuple[str, ...]]:
    """From the agent's Hold to the last leg Hangup, the key events by role."""
    out: list[tuple[str, ...]] = []
    started = False
    for e in events:
        started = started or e.get("Event") == "Hold"
        if not started or e.get("Event") not in KEY:
            continue
        who = role_of(names, e.get("Channel"))
        if who is None:
            continue
        dest = role_of(names, e.get("DestChannel")) if "DestChannel" in e else ""
        detail = e.get("DialStatus") or e.get("Result") or e.get("Reason") or e.get("Cause") or ""
        out.append((e["Event"], who, dest or "", detail))
    last = max(i for i, item in enumerate(out) if item[0] == "Hangup" and item[1].startswith("leg"))
    return canonical(out[:last + 1])


def canonical(seq: list[tuple[str, ...]]) -> list[tuple[str, ...]]:
    """The one race the recordings show: leg;2's dial (seat Newchannel + DialBegin) comes before or after the
    agent's move into the consultation bridge. Put it after."""
    dial = [item for item in seq if item[:2] == ("Newchannel", "seat") or item[0] == "DialBegin"]
    rest = [item for item in seq if item not in dial]
    enter = next((i for i, item in enumerate(rest) if item[:2] == ("BridgeEnter", "agent")), None)
    if enter is None or not dial:
        return seq
    return rest[:enter + 1] + dial + rest[enter + 1:]


def recorded_sequence(name: str) -> tuple[list[tuple[str, ...]], list[Message]]:
    stream = load(name, hotline_view=True)
    events = [m for _, m in stream.events]
    hold = next(m for m in events if m["Event"] == "Hold")
    caller = next(m for m in events if m["Event"] == "MusicOnHoldStart")["Channel"]
    return sequence(events, {hold["Channel"]: "agent", caller: "caller"}), events


@pytest.fixture
async def desk():
    emu = AmiEmulator(secret="s")
    emu.add_queue("general-12345", "rrmemory")
    emu.add_member("general-12345", AGENT, "Agent lg1")
    emu.add_queue("expert-12320")
    await emu.start()
    client = AmiClient("127.0.0.1", emu.port, "hotline", "s")
    seen: list[Message] = []
    client.on_event(seen.append)
    await client.start()
    yield emu, client, seen
    await client.close()
    await emu.stop()


async def until(predicate, timeout: float = 3.0) -> None:
    async def poll():
        while not predicate():
            await asyncio.sleep(0.005)
    await asyncio.wait_for(poll(), timeout)


def answered(emu: AmiEmulator, dialed: str = "12348"):
    caller = emu.new_call("13800011111", dialed, channel=f"Local/{dialed}@hotline-from-carrier-0000004e;2",
                          context="hotline-queue-general-12345")
    emu.caller_joins_queue(caller.name, "general-12345")
    agent = emu.ring_agent(caller.name, AGENT)
    emu.agent_answers(caller.name, agent.name)
    return caller, agent


@pytest.mark.parametrize("scenario", ["answered", "noanswer", "unreachable"])
async def test_emulated_atxfer_sends_the_recorded_sequence(desk, scenario):
    emu, client, seen = desk
    want, recorded_events = recorded_sequence(f"ami-warm-{scenario}.txt")
    caller, agent = answered(emu)
    if scenario == "answered":
        emu.script_target("12348", answers=True, delay=0.01, consult=0.05)
    elif scenario == "noanswer":
        emu.dial_timeout = 0.1                     # the dialplan's Dial(…, no_answer_seconds), short
        emu.script_target("12348", answers=True, delay=5)
    else:
        emu.script_target("12348", reachable=False)
    reply = await client.action({"Action": "Atxfer", "Channel": agent.name, "Exten": "12348",
                                 "Context": "hotline-warm-transfer"})
    assert reply[0]["Message"] == "Atxfer successfully queued"
    await until(lambda: sum(1 for e in seen if e["Event"] == "Hangup" and "warm-transfer" in e["Channel"]) == 2)
    got = sequence(seen, {caller.name: "caller", agent.name: "agent"})
    assert got == want
    shapes = field_shapes(f"ami-warm-{scenario}.txt")
    new = {"Hold", "Unhold", "MusicOnHoldStart", "MusicOnHoldStop", "BridgeMerge", "AttendedTransfer",
           "LocalOptimizationBegin", "LocalOptimizationEnd", "DTMFEnd"}
    checked = [e["Event"] for e in seen if e["Event"] in new and e["Event"] in shapes]
    for e in seen:
        if e["Event"] in checked:
            assert tuple(e) in shapes[e["Event"]], e["Event"]          # the recorded field set and order
    assert {"Hold", "MusicOnHoldStart"} <= set(checked)
    if scenario == "answered":
        ours = next(e for e in seen if e["Event"] == "AttendedTransfer")
        theirs = next(e for e in recorded_events if e["Event"] == "AttendedTransfer")
        assert set(ours) == set(theirs) - {"Privilege"} | {"Privilege"}
        for e, names in ((ours, {caller.name: "caller", agent.name: "agent"}), (theirs, None)):
            names = names or {next(m for m in recorded_events if m["Event"] == "Hold")["Channel"]: "agent",
                              next(m for m in recorded_events if m["Event"] == "MusicOnHoldStart")["Channel"]:
                                  "caller"}
            assert [role_of(names, e[f"{p}Channel"]) for p in ("OrigTransferer", "SecondTransferer", "Transferee",
                                                                "TransferTarget")] == ["agent", "agent", "caller",
                                                                                       "leg1"]
            assert (e["OrigBridgeNumChannels"], e["SecondBridgeNumChannels"], e["IsExternal"], e["DestType"]) == \
                ("2", "0", "No", "Bridge")
            assert e["DestBridgeUniqueid"] == e["OrigBridgeUniqueid"] != e["SecondBridgeUniqueid"]
        dtmf = [e["Digit"] for e in seen if e["Event"] == "DTMFEnd"]
        assert dtmf in ([], list("*212348"))      # dtmf class: only for users that read it


async def test_emulated_redirect_out_of_the_queue_bridge_hangs_the_agent_up_and_defers_agentcomplete(desk):
    """Escalate and hand-over (ami-escalate.txt, ami-handover.txt): the agent is hung up at once, the first
    queue's AgentComplete comes only at the caller's final hang-up, Reason caller."""
    emu, client, seen = desk
    caller, agent = answered(emu, "12320")
    emu.add_member("expert-12320", EXPERT, "Expert ag2")
    reply = await client.action({"Action": "Redirect", "Channel": caller.name, "Context": "hotline-escalate",
                                 "Exten": "expert-12320", "Priority": "1"})
    assert reply[0]["Message"] == "Redirect successful"
    await until(lambda: any(e["Event"] == "QueueCallerJoin" and e.get("Queue") == "expert-12320" for e in seen))
    assert agent.name not in emu.channels
    assert not [e for e in seen if e["Event"] == "AgentComplete"]
    hangup = next(e for e in seen if e["Event"] == "Hangup" and e["Channel"] == agent.name)
    assert hangup["Cause"] == "16"
    expert = emu.ring_agent(caller.name, EXPERT)
    emu.agent_answers(caller.name, expert.name)
    emu.hangup(caller.name)
    await until(lambda: sum(1 for e in seen if e["Event"] == "AgentComplete") == 2)
    completes = [e for e in seen if e["Event"] == "AgentComplete"]
    assert [(e["Queue"], e["Reason"]) for e in completes] == [("expert-12320", "caller"), ("general-12345", "caller")]
    assert sorted(completes[1]) == ["Event", "HoldTime", "Interface", "MemberName", "Privilege", "Queue", "Reason",
                                    "TalkTime"]                                          # recorded: no channel


async def test_emulated_handover_agentcomplete_has_the_callers_fields_only(desk):
    emu, client, seen = desk
    caller, agent = answered(emu)
    emu.script_target("110", answers=True, delay=0.01)
    await client.action({"Action": "Redirect", "Channel": caller.name, "Context": "hotline-warm-transfer",
                         "Exten": "110", "Priority": "1"})
    await until(lambda: any(e["Event"] == "DialEnd" and e.get("DialStatus") == "ANSWER" for e in seen))
    assert agent.name not in emu.channels and not [e for e in seen if e["Event"] == "AgentComplete"]
    emu.hangup(caller.name)
    await until(lambda: any(e["Event"] == "AgentComplete" for e in seen))
    (complete,) = [e for e in seen if e["Event"] == "AgentComplete"]
    assert complete["Reason"] == "caller" and complete["Channel"] == caller.name
    assert not [k for k in complete if k.startswith("Dest")]


async def test_emulated_threeway_dual_redirect_and_originate_results(desk):
    """ami-threeway-answered.txt: Dual Redirect successful, no AgentComplete until the caller's end (then with the
    agent as Dest*); a failed Originate names the dial string as Channel and the ChannelId as Uniqueid."""
    emu, client, seen = desk
    caller, agent = answered(emu, "12360")
    emu.script_target("12360", answers=True, delay=0.01)
    req = TransferRequest(TransferKind.THREE_WAY, uniqueid=caller.uniqueid, caller_channel=caller.name,
                          agent_channel=agent.name, from_line="12360", target_trunk="subcenter-12360", dial="12360",
                          no_answer_seconds=2)
    driver = TransferDriver(client)
    record = await driver.run(req)
    assert record.outcome is TransferOutcome.ANSWERED
    assert "join: Dual Redirect successful" in driver.last_machine.log
    ok = next(e for e in seen if e["Event"] == "OriginateResponse")
    (recorded_shape,) = field_shapes("ami-threeway-answered.txt")["OriginateResponse"]
    assert tuple(k for k in ok if k != "ActionID") == recorded_shape
    assert (ok["Response"], ok["Reason"], ok["CallerIDName"]) == ("Success", "4", "12345")
    assert re.fullmatch(r"Local/12360@hotline-threeway-\w{8};1", ok["Channel"]) and ok["Uniqueid"].endswith("-leg")
    assert agent.name in emu.channels and not [e for e in seen if e["Event"] == "AgentComplete"]
    emu.hangup(caller.name)
    await until(lambda: any(e["Event"] == "AgentComplete" for e in seen))
    (complete,) = [e for e in seen if e["Event"] == "AgentComplete"]
    assert (complete["Reason"], complete["Channel"], complete["DestChannel"]) == ("caller", caller.name, agent.name)

    emu.script_target("12366", answers=False, delay=0.01)
    second, agent2 = answered(emu, "12366")
    req = TransferRequest(TransferKind.THREE_WAY, uniqueid=second.uniqueid, caller_channel=second.name,
                          agent_channel=agent2.name, from_line="12366", target_trunk="subcenter-12366", dial="12366",
                          no_answer_seconds=2)
    record = await TransferDriver(client).run(req)
    assert record.outcome is TransferOutcome.NO_ANSWER
    failure = next(e for e in seen if e["Event"] == "OriginateResponse" and e["Response"] == "Failure")
    assert failure["Channel"] == "Local/12366@hotline-threeway"                  # the dial string, no suffix
    assert re.fullmatch(r"xfer-\d+-.*-leg", failure["Uniqueid"])                  # the ChannelId asked for
    leg_hangup = next(i for i, e in enumerate(seen) if e["Event"] == "Hangup"
                      and e["Channel"].startswith("Local/12366@hotline-threeway-"))
    assert seen.index(failure) < leg_hangup                                       # recorded: response first


def threeway_prefix(events: list[Message]) -> list[tuple[str, ...]]:
    """From the Originate's leg to the core's DialEnd of leg;1, by role (leg1, leg2, seat)."""
    def role(channel: str | None) -> str | None:
        if not channel:
            return "-"
        if "@hotline-threeway-" in channel:
            return "leg" + channel[-1]
        return "seat" if channel.startswith("PJSIP/") else None
    out = []
    for e in events:
        if e.get("Event") not in ("Newchannel", "DialBegin", "DialEnd", "OriginateResponse", "Hangup"):
            continue
        who = role(e.get("Channel"))
        if who is None or (not out and who != "leg1"):
            continue
        out.append((e["Event"], who, role(e.get("DestChannel")) if "DestChannel" in e else "",
                    e.get("DialStatus") or e.get("Response") or ""))
        if out[-1] == ("DialEnd", "-", "leg1", "ANSWER"):
            break
    return out


async def test_emulated_threeway_originate_sends_the_recorded_sequence(desk):
    emu, client, seen = desk
    recorded = threeway_prefix([m for _, m in load("ami-threeway-answered-hotline.txt").events])
    caller, agent = answered(emu, "12360")
    emu.script_target("12360", answers=True, delay=0.01)
    req = TransferRequest(TransferKind.THREE_WAY, uniqueid=caller.uniqueid, caller_channel=caller.name,
                          agent_channel=agent.name, from_line="12360", target_trunk="subcenter-12360", dial="12360",
                          no_answer_seconds=2)
    assert (await TransferDriver(client).run(req)).outcome is TransferOutcome.ANSWERED
    assert threeway_prefix(seen) == recorded
    leg2 = next(e for e in seen if e["Event"] == "Newchannel" and e["Channel"].endswith(";2")
                and "threeway" in e["Channel"])
    assert leg2["Uniqueid"].endswith("-leg;2")                        # recorded: <ChannelId>;2
