"""The transfer machines fed the recorded Asterisk 22 streams (tests/transcripts/ami-*-hotline.txt): exactly the
events user hotline (read=call,agent) received, at their recorded times, and the recorded replies to the actions
the machine sends. Where the CLI's own connection ended before Asterisk had finished (warm-noanswer), the rest
comes from the observer stream of the same call, cut down to the call and agent classes."""
from __future__ import annotations

import heapq
import itertools
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from ivr.ami.framing import AmiDecoder, Message
from ivr.ami.transcript import read_transcript
from ivr.ami.transfers import TransferMachine, TransferRequest, machine_for
from records.types import TransferOutcome
from routing.model import TransferKind

HERE = Path(__file__).parent / "transcripts"
T0 = datetime(2026, 12, 1, 8, 0, tzinfo=timezone.utc)
HOTLINE_CLASSES = {"call", "agent"}


@dataclass
class Stream:
    events: list[tuple[float, Message]] = field(default_factory=list)
    actions: list[tuple[float, Message]] = field(default_factory=list)
    replies: dict[str, tuple[float, Message]] = field(default_factory=dict)


def load(name: str, *, hotline_view: bool = False, offset: float = 0.0) -> Stream:
    """One recorded connection; `hotline_view` keeps only the events a read=call,agent user gets."""
    out = Stream()
    decoders = {"A>C": AmiDecoder(expect_banner=True), "C>A": AmiDecoder(expect_banner=False)}
    for chunk in read_transcript(HERE / name):
        if chunk.direction not in decoders or not chunk.data:
            continue
        for msg in decoders[chunk.direction].feed(chunk.data):
            t = chunk.seconds - offset
            if chunk.direction == "C>A":
                out.actions.append((t, msg))
            elif "Event" in msg and ("ActionID" not in msg or msg["Event"] == "OriginateResponse"):
                if hotline_view and not HOTLINE_CLASSES & set(msg.get("Privilege", "").split(",")):
                    continue
                out.events.append((t, msg))
            elif "Response" in msg and "ActionID" in msg:
                out.replies[msg["ActionID"]] = (t, msg)
    return out


def first(stream: Stream, event: str, **match: str) -> Message:
    return next(m for _, m in stream.events if m.get("Event") == event
                and all(m.get(k) == v for k, v in match.items()))


RECORDED_KEYS = ("Action", "Channel", "Context", "Exten", "Priority", "ExtraChannel", "ExtraContext", "ExtraExten",
                 "Variable", "Value", "Timeout", "ChannelId", "CallerID", "ActionID")


def replay(machine: TransferMachine, stream: Stream, *, start: float, until: float = 120.0,
           synthetic: dict[str, dict[str, str]] | None = None) -> list[tuple[float, Message]]:
    """Drive `machine` over the stream as the driver would (one action at a time). An action the recording has
    (same Action, in order) must carry the recorded fields and gets the recorded reply at its time; others
    (the hand-over's DIALSTATUS poll, our no-answer Hangup) get `synthetic[Action]` or a plain Success.
    Returns the actions sent, with their times."""
    at = lambda t: T0 + timedelta(seconds=t)   # noqa: E731
    recorded = [m for _, m in stream.actions if m.get("Action") not in ("Login", "Logoff", "Ping", "CoreShowChannels")]
    seq = itertools.count()
    heap: list = [(t, next(seq), "event", m) for t, m in stream.events if t >= start]
    heapq.heapify(heap)
    outbox: list = []
    sent: list[tuple[float, Message]] = []
    busy = False

    def send_next(now: float) -> None:
        nonlocal busy
        if busy or not outbox or machine.finished:
            return
        send = outbox.pop(0)
        busy = True
        sent.append((now, send.fields))
        if recorded and recorded[0]["Action"] == send.fields["Action"]:
            want = recorded.pop(0)
            for key in RECORDED_KEYS:
                if key == "Variable" and key in want:
                    # since the recording the Originate also names the caller's channel (its caller ID for the
                    # leg): every recorded variable must still be sent
                    sent_vars = send.fields.get(key)
                    sent_vars = [sent_vars] if isinstance(sent_vars, str) else list(sent_vars or ())
                    assert set(want[key].split("\n")) <= set(sent_vars), (key, send.fields, want)
                elif key in want and key != "ActionID":
                    assert str(send.fields.get(key)) == want[key], (key, send.fields, want)
            t, reply = stream.replies[want["ActionID"]]
            heapq.heappush(heap, (max(t, now), next(seq), "reply", (send.tag, [reply])))
        else:
            reply = {"Response": "Success", **(synthetic or {}).get(send.fields["Action"], {})}
            heapq.heappush(heap, (now, next(seq), "reply", (send.tag, [reply])))

    outbox += machine.start(at(start))
    send_next(start)
    now = start
    while not machine.finished and now <= until:
        wake = machine.wake_at
        nxt = heap[0][0] if heap else until + 1
        if wake is not None and (wake - T0).total_seconds() < nxt and not busy:
            now = max(now, (wake - T0).total_seconds())
            if now > until:
                break
            outbox += machine.tick(at(now))
            send_next(now)
            continue
        if not heap:
            break
        now, _, kind, data = heapq.heappop(heap)
        if kind == "event":
            outbox += machine.on_event(data, at(now))
        else:
            busy = False
            outbox += machine.on_reply(data[0], data[1], at(now))
        send_next(now)
    return sent


