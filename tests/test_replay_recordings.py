"""Every AMI recording of Asterisk 22.10.1 (tests/transcripts/ami-*.txt, both sets) replayed through our own code.

1. Parsed with the project's framing (ivr.ami.framing), each event fed to the live view (supervisor.state) and to
   the outcome tracker (records.outcomes): the counts and outcomes must be what the recording shows (NOTES-2.md).
2. The queue scenarios driven through the AMI emulator (ivr/ami/pbx.py) must give the recorded sequence: event
   names in order with their key fields (queue, dial status, hang-up cause, reason, who is caller / member leg);
   QueueMemberStatus, a device-state event that races the queue, is compared by its values and "after what".
The transfer recordings (ami-warm-*, ami-threeway-*, ami-escalate*, ami-handover*) are only parsed and fed to the
consumers here: their emulator comparison belongs to the transfer tests.
"""
from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from ivr.ami.emulator import AmiEmulator
from ivr.ami.framing import AmiDecoder, Message
from ivr.ami.transcript import read_transcript
from records.outcomes import QueueOutcomeTracker
from supervisor.state import LiveState
from tests.conftest import TRANSCRIPTS

AMI_FILES = sorted(TRANSCRIPTS.glob("ami-*.txt"))
T0 = 1_800_000_000.0
BASE = datetime.fromtimestamp(T0, timezone.utc)


def events_of(path: Path) -> list[tuple[float, Message]]:
    """(seconds, event) of the Asterisk side, with the project's decoder; list items of actions left out."""
    chunks = read_transcript(path)
    first = next(c for c in chunks if c.direction == "A>C")
    decoder = AmiDecoder(expect_banner=first.data.startswith(b"Asterisk Call Manager/"))   # -engine: a slice
    out = []
    for chunk in chunks:
        if chunk.direction == "A>C":
            out += [(chunk.seconds, m) for m in decoder.feed(chunk.data) if "Event" in m and "ActionID" not in m]
    assert decoder.pending_bytes == 0
    return out


def test_both_sets_are_here():
    assert len(AMI_FILES) == 40       # 10 + 29 + ami-queue-overflow.txt (issue 9: the HotlineQueueLeft event)


