"""The transfer state machines alone: replies, events and the clock fed in, no I/O."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from ivr.ami.client import AmiError, AmiLinkLost
from ivr.ami.transfers import (AttendedTransfer, Escalation, Handover, Send, ThreeWayTransfer, TransferRequest,
                               machine_for, request_from_route)
from records.types import TransferOutcome
from routing.decide import decide
from routing.loader import load_table
from routing.model import TransferKind
from tests.conftest import CONF

T0 = datetime(2026, 11, 26, 9, 0, tzinfo=timezone.utc)
OK = [{"Response": "Success", "Message": "ok"}]
CALLER, AGENT = "PJSIP/caller-00000001", "Local/agent1@queue-agents-00000002;1"
TARGET = "Local/12348@hotline-warm-transfer-00000003;1"


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def warm_request(seconds: float = 30) -> TransferRequest:
    return TransferRequest(TransferKind.ATTENDED, uniqueid="1.1", caller_channel=CALLER, agent_channel=AGENT,
                           from_line="12348", target_trunk="seat-12348", dial="12348", no_answer_seconds=seconds)


def run_setup(machine, now=T0) -> list[Send]:
    """Start and acknowledge every setup step; returns the actions it sent."""
    sent = []
    out = machine.start(now)
    while out and machine.state == "setup":
        sent += out
        out = machine.on_reply(out[0].tag, OK, now)
    return sent + out


def test_warm_setup_atxfers_digits_into_the_warm_context():
    m = AttendedTransfer(warm_request(), T0, attempt_id="a")
    sent = run_setup(m)
    assert [s.fields for s in sent] == [{"Action": "Atxfer", "Channel": AGENT, "Exten": "12348",
                                         "Context": "hotline-warm-transfer"}]
    assert m.state == "ringing" and m.deadline == at(30)


def test_warm_deadline_hangs_up_the_leg_and_returns_the_caller():
    m = AttendedTransfer(warm_request(), T0, attempt_id="a")
    run_setup(m)
    m.on_event({"Event": "DialBegin", "Channel": AGENT, "DestChannel": TARGET}, at(1))
    assert m.tick(at(29.9)) == []
    (cancel,) = m.tick(at(30))
    assert cancel.fields == {"Action": "Hangup", "Channel": TARGET, "Cause": "19"}
    m.on_reply("cancel", OK, at(30.1))
    assert m.outcome is TransferOutcome.RETURNED and m.ended_at == at(30.1)
    assert m.record().outcome is TransferOutcome.RETURNED


def test_warm_answer_then_completed_transfer():
    m = AttendedTransfer(warm_request(), T0, attempt_id="a")
    run_setup(m)
    m.on_event({"Event": "DialBegin", "Channel": AGENT, "DestChannel": TARGET}, at(1))
    m.on_event({"Event": "DialEnd", "Channel": AGENT, "DestChannel": TARGET, "DialStatus": "ANSWER"}, at(5))
    assert m.state == "consulting" and m.tick(at(300)) == []          # no hurry while they talk
    m.on_event({"Event": "AttendedTransfer", "Result": "Success", "OrigTransfererChannel": AGENT}, at(60))
    assert m.outcome is TransferOutcome.ANSWERED and m.ended_at == at(60)


def test_warm_consultation_is_followed_for_a_bounded_time():
    m = AttendedTransfer(warm_request(), T0, attempt_id="a")
    run_setup(m)
    m.on_event({"Event": "DialBegin", "Channel": AGENT, "DestChannel": TARGET}, at(1))
    m.on_event({"Event": "DialEnd", "Channel": AGENT, "DestChannel": TARGET, "DialStatus": "ANSWER"}, at(5))
    assert m.tick(at(604)) == [] and not m.finished
    m.tick(at(605))
    assert m.outcome is TransferOutcome.ANSWERED and "completion not seen" in m.reason


def test_warm_events_of_other_calls_are_ignored():
    m = AttendedTransfer(warm_request(), T0, attempt_id="a")
    run_setup(m)
    m.on_event({"Event": "DialBegin", "Channel": "Local/agent2@x;1", "DestChannel": "other"}, at(1))
    m.on_event({"Event": "Hangup", "Channel": "PJSIP/someone-else"}, at(2))
    assert not m.finished and m.target is None


def test_warm_without_a_transfer_leg_fails_with_the_reason():
    m = AttendedTransfer(warm_request(10), T0, attempt_id="a")
    run_setup(m)
    assert m.tick(at(10)) == []
    assert m.outcome is TransferOutcome.FAILED and "tT" in m.reason


def test_error_reply_fails_the_attempt_and_sends_nothing_more():
    m = AttendedTransfer(warm_request(), T0, attempt_id="a")
    m.start(T0)
    assert m.on_reply("atxfer", AmiError("Channel specified does not exist"), at(0.1)) == []
    assert m.outcome is TransferOutcome.FAILED and "Channel specified does not exist" in m.reason


def test_link_lost_fails_once():
    m = ThreeWayTransfer(TransferRequest(TransferKind.THREE_WAY, uniqueid="1.1", caller_channel=CALLER,
                                         agent_channel=AGENT, from_line="12360", target_trunk="subcenter-12360",
                                         dial="12360", no_answer_seconds=45), T0, attempt_id="a")
    m.start(T0)
    m.on_reply("originate", AmiLinkLost("lost"), at(1))
    first = m.reason
    m.on_link_lost(at(2))
    assert m.outcome is TransferOutcome.FAILED and m.reason == first


def test_threeway_answer_before_the_originate_reply_still_bridges_once():
    m = ThreeWayTransfer(TransferRequest(TransferKind.THREE_WAY, uniqueid="1.1", caller_channel=CALLER,
                                         agent_channel=AGENT, from_line="12360", target_trunk="subcenter-12360",
                                         dial="12360", no_answer_seconds=45), T0, attempt_id="x1")
    (originate,) = m.start(T0)
    assert originate.fields["ActionID"] == "x1-originate" and originate.fields["Timeout"] == "45000"
    assert originate.fields["Variable"][0] == "HOTLINE_CONF=xfer-1-1"
    # the leg presents the citizen's number, read from the caller's channel by the dialplan
    assert originate.fields["Variable"][1] == f"HOTLINE_CALLER_CHANNEL={CALLER}"
    assert (originate.fields["Context"], originate.fields["Exten"]) == ("hotline-threeway", "target")
    assert originate.fields["ChannelId"] == "x1-leg"
    # the OriginateResponse event overtakes the driver's handling of the reply
    assert m.on_event({"Event": "OriginateResponse", "ActionID": "x1-originate", "Response": "Success",
                       "Channel": "Local/12360@hotline-threeway-00000009;1"}, at(3)) == []
    steps = m.on_reply("originate", OK, at(3))
    actions = []
    while steps:
        actions += steps
        steps = m.on_reply(steps[0].tag, OK, at(3))
    assert [s.fields["Action"] for s in actions] == ["Setvar", "Setvar", "Redirect"]
    assert actions[2].fields == {"Action": "Redirect", "Channel": CALLER, "Context": "hotline-threeway",
                                 "Exten": "caller", "Priority": "1", "ExtraChannel": AGENT,
                                 "ExtraContext": "hotline-threeway", "ExtraExten": "agent", "ExtraPriority": "1"}
    assert m.outcome is TransferOutcome.ANSWERED


def test_threeway_redirect_failure_hangs_up_the_lonely_target():
    m = ThreeWayTransfer(TransferRequest(TransferKind.THREE_WAY, uniqueid="1.1", caller_channel=CALLER,
                                         agent_channel=AGENT, from_line="12360", target_trunk="subcenter-12360",
                                         dial="12360"), T0, attempt_id="x")
    m.start(T0)
    m.on_reply("originate", OK, at(0))
    m.on_event({"Event": "OriginateResponse", "ActionID": "x-originate", "Response": "Success",
                "Channel": "Local/12360@hotline-threeway-1;1"}, at(2))
    cleanup = m.on_reply("set-conf-caller", AmiError("No such channel"), at(2))
    assert cleanup == [Send("cleanup", {"Action": "Hangup", "Channel": "Local/12360@hotline-threeway-1;1"})]
    assert m.outcome is TransferOutcome.FAILED


def test_handover_and_escalation_setup():
    h = Handover(TransferRequest(TransferKind.HANDOVER, uniqueid="1.1", caller_channel=CALLER, from_line="110",
                                 first_line="12345", target_trunk="emergency-110", dial="110"), T0, attempt_id="h")
    sent = run_setup(h)
    assert [s.fields for s in sent] == [{"Action": "Redirect", "Channel": CALLER,
                                         "Context": "hotline-warm-transfer", "Exten": "110", "Priority": "1"}]
    # the emergency dialplan retries: a failed attempt is not the end, the next one answers
    h.on_event({"Event": "DialBegin", "Channel": CALLER, "DestChannel": "PJSIP/110-1"}, at(1))
    h.on_event({"Event": "DialEnd", "Channel": CALLER, "DestChannel": "PJSIP/110-1", "DialStatus": "BUSY"}, at(2))
    assert not h.finished
    h.on_event({"Event": "DialBegin", "Channel": CALLER, "DestChannel": "PJSIP/110-2"}, at(12))
    h.on_event({"Event": "DialEnd", "Channel": CALLER, "DestChannel": "PJSIP/110-2", "DialStatus": "ANSWER"}, at(14))
    assert h.outcome is TransferOutcome.ANSWERED and "attempt 2" in h.reason
    e = Escalation(TransferRequest(TransferKind.ESCALATE, uniqueid="1.1", caller_channel=CALLER, from_line="12329",
                                   target_queue="expert-12329", no_answer_seconds=60), T0, attempt_id="e")
    sent = run_setup(e)
    assert [s.fields.get("Variable") for s in sent] == ["HOTLINE_LINE", None]   # no IVR path given: kept as is
    assert sent[-1].fields["Context"] == "hotline-escalate" and sent[-1].fields["Exten"] == "expert-12329"
    e.on_event({"Event": "QueueCallerJoin", "Channel": CALLER, "Queue": "expert-12329", "Position": "1"}, at(1))
    assert e.deadline == at(61)
    e.tick(at(61))
    assert e.outcome is TransferOutcome.NO_ANSWER


@pytest.mark.parametrize("kwargs, message", [
    (dict(kind=TransferKind.ATTENDED, agent_channel=None, target_trunk="seat-12348", dial="12348"), "agent"),
    (dict(kind=TransferKind.THREE_WAY, agent_channel=AGENT, target_trunk="x", dial="7000#"), "digits"),
    (dict(kind=TransferKind.ESCALATE), "queue"),
    (dict(kind=TransferKind.WORK_ORDER), "work orders"),
    (dict(kind=TransferKind.ESCALATE, target_queue="expert-12320", no_answer_seconds=0), "positive"),
])
def test_bad_requests_are_refused_clearly(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TransferRequest(uniqueid="1", caller_channel=CALLER, from_line="12345", **kwargs)


@pytest.fixture(scope="module")
def table():
    return load_table(CONF / "routing.yaml")


@pytest.mark.parametrize("line, kind, target, trunk, dial, queue", [
    ("12348", TransferKind.ATTENDED, None, "seat-12348", "12348", None),
    ("12333", TransferKind.ATTENDED, None, "seat-12333", "12333", None),
    ("12360", TransferKind.THREE_WAY, None, "subcenter-12360", None, None),
    ("110", TransferKind.HANDOVER, None, "emergency-110", "110", None),
    ("110", TransferKind.THREE_WAY, "emergency-110", "emergency-110", "110", None),
    ("12320", TransferKind.ESCALATE, None, None, None, "expert-12320"),
    ("12329", TransferKind.ESCALATE, None, None, None, "expert-12329"),
])
def test_requests_from_the_shipped_table(table, line, kind, target, trunk, dial, queue):
    route = decide(table, line, None, datetime(2026, 11, 26, 10, 0, tzinfo=timezone.utc))
    req = request_from_route(route, table, kind, uniqueid="1.1", caller_channel=CALLER, agent_channel=AGENT,
                             target=target)
    assert (req.target_trunk, req.target_queue, req.from_line) == (trunk, queue, line)
    if dial:
        assert req.dial == dial
    assert machine_for(req, T0, attempt_id="t").req is req


def test_request_for_an_option_the_line_does_not_offer(table):
    route = decide(table, "12348", None, datetime(2026, 11, 26, 10, 0, tzinfo=timezone.utc))
    with pytest.raises(ValueError, match="offers no three_way transfer"):
        request_from_route(route, table, TransferKind.THREE_WAY, uniqueid="1", caller_channel=CALLER,
                           agent_channel=AGENT)