def warm_request(stream: Stream, *, seconds: float = 30, linkedid: bool = True) -> TransferRequest:
    atxfer = next(m for _, m in stream.actions if m.get("Action") == "Atxfer")
    hold = first(stream, "Hold")
    caller = first(stream, "MusicOnHoldStart")
    return TransferRequest(TransferKind.ATTENDED, uniqueid=caller["Uniqueid"], caller_channel=caller["Channel"],
                           agent_channel=atxfer["Channel"], from_line="12348", target_trunk="seat-12348",
                           dial=atxfer["Exten"], no_answer_seconds=seconds,
                           linkedid=hold["Linkedid"] if linkedid else None)


def run_warm(name: str, *, tail: str | None = None, tail_offset: float = 0.0, **kw) -> TransferMachine:
    stream = load(name)
    if tail:        # the observer's events after the CLI logged off, as user hotline would have got them
        rest = load(tail, hotline_view=True, offset=tail_offset)
        end = max(t for t, _ in stream.events)
        stream.events += [(t, m) for t, m in rest.events if t > end + 0.01]
    machine = machine_for(warm_request(stream, **kw), T0, attempt_id="a")
    sent = replay(machine, stream, start=0.002)
    machine.sent = sent
    return machine


@pytest.mark.parametrize("linkedid", [True, False], ids=["by-linkedid", "by-bridge"])
def test_warm_answered_is_answered(linkedid):
    m = run_warm("ami-warm-answered-hotline.txt", linkedid=linkedid)
    assert m.outcome is TransferOutcome.ANSWERED, m.log
    assert (m.ended_at - T0).total_seconds() == pytest.approx(4.588)
    assert m.leg == "Local/12348@hotline-warm-transfer-00000050;1"
    assert m.target == "PJSIP/seat-12348-00000017" and "PJSIP/seat-12348-00000017" in m.reason
    assert [a["Action"] for _, a in m.sent] == ["Atxfer"]


def test_warm_answered_with_a_consultation_longer_than_the_bound_still_counts():
    """The seat answered at +0.58 s; the agent talked to it 4 s: a 1 s bound must not turn that into a failure."""
    m = run_warm("ami-warm-answered-hotline.txt", seconds=1)
    assert m.outcome is TransferOutcome.ANSWERED, m.log
    assert [a["Action"] for _, a in m.sent] == ["Atxfer"]       # the leg was never hung up


def test_warm_noanswer_bound_hangs_up_the_leg_and_the_caller_returns():
    m = run_warm("ami-warm-noanswer-hotline.txt", tail="ami-warm-noanswer.txt", tail_offset=3.641)
    assert m.outcome is TransferOutcome.RETURNED, m.log
    actions = [(round(t, 3), a["Action"], a.get("Channel")) for t, a in m.sent]
    # the leg appeared at +0.568: the bound (30 s) runs from there, on leg;2 (the half that dials the seat)
    assert actions == [(0.002, "Atxfer", "Local/lg1@e2e-agent-00000016;1"),
                       (30.568, "Hangup", "Local/12348@hotline-warm-transfer-00000017;2")]
    assert "no answer within 30 s" in m.reason


def test_warm_noanswer_when_the_dialplan_gives_up_first():
    m = run_warm("ami-warm-noanswer-hotline.txt", tail="ami-warm-noanswer.txt", tail_offset=3.641, seconds=40)
    assert m.outcome is TransferOutcome.RETURNED, m.log
    assert [a["Action"] for _, a in m.sent] == ["Atxfer"]
    assert "noanswer" in m.reason and (m.ended_at - T0).total_seconds() == pytest.approx(30.605, abs=0.01)