# ---- 1. the consumers -------------------------------------------------------------------------------------------
# recording -> ({queue: (answered, abandoned, overflowed)}, [(uniqueid, outcome, wait seconds)]), as the recording
# shows it (INDEX.txt / NOTES-2.md): a leave-empty or timeout overflow answered in general-12345 is answered, not
# abandoned; a Redirect out of the waiting queue is no abandon; a caller hanging up while waiting is.
NONE: tuple[dict, list] = ({}, [])
EXPECTED: dict[str, tuple[dict[str, tuple[int, int, int]], list[tuple[str, str, float]]]] = {
    "ami-abandon-while-ringing-local.txt": ({"general-12345": (0, 1, 0)},
                                            [("abandon-while-ringing-local-17210-1-2", "abandoned", 5.0)]),
    "ami-agi-failure.txt": NONE, "ami-agi-hangup.txt": NONE, "ami-agi-redirect.txt": NONE,
    "ami-atxfer.txt": ({"expert-12320": (1, 0, 0)}, [("1795698869.5", "answered", 1.0)]),
    "ami-bad-login.txt": NONE,
    "ami-chanspy.txt": ({"general-12345": (1, 0, 0)}, [("chanspy-17731-1-2", "answered", 0.0)]),
    "ami-chanspy-engine.txt": ({"general-12345": (1, 0, 0)}, [("chanspy-17731-1-2", "answered", 0.0)]),
    "ami-chanspy-media.txt": ({"general-12345": (1, 0, 0)}, [("chanspy-media-18586-1-2", "answered", 1.0)]),
    "ami-chanspy-media-engine.txt": ({"general-12345": (1, 0, 0)}, [("chanspy-media-18586-1-2", "answered", 1.0)]),
    "ami-chanspy-pjsip.txt": ({"general-12345": (1, 0, 0)}, [("chanspy-pjsip-18563-1-2", "answered", 0.0)]),
    "ami-chanspy-pjsip-engine.txt": ({"general-12345": (1, 0, 0)}, [("chanspy-pjsip-18563-1-2", "answered", 0.0)]),
    "ami-emergency-invite.txt": NONE, "ami-emergency-invite-extra.txt": NONE,
    "ami-engine-stall.txt": NONE, "ami-engine-stall-exitonhangup.txt": NONE, "ami-engine-stall-probe.txt": NONE,
    "ami-errors.txt": NONE,
    # answered in general-12345, escalated, answered by the expert: one call, its last queue answered it
    "ami-escalate.txt": ({"general-12345": (1, 0, 0), "expert-12320": (1, 0, 0)},
                         [("escalate-17678-1-2", "answered", 0.0)]),
    "ami-escalate-hotline.txt": ({"expert-12320": (1, 0, 0)}, []),      # the CLI logs off before the hang-up
    "ami-handover.txt": ({"general-12345": (1, 0, 0)}, [("handover-18548-1-2", "answered", 0.0)]),
    "ami-handover-hotline.txt": NONE,
    "ami-member-states.txt": ({"general-12345": (2, 0, 0)}, [("member-states-18469-1-2", "answered", 2.0),
                                                           ("member-states-18469-2-2", "answered", 3.0)]),
    # a caller waiting while the actions ran, then hung up: abandoned
    "ami-pjsip-show-endpoint.txt": ({"general-12345": (0, 1, 0)},
                                    [("pjsip-show-endpoint-18385-1-2", "abandoned", 12.0)]),
    "ami-queue-answered.txt": ({"expert-12320": (1, 0, 0)}, [("1795698853.1", "answered", 1.0)]),
    "ami-queue-leaveempty.txt": ({"minors-protection": (0, 0, 1), "general-12345": (1, 0, 0)},
                                 [("queue-leaveempty-17227-1-2", "answered", 0.0)]),
    # Redirect out of the waiting queue, the caller hung up 2 s later: neither abandoned nor overflowed
    "ami-queue-redirect.txt": ({}, [("1795698890.11", "no_answer", 2.0)]),
    # with the generated HotlineQueueLeft: leave-empty answered in general; timeout, then the caller hung up there
    "ami-queue-overflow.txt": ({"minors-protection": (0, 0, 2), "general-12345": (1, 1, 0)},
                               [("qo1", "answered", 0.0), ("qo2", "abandoned", 6.0)]),
    "ami-queue-timeout.txt": ({"minors-protection": (0, 0, 1), "general-12345": (1, 0, 0)},
                              [("queue-timeout-17251-1-2", "answered", 60.0)]),
    "ami-reload.txt": ({"general-12345": (0, 1, 0)}, [("reload-18339-1-2", "abandoned", 21.0)]),
    "ami-sip-baresip.txt": ({"expert-12320": (1, 0, 0)}, [("1795698957.32", "answered", 1.0)]),
    "ami-status.txt": NONE,
    "ami-threeway-answered.txt": ({"general-12345": (1, 0, 0)}, [("threeway-answered-18532-1-2", "answered", 0.0)]),
    "ami-threeway-answered-hotline.txt": NONE,
    "ami-warm-answered.txt": ({"general-12345": (1, 0, 0)}, [("warm-answered-18498-1-2", "answered", 0.0)]),
    "ami-warm-answered-hotline.txt": NONE,
    "ami-warm-noanswer.txt": ({"general-12345": (1, 0, 0)}, [("warm-noanswer-17415-1-2", "answered", 0.0)]),
    "ami-warm-noanswer-hotline.txt": NONE,
    "ami-warm-unreachable.txt": ({"general-12345": (1, 0, 0)}, [("warm-unreachable-17488-1-2", "answered", 0.0)]),
    "ami-warm-unreachable-hotline.txt": NONE,
}


def test_every_recording_has_its_expectation():
    assert sorted(EXPECTED) == [p.name for p in AMI_FILES]


@pytest.mark.parametrize("path", AMI_FILES, ids=lambda p: p.name)
def test_live_view_and_outcomes_say_what_the_recording_shows(path):
    state, tracker, records = LiveState(), QueueOutcomeTracker(), []
    last = 0.0
    for seconds, event in events_of(path):
        state.apply("pbx", event, T0 + seconds)
        records += tracker.feed(event, BASE + timedelta(seconds=seconds))
        last = seconds
    view = state.view(T0 + last, full_numbers=False)
    counts = {q["name"]: (q["answered"], q["abandoned"], q["overflowed"]) for s in view["servers"]
              for q in s["queues"] if q["answered"] or q["abandoned"] or q["overflowed"]}
    queues, outcomes = EXPECTED[path.name]
    assert counts == queues
    assert [(r.uniqueid, r.outcome.value, r.wait_seconds) for r in records] == outcomes
    assert all(q["waiting"] == 0 for s in view["servers"] for q in s["queues"])   # nobody left behind


@pytest.mark.parametrize("path", [p for p in AMI_FILES if p.name.endswith(("-hotline.txt", "-engine.txt"))],
                         ids=lambda p: p.name)
def test_user_hotline_receives_only_its_read_classes(path):
    """What the emulator must copy: user hotline (read=call,agent[,user]) never gets dialplan/dtmf/agi events."""
    names = {e.get("Event") for _, e in events_of(path)}
    assert names.isdisjoint({"VarSet", "Newexten", "DTMFBegin", "DTMFEnd", "AGIExecStart", "AGIExecEnd", "Reload",
                             "FullyBooted", "SuccessfulAuth"})
    assert names & {"Newchannel", "Hangup", "QueueCallerJoin", "AgentConnect"}


# ---- 2. the emulator through the same queue scenarios -----------------------------------------------------------
STRICT = {"QueueCallerJoin", "QueueCallerAbandon", "QueueCallerLeave", "AgentCalled", "DialBegin", "DialState",
          "DialEnd", "AgentConnect", "AgentRingNoAnswer", "AgentComplete", "HangupRequest", "Hangup", "UserEvent"}
CALL_ENDS = ("AgentComplete",)         # after it, the hang-up order of agent and caller is the bridge's business


def shape(events: list[Message], caller: str) -> tuple[list[tuple], list[tuple], list[tuple]]:
    """(strict sequence up to the call's end, what follows it as a sorted list, QueueMemberStatus with what it came
    after). Channels are named by role: the caller (its ;2 uniqueid) and the member legs AgentCalled rang."""
    legs: set[str] = set()
    rung: set[str] = set()
    strict: list[tuple] = []
    members: list[tuple] = []
    joined = other_call = False
    for e in events:
        name = e.get("Event")
        if name == "QueueCallerJoin":
            joined = joined or e.get("Uniqueid") == caller
            other_call = other_call or (joined and e.get("Uniqueid") != caller)     # the next scenario began
        if name == "AgentCalled" and e.get("Uniqueid") == caller:
            legs.add(e.get("DestChannel", ""))
            rung.add(e.get("Interface", ""))
        if name == "QueueMemberStatus":
            if e.get("Interface") in rung and not other_call:
                anchor = next((s for s in reversed(strict) if s[0] in ("AgentCalled", "AgentComplete", "DialEnd")))
                # the device state follows the member's call: rung or answered ("call"), or that call over ("end")
                phase = "call" if anchor[0] == "AgentCalled" or anchor[2] == "ANSWER" else "end"
                members.append((e.get("Queue"), e.get("Status"), phase))
            continue
        if name == "VarSet" and e.get("Variable") in ("ABANDONED", "QUEUESTATUS"):   # app_queue's own variables
            name = f"VarSet {e['Variable']}={e.get('Value', '')}"
        elif name not in STRICT:
            continue
        mine = e.get("Uniqueid") == caller
        leg = name == "Hangup" and e.get("Channel") in legs
        if not (mine or leg) or (name == "HangupRequest" and not mine):
            continue
        dest = "member" if e.get("DestChannel") in legs else ""
        strict.append((name, e.get("Queue", ""), e.get("DialStatus", "") or e.get("Status", ""),
                       e.get("Cause", "") if name == "Hangup" else e.get("Reason", "") or e.get("Next", ""),
                       "member" if leg else "caller", dest))
    end = next((i for i, s in enumerate(strict) if s[0] in CALL_ENDS), len(strict) - 1)
    return strict[:end + 1], sorted(strict[end + 1:]), members