@pytest.mark.parametrize("linkedid", [True, False], ids=["by-linkedid", "by-bridge"])
def test_warm_unreachable_is_reported_at_once(linkedid):
    m = run_warm("ami-warm-unreachable-hotline.txt", linkedid=linkedid)
    assert m.outcome is TransferOutcome.FAILED, m.log
    assert (m.ended_at - T0).total_seconds() == pytest.approx(0.571, abs=0.003)
    assert "seat-12348 unreachable" in m.reason and "3" in m.reason and "caller back with the agent" in m.reason


def test_threeway_answered():
    stream = load("ami-threeway-answered-hotline.txt")
    setvar = next(m for _, m in stream.actions if m.get("Action") == "Redirect")
    req = TransferRequest(TransferKind.THREE_WAY, uniqueid="threeway-answered-18532-1-2",
                          caller_channel=setvar["Channel"], agent_channel=setvar["ExtraChannel"], from_line="12360",
                          target_trunk="subcenter-12360", dial="12360", no_answer_seconds=45)
    m = machine_for(req, T0, attempt_id="xfer-1-threeway-answered-18532-1-2")
    sent = replay(m, stream, start=0.004)
    assert m.outcome is TransferOutcome.ANSWERED, m.log
    assert [a["Action"] for _, a in sent] == ["Originate", "Setvar", "Setvar", "Redirect"]
    assert m.target == "Local/12360@hotline-threeway-00000056;1"
    assert any("Dual Redirect successful" in line for line in m.log)


def _caller(stream: Stream, action: str) -> str:
    return next(m for _, m in stream.actions if m.get("Action") == action)["Channel"]


def test_handover_answered():
    stream = load("ami-handover-hotline.txt")
    caller = _caller(stream, "Redirect")
    req = TransferRequest(TransferKind.HANDOVER, uniqueid="handover-18548-1-2", caller_channel=caller,
                          from_line="110", target_trunk="emergency-110", dial="110")
    m = machine_for(req, T0, attempt_id="h")
    sent = replay(m, stream, start=0.002)
    assert m.outcome is TransferOutcome.ANSWERED and "attempt 1" in m.reason, m.log
    assert [a["Action"] for _, a in sent] == ["Setvar", "Redirect"]       # DIALSTATUS cleared, then the Redirect
    assert (m.ended_at - T0).total_seconds() == pytest.approx(0.013)


def test_escalate_answered_by_the_expert():
    stream = load("ami-escalate-hotline.txt")
    caller = _caller(stream, "Redirect")
    req = TransferRequest(TransferKind.ESCALATE, uniqueid="escalate-17678-1-2", caller_channel=caller,
                          from_line="12320", target_queue="expert-12320")
    m = machine_for(req, T0, attempt_id="e")
    sent = replay(m, stream, start=0.003)
    assert m.outcome is TransferOutcome.ANSWERED and "Expert ag2" in m.reason, m.log
    assert not any("left" in line for line in m.log), m.log      # its Leave is the answer, not an overflow
    assert [a["Action"] for _, a in sent] == ["Setvar", "Redirect"]


@pytest.mark.parametrize("recording,hold", [("ami-queue-leaveempty.txt", "0"), ("ami-queue-timeout.txt", "60")])
def test_escalate_into_a_queue_the_caller_leaves_on_its_overflow(recording, hold):
    """The recorded leave-empty and timeout overflows of minors-protection, seen as an escalation into that
    queue: the record says the caller left it and went on to general-12345, never 'keeps waiting'."""
    stream = load(recording, hotline_view=True)
    join = first(stream, "QueueCallerJoin", Queue="minors-protection")
    t_join = next(t for t, m in stream.events if m is join)
    stream.actions = []                  # the recording's own actions are the driver's, not an escalation's
    req = TransferRequest(TransferKind.ESCALATE, uniqueid=join["Uniqueid"], caller_channel=join["Channel"],
                          from_line="12349", target_queue="minors-protection", no_answer_seconds=95)
    m = machine_for(req, T0, attempt_id="e")
    replay(m, stream, start=t_join - 0.001)
    assert m.outcome is TransferOutcome.NO_ANSWER, m.log
    assert "left it" in m.reason and f"after {hold} s" in m.reason and "general-12345" in m.reason
    assert "keeps waiting" not in m.reason