def recorded_shape(name: str, caller: str):
    return shape([e for _, e in events_of(TRANSCRIPTS / name)], caller)


class Scenario:
    """An emulator whose events are captured in order (no sockets: the model's `emit`)."""

    def __init__(self) -> None:
        self.emu = AmiEmulator()
        self.events: list[Message] = []
        self.emu.emit = self.events.append            # type: ignore[method-assign]

    async def settle(self) -> None:
        for _ in range(5):                            # the asynchronous QueueMemberStatus after an abandon
            await asyncio.sleep(0)

    def call(self, dialed: str = "12348"):
        return self.emu.new_call("13800138000", dialed, channel=f"Local/{dialed}@hotline-from-carrier-0000004b;2")


async def answered_local(sc: Scenario):
    """ami-queue-answered: expert-12320, agent1 (Local) rings, answers, hangs up."""
    sc.emu.add_queue("expert-12320")
    sc.emu.add_member("expert-12320", "Local/agent1@queue-agents/n", "Agent One")
    caller = sc.call("12320")
    sc.emu.caller_joins_queue(caller.name, "expert-12320")
    agent = sc.emu.ring_agent(caller.name, "Local/agent1@queue-agents/n")
    sc.emu.agent_answers(caller.name, agent.name)
    sc.emu.hangup(agent.name, 16)
    return caller


async def redirect_while_ringing(sc: Scenario):
    """ami-queue-redirect: general-12345, agent2 rings, AMI Redirect of the caller, later AMI Hangup."""
    sc.emu.add_queue("general-12345", "rrmemory")
    sc.emu.add_member("general-12345", "Local/agent2@queue-agents/n", "Agent Two")
    sc.emu.add_member("general-12345", "Local/agent3@queue-agents/n", "Agent Three")
    caller = sc.call("12345")
    sc.emu.caller_joins_queue(caller.name, "general-12345")
    sc.emu.ring_agent(caller.name, "Local/agent2@queue-agents/n")
    sc.emu.redirect(caller.name, "redirected", "s")
    await sc.settle()
    sc.emu.hangup(caller.name, 16)
    return caller


async def abandon_while_ringing(sc: Scenario):
    """ami-abandon-while-ringing-local: rr1 (Local, Ringing() for ever) rings, the caller hangs up."""
    sc.emu.add_queue("general-12345")
    sc.emu.add_member("general-12345", "Local/rr1@e2e-ringer/n", "Local Agent rr1")
    caller = sc.call()
    sc.emu.caller_joins_queue(caller.name, "general-12345")
    sc.emu.ring_agent(caller.name, "Local/rr1@e2e-ringer/n")
    sc.emu.caller_abandons(caller.name)
    await sc.settle()
    return caller


def overflow_queues(sc: Scenario, minors_member: str | None) -> None:
    sc.emu.add_queue("minors-protection", timeout=60, leave_when_empty=True, overflow_to="general-12345")
    if minors_member:
        sc.emu.add_member("minors-protection", minors_member, "Local Agent rr1")
    sc.emu.add_queue("general-12345")
    sc.emu.add_member("general-12345", "Local/ag1@e2e-agent/n", "Agent ag1")


async def leave_empty(sc: Scenario):  # ag1 Answer()s at once: no ringing indication, no DialState
    """ami-queue-leaveempty: minors-protection without members -> general-12345, ag1 answers at once."""
    overflow_queues(sc, None)
    caller = sc.call("12349")
    sc.emu.caller_joins_queue(caller.name, "minors-protection")
    agent = sc.emu.ring_agent(caller.name, "Local/ag1@e2e-agent/n", ringing=False)
    sc.emu.agent_answers(caller.name, agent.name)
    sc.emu.hangup(agent.name, 16)
    return caller


async def timeout(sc: Scenario):
    """ami-queue-timeout: rr1 rings three times unanswered, TIMEOUT, general-12345, ag1 answers."""
    overflow_queues(sc, "Local/rr1@e2e-ringer/n")
    caller = sc.call("12349")
    sc.emu.caller_joins_queue(caller.name, "minors-protection")
    for _ in range(3):
        leg = sc.emu.ring_agent(caller.name, "Local/rr1@e2e-ringer/n")
        sc.emu.agent_no_answer(caller.name, leg.name)
    sc.emu.queue_times_out(caller.name)
    agent = sc.emu.ring_agent(caller.name, "Local/ag1@e2e-agent/n", ringing=False)
    sc.emu.agent_answers(caller.name, agent.name)
    sc.emu.hangup(agent.name, 16)
    return caller


async def overflow_leave_empty_answered(sc: Scenario):
    """ami-queue-overflow, call 1: leave-empty to general-12345, ag1 answers at once, the caller hangs up."""
    overflow_queues(sc, None)
    caller = sc.call("12349")
    sc.emu.caller_joins_queue(caller.name, "minors-protection")
    agent = sc.emu.ring_agent(caller.name, "Local/ag1@e2e-agent/n", ringing=False)
    sc.emu.agent_answers(caller.name, agent.name)
    sc.emu.caller_abandons(caller.name)               # its phone hangs up: HangupRequest, then the bridge ends
    return caller


async def overflow_timeout_while_ringing(sc: Scenario):
    """ami-queue-overflow, call 2: Queue()'s timeout while rr1 rings, general-12345 has nobody, the caller hangs
    up there."""
    overflow_queues(sc, "Local/rr1@e2e-ringer/n")
    sc.emu.queues["general-12345"].members.clear()
    caller = sc.call("12349")
    sc.emu.caller_joins_queue(caller.name, "minors-protection")
    sc.emu.ring_agent(caller.name, "Local/rr1@e2e-ringer/n")
    sc.emu.queue_times_out(caller.name)
    await sc.settle()
    sc.emu.caller_abandons(caller.name, cause=0)
    return caller


async def pjsip_member_answers(sc: Scenario):
    """ami-member-states, first call: PJSIP/agent7001 rings (6), answers (2, InCall 1), hangs up."""
    sc.emu.add_queue("general-12345")
    sc.emu.add_member("general-12345", "PJSIP/agent7001", "SIP Agent 7001")
    caller = sc.call()
    sc.emu.caller_joins_queue(caller.name, "general-12345")
    agent = sc.emu.ring_agent(caller.name, "PJSIP/agent7001")
    sc.emu.agent_answers(caller.name, agent.name)
    sc.emu.hangup(agent.name, 16)
    return caller


async def local_member_rings_then_answers(sc: Scenario):
    """ami-member-states, second call: ra1 (Local, rings 3 s, answers): 2 at the ring, nothing at the answer."""
    sc.emu.add_queue("general-12345")
    sc.emu.add_member("general-12345", "Local/ra1@e2e-ringer/n", "Local Agent ra1")
    caller = sc.call()
    sc.emu.caller_joins_queue(caller.name, "general-12345")
    agent = sc.emu.ring_agent(caller.name, "Local/ra1@e2e-ringer/n")
    sc.emu.agent_answers(caller.name, agent.name)
    sc.emu.hangup(agent.name, 16)
    return caller


SCENARIOS = [
    ("ami-queue-answered.txt", "1795698853.1", answered_local),
    ("ami-queue-redirect.txt", "1795698890.11", redirect_while_ringing),
    ("ami-abandon-while-ringing-local.txt", "abandon-while-ringing-local-17210-1-2", abandon_while_ringing),
    ("ami-queue-leaveempty.txt", "queue-leaveempty-17227-1-2", leave_empty),
    ("ami-queue-timeout.txt", "queue-timeout-17251-1-2", timeout),
    ("ami-queue-overflow.txt", "qo1", overflow_leave_empty_answered),
    ("ami-queue-overflow.txt", "qo2", overflow_timeout_while_ringing),
    ("ami-member-states.txt", "member-states-18469-1-2", pjsip_member_answers),
    ("ami-member-states.txt", "member-states-18469-2-2", local_member_rings_then_answers),
]


@pytest.mark.parametrize("name, caller, drive", SCENARIOS, ids=[f"{s[0]}:{s[2].__name__}" for s in SCENARIOS])
async def test_the_emulator_gives_the_recorded_queue_sequence(name, caller, drive):
    want = recorded_shape(name, caller)
    sc = Scenario()
    chan = await drive(sc)
    await sc.settle()
    got = shape(sc.events, chan.uniqueid)
    if not any(s[0] == "UserEvent" for s in want[0]):   # recorded before the dialplan sent HotlineQueueLeft
        got = ([s for s in got[0] if s[0] != "UserEvent"], got[1], got[2])
    assert got[0] == want[0]                          # strict order up to the end of the queue call
    assert got[1] == want[1]                          # then the same hang-ups, in the bridge's order
    # QueueMemberStatus races the queue (device-state thread): same values, each in the same phase of the call
    assert got[2] == want[2]


def test_member_state_events_carry_the_recorded_values():
    """Status 2 for a ringing Local member, 6 for PJSIP; RingTime in ms for a ring no-answer, in s at connect."""
    sc = Scenario()
    sc.emu.add_queue("general-12345")
    sc.emu.add_member("general-12345", "Local/rr1@e2e-ringer/n", "rr1")
    sc.emu.add_member("general-12345", "PJSIP/agent7001", "7001")
    caller = sc.call()
    sc.emu.caller_joins_queue(caller.name, "general-12345")
    leg = sc.emu.ring_agent(caller.name, "Local/rr1@e2e-ringer/n")
    call = caller.queue_call
    call.rang -= 15.0                                  # as if it had rung the queue's 15 s
    sc.emu.agent_no_answer(caller.name, leg.name)
    pjsip = sc.emu.ring_agent(caller.name, "PJSIP/agent7001")
    caller.queue_call.rang -= 3.0
    sc.emu.agent_answers(caller.name, pjsip.name)
    statuses = [(e["Interface"], e["Status"], e["InCall"]) for e in sc.events if e["Event"] == "QueueMemberStatus"]
    assert statuses == [("Local/rr1@e2e-ringer/n", "2", "0"), ("Local/rr1@e2e-ringer/n", "1", "0"),
                        ("PJSIP/agent7001", "6", "0"), ("PJSIP/agent7001", "2", "1")]
    (rna,) = [e for e in sc.events if e["Event"] == "AgentRingNoAnswer"]
    assert 15000 <= int(rna["RingTime"]) < 16000      # recorded: RingTime 15000
    (connect,) = [e for e in sc.events if e["Event"] == "AgentConnect"]
    assert connect["RingTime"] == "3"                 # recorded: seconds (0, 1, 3)
    avail = [e["State"] for e in sc.events if e.get("Device") == "Queue:general-12345_avail"]
    assert avail and avail[0] in ("NOT_INUSE", "INUSE")


async def test_leave_empty_and_timeout_reach_the_next_queue_and_say_so():
    """The emulator's dialplan: HotlineQueueLeft (user class) after Queue() returned, then the next queue."""
    sc = Scenario()
    overflow_queues(sc, None)
    sc.emu.queues["minors-protection"].timeout = 0.05
    sc.emu.queues["minors-protection"].leave_when_empty = False       # rings nobody, waits for the timeout
    caller = sc.call("12349")
    started = time.monotonic()
    sc.emu.caller_joins_queue(caller.name, "minors-protection")
    for _ in range(100):
        if caller.queue == "general-12345":
            break
        await asyncio.sleep(0.01)
    assert caller.queue == "general-12345" and time.monotonic() - started >= 0.05
    left = [e for e in sc.events if e["Event"] == "UserEvent"]
    assert [(e["UserEvent"], e["Queue"], e["Status"], e["Next"]) for e in left] == [
        ("HotlineQueueLeft", "minors-protection", "TIMEOUT", "general-12345")]
    names = [e["Event"] for e in sc.events if e.get("Uniqueid") == caller.uniqueid]
    # recorded (ami-queue-overflow.txt): ..., VarSet QUEUESTATUS, UserEvent, VarSet ABANDONED= (cleared), Join
    assert names[names.index("QueueCallerAbandon"):][:6] == ["QueueCallerAbandon", "QueueCallerLeave", "VarSet",
                                                             "UserEvent", "VarSet", "QueueCallerJoin"]
    state = LiveState()
    for e in sc.events:
        state.apply("pbx", e, T0)
    (minors,) = [q for s in state.view(T0, full_numbers=False)["servers"] for q in s["queues"]
                 if q["name"] == "minors-protection"]
    assert (minors["abandoned"], minors["overflowed"]) == (0, 1)


async def test_sessions_get_only_the_events_of_their_read_class():
    """User hotline (read=call,agent,user): no VarSet, Newexten or DTMF; an observer with read=all gets them."""
    from ivr.ami.client import AmiClient
    emu = AmiEmulator(secret="s")
    emu.add_user("e2e", "o", "all")
    emu.add_queue("minors-protection", leave_when_empty=True, overflow_to="general-12345")
    emu.add_queue("general-12345")
    await emu.start()
    hotline, observer = (AmiClient("127.0.0.1", emu.port, user, secret) for user, secret in (("hotline", "s"),
                                                                                               ("e2e", "o")))
    got: dict[str, list[str]] = {"hotline": [], "e2e": []}
    try:
        for who, client in (("hotline", hotline), ("e2e", observer)):
            client.on_event(lambda e, who=who: got[who].append(e["Event"]))
            await client.start()
            await client.wait_connected(3)
        caller = emu.new_call("13800138000", "12349")
        emu.caller_joins_queue(caller.name, "minors-protection")     # leave-empty: VarSet QUEUESTATUS, UserEvent
        emu.caller_abandons(caller.name)
        for _ in range(100):
            if "Hangup" in got["hotline"] and "Hangup" in got["e2e"]:
                break
            await asyncio.sleep(0.01)
    finally:
        await hotline.close()
        await observer.close()
        await emu.stop()
    assert "VarSet" in got["e2e"] and "VarSet" not in got["hotline"]
    assert "FullyBooted" in got["e2e"] and "FullyBooted" not in got["hotline"]
    assert "UserEvent" in got["hotline"] and "QueueCallerAbandon" in got["hotline"] and "Hangup" in got["hotline"]


async def test_pjsip_show_endpoint_answers_a_list_and_an_unknown_one_as_recorded():
    emu = AmiEmulator(secret="s")
    emu.add_endpoint("agent7001", contact="NonQualified")
    await emu.start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", emu.port)
        writer.write(b"Action: Login\r\nUsername: hotline\r\nSecret: s\r\nEvents: off\r\n\r\n"
                     b"Action: PJSIPShowEndpoint\r\nActionID: a1\r\nEndpoint: agent7001\r\n\r\n"
                     b"Action: PJSIPShowEndpoint\r\nActionID: a2\r\nEndpoint: no-such-endpoint\r\n\r\n")
        raw = b""
        while b"no-such-endpoint\n\r\n\r\n" not in raw:
            raw += await asyncio.wait_for(reader.read(65536), 3)
        writer.close()
    finally:
        await emu.stop()
    messages = AmiDecoder().feed(raw)
    listed = [m.get("Event") for m in messages if m.get("ActionID") == "a1"]
    assert listed == [None, "EndpointDetail", "AorDetail", "ContactStatusDetail", "EndpointDetailComplete"]
    assert raw.endswith(b"Message: Unable to retrieve endpoint no-such-endpoint\n\r\n\r\n")   # the bare LF
    (error,) = [m for m in messages if m.get("ActionID") == "a2"]
    assert error == {"Response": "Error", "ActionID": "a2", "Message": "Unable to retrieve endpoint no-such-endpoint"}
