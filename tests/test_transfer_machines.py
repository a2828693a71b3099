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
                           from_line="12348", target_trunk="seat-12348", dial="12348", no_answer_seconds=seconds,
                           linkedid="call-1")


def run_setup(machine, now=T0) -> list[Send]:
    """Start and acknowledge every setup step; returns the actions it sent."""
    sent = []
    out = machine.start(now)
    while out and machine.state == "setup":
        sent += out
        out = machine.on_reply(out[0].tag, OK, now)
    return sent + out


LEG2 = TARGET[:-2] + ";2"
SEAT = "PJSIP/seat-12348-00000004"


def leg_appears(m, t=0.6, linkedid="call-1"):
    """What Asterisk sends for Atxfer (NOTES-2.md): the Local leg, its ;1 and the agent in a consultation bridge."""
    m.on_event({"Event": "Newchannel", "Channel": TARGET, "Context": "hotline-warm-transfer", "Linkedid": linkedid},
               at(t))
    m.on_event({"Event": "BridgeEnter", "Channel": TARGET, "BridgeUniqueid": "consult"}, at(t))
    m.on_event({"Event": "BridgeLeave", "Channel": AGENT, "BridgeUniqueid": "orig"}, at(t))
    m.on_event({"Event": "BridgeEnter", "Channel": AGENT, "BridgeUniqueid": "consult"}, at(t))
    m.on_event({"Event": "DialBegin", "Channel": LEG2, "DestChannel": SEAT}, at(t))


def test_warm_setup_atxfers_digits_into_the_warm_context():
    m = AttendedTransfer(warm_request(), T0, attempt_id="a")
    sent = run_setup(m)
    assert [s.fields for s in sent] == [{"Action": "Atxfer", "Channel": AGENT, "Exten": "12348",
                                         "Context": "hotline-warm-transfer"}]
    assert m.state == "ringing"
    leg_appears(m)
    assert m.leg == TARGET and m.target == SEAT and m.deadline == at(30.6)   # the bound runs from the leg


def test_warm_deadline_hangs_up_the_leg_and_returns_the_caller():
    m = AttendedTransfer(warm_request(), T0, attempt_id="a")
    run_setup(m)
    leg_appears(m)
    assert m.tick(at(30.5)) == []
    (cancel,) = m.tick(at(30.6))
    assert cancel.fields == {"Action": "Hangup", "Channel": LEG2, "Cause": "19"}
    assert m.on_reply("cancel", OK, at(30.61)) == [] and not m.finished    # Asterisk says when the caller is back
    m.on_event({"Event": "Hangup", "Channel": LEG2, "Cause": "19"}, at(30.62))
    assert m.outcome is TransferOutcome.RETURNED and m.ended_at == at(30.62)
    assert "no answer within 30 s" in m.reason and m.record().outcome is TransferOutcome.RETURNED


def test_warm_answer_then_completed_transfer():
    m = AttendedTransfer(warm_request(), T0, attempt_id="a")
    run_setup(m)
    leg_appears(m)
    m.on_event({"Event": "DialEnd", "Channel": LEG2, "DestChannel": SEAT, "DialStatus": "ANSWER"}, at(5))
    assert m.state == "consulting" and m.tick(at(300)) == []          # no hurry while they talk
    m.on_event({"Event": "BridgeMerge"}, at(60))
    m.on_event({"Event": "AttendedTransfer", "Result": "Success", "OrigTransfererChannel": AGENT,
                "TransferTargetChannel": TARGET}, at(60))
    assert m.outcome is TransferOutcome.ANSWERED and m.ended_at == at(60)


def test_warm_consultation_is_followed_for_a_bounded_time():
    m = AttendedTransfer(warm_request(), T0, attempt_id="a")
    run_setup(m)
    leg_appears(m)
    m.on_event({"Event": "DialEnd", "DestChannel": TARGET, "DialStatus": "ANSWER"}, at(5))   # the core's DialEnd
    assert m.tick(at(604)) == [] and not m.finished
    m.tick(at(605))
    assert m.outcome is TransferOutcome.ANSWERED and "completion not seen" in m.reason


def test_warm_unreachable_seat_fails_at_once_with_the_caller_back():
    m = AttendedTransfer(warm_request(), T0, attempt_id="a")
    run_setup(m)
    m.on_event({"Event": "Newchannel", "Channel": TARGET, "Linkedid": "call-1"}, at(0.567))
    m.on_event({"Event": "Hangup", "Channel": LEG2, "Cause": "3", "Cause-txt": "No route to destination"}, at(0.571))
    assert m.outcome is TransferOutcome.FAILED and "unreachable (3 No route to destination)" in m.reason


def test_warm_seat_rejects_caller_returns():
    m = AttendedTransfer(warm_request(), T0, attempt_id="a")
    run_setup(m)
    leg_appears(m)
    m.on_event({"Event": "DialEnd", "Channel": LEG2, "DestChannel": SEAT, "DialStatus": "BUSY"}, at(2))
    m.on_event({"Event": "BridgeEnter", "Channel": AGENT, "BridgeUniqueid": "orig"}, at(2.1))
    assert m.outcome is TransferOutcome.RETURNED and "busy" in m.reason


def test_warm_events_of_other_calls_are_ignored():
    m = AttendedTransfer(warm_request(), T0, attempt_id="a")
    run_setup(m)
    m.on_event({"Event": "Newchannel", "Channel": "Local/12348@hotline-warm-transfer-00000009;1",
                "Linkedid": "another-call"}, at(0.5))
    m.on_event({"Event": "DialBegin", "Channel": "Local/12348@hotline-warm-transfer-00000009;2",
                "DestChannel": "other"}, at(1))
    m.on_event({"Event": "Hangup", "Channel": "Local/12348@hotline-warm-transfer-00000009;2"}, at(2))
    m.on_event({"Event": "Hangup", "Channel": "PJSIP/someone-else"}, at(2))
    assert not m.finished and m.target is None and m.leg is None


def test_warm_without_a_transfer_leg_fails_with_the_reason():
    m = AttendedTransfer(warm_request(10), T0, attempt_id="a")
    run_setup(m)
    assert m.tick(at(15)) == []
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
    assert [s.fields for s in sent] == [
        {"Action": "Setvar", "Channel": CALLER, "Variable": "DIALSTATUS", "Value": ""},
        {"Action": "Redirect", "Channel": CALLER, "Context": "hotline-warm-transfer", "Exten": "110", "Priority": "1"}]
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


def handover() -> Handover:
    h = Handover(TransferRequest(TransferKind.HANDOVER, uniqueid="1.1", caller_channel=CALLER, from_line="110",
                                 target_trunk="emergency-110", dial="110"), T0, attempt_id="h")
    run_setup(h)
    return h


def test_handover_to_an_unreachable_trunk_is_seen_by_the_dialstatus_poll():
    """No channel, no DialBegin, no event for user hotline: only the caller's DIALSTATUS tells."""
    h = handover()
    assert h.tick(at(0.5)) == []
    (poll,) = h.tick(at(1))
    assert poll.fields == {"Action": "Getvar", "Channel": CALLER, "Variable": "DIALSTATUS"}
    h.on_reply("dialstatus", [{"Response": "Success", "Variable": "DIALSTATUS", "Value": ""}], at(1))
    (poll,) = h.tick(at(2))
    h.on_reply("dialstatus", [{"Response": "Success", "Variable": "DIALSTATUS", "Value": "CHANUNAVAIL"}], at(2))
    assert h.tick(at(3)) == [] and not h.finished                    # the dialplan retries, then announces
    h.on_event({"Event": "Hangup", "Channel": CALLER, "Context": "hotline-emergency", "Cause": "16"}, at(4))
    assert h.outcome is TransferOutcome.FAILED                        # a trunk down, as for a seat down
    assert "emergency-110 unreachable (CHANUNAVAIL)" in h.reason and "announcement" in h.reason
    assert "before the hand-over was dialed" not in h.reason


def test_handover_caller_gone_in_the_emergency_context_before_any_poll():
    h = handover()
    h.on_event({"Event": "Hangup", "Channel": CALLER, "Context": "hotline-emergency"}, at(0.3))
    assert h.outcome is TransferOutcome.FAILED and "unreachable" in h.reason


def test_handover_caller_hung_up_before_the_redirect_took_effect():
    h = handover()
    h.on_event({"Event": "Hangup", "Channel": CALLER, "Context": "hotline-queue-general-12345"}, at(0.3))
    assert h.outcome is TransferOutcome.FAILED and "before the hand-over was dialed" in h.reason


@pytest.mark.parametrize("status, outcome", [("NOANSWER", TransferOutcome.NO_ANSWER),
                                             ("BUSY", TransferOutcome.NO_ANSWER),
                                             ("CONGESTION", TransferOutcome.FAILED)])
def test_handover_three_failed_attempts(status, outcome):
    h = handover()
    for n in range(3):
        h.on_event({"Event": "DialBegin", "Channel": CALLER, "DestChannel": f"PJSIP/emergency-110-{n}"}, at(n))
        h.on_event({"Event": "DialEnd", "Channel": CALLER, "DestChannel": f"PJSIP/emergency-110-{n}",
                    "DialStatus": status}, at(n + 0.1))
    assert h.tick(at(5)) == []                                          # attempts seen: no polling
    h.on_event({"Event": "Hangup", "Channel": CALLER, "Context": "hotline-emergency"}, at(6))
    assert h.outcome is outcome and f"3 attempt(s) ({status.lower()})" in h.reason


def escalation(seconds=60) -> Escalation:
    e = Escalation(TransferRequest(TransferKind.ESCALATE, uniqueid="1.1", caller_channel=CALLER, from_line="12320",
                                   target_queue="expert-12320", no_answer_seconds=seconds), T0, attempt_id="e")
    run_setup(e)
    e.on_event({"Event": "QueueCallerJoin", "Channel": CALLER, "Queue": "expert-12320", "Position": "1"}, at(0.01))
    return e


def test_escalation_caller_hangs_up_while_waiting():
    e = escalation()
    e.on_event({"Event": "QueueCallerAbandon", "Channel": CALLER, "Queue": "expert-12320", "HoldTime": "7"}, at(7))
    e.on_event({"Event": "QueueCallerLeave", "Channel": CALLER, "Queue": "expert-12320"}, at(7))
    e.on_event({"Event": "Hangup", "Channel": CALLER}, at(7))
    assert e.outcome is TransferOutcome.NO_ANSWER
    assert e.reason == "caller hung up in expert-12320 after 7 s before an expert answered"


def test_escalation_left_on_overflow_says_where_to():
    e = escalation()
    e.on_event({"Event": "QueueCallerAbandon", "Channel": CALLER, "Queue": "expert-12320", "HoldTime": "0"}, at(0.01))
    e.on_event({"Event": "QueueCallerLeave", "Channel": CALLER, "Queue": "expert-12320"}, at(0.01))
    e.on_event({"Event": "QueueCallerJoin", "Channel": CALLER, "Queue": "general-12345"}, at(0.02))
    assert e.outcome is TransferOutcome.NO_ANSWER
    assert e.reason == ("no expert in expert-12320: the caller left it after 0 s and went on to general-12345 "
                        "(the queue's overflow)")


def test_escalation_follows_the_queue_overflow_from_the_table(table):
    route = decide(table, "12320", None, T0)
    req = request_from_route(route, table, TransferKind.ESCALATE, uniqueid="1", caller_channel=CALLER)
    assert req.no_answer_seconds == table.queues["expert-12320"].overflow.after_seconds + 5


class _QuietClient:
    """An AmiClient stand-in: connected, answers every action at once, and a flood of unrelated events."""

    connected, logins = True, 1

    def __init__(self):
        self.handlers = []

    def on_event(self, handler):
        self.handlers.append(handler)
        return lambda: None

    def on_disconnected(self, handler):
        return lambda: None

    on_connected = on_disconnected

    async def action(self, fields):
        return [{"Response": "Success", "Message": "ok"}]


async def test_driver_sleeps_while_nothing_happens(monkeypatch):
    """`hotline transfer` used to spin a core at 100 % while it waited: the wake event was set even for an
    empty list of actions, so the loop never slept. Now it ticks only on an action, the end or a deadline."""
    import asyncio

    from ivr.ami.transfers import TransferDriver

    import ivr.ami.transfers as transfers

    monkeypatch.setattr(transfers, "SETUP_GRACE_SECONDS", 0.0)
    client = _QuietClient()
    ticks = 0
    real_tick = AttendedTransfer.tick

    def counting_tick(self, now):
        nonlocal ticks
        ticks += 1
        return real_tick(self, now)

    AttendedTransfer.tick = counting_tick
    try:
        run = asyncio.ensure_future(TransferDriver(client).run(warm_request(0.4)))
        for _ in range(20):                                    # events of other calls keep coming
            await asyncio.sleep(0.02)
            for handler in client.handlers:
                handler({"Event": "Newstate", "Channel": "PJSIP/other-1"})
        record = await asyncio.wait_for(run, 10)
    finally:
        AttendedTransfer.tick = real_tick
    assert record.outcome is TransferOutcome.FAILED              # no leg ever appeared: the bound ended it
    assert ticks < 40, ticks


def test_warm_leg_optimized_away_during_consultation_is_not_a_return():
    """If Asterisk optimizes the Local leg out while the agent still consults (the seat then sits in the
    consultation bridge itself), the leg's Hangup is no failure: the AttendedTransfer still decides."""
    m = AttendedTransfer(warm_request(), T0, attempt_id="a")
    run_setup(m)
    leg_appears(m)
    m.on_event({"Event": "DialEnd", "Channel": LEG2, "DestChannel": SEAT, "DialStatus": "ANSWER"}, at(1))
    m.on_event({"Event": "LocalOptimizationBegin", "LocalOneChannel": TARGET, "LocalTwoChannel": LEG2,
                "SourceChannel": SEAT}, at(2))
    m.on_event({"Event": "LocalOptimizationEnd", "LocalOneChannel": TARGET, "LocalTwoChannel": LEG2,
                "Success": "Yes"}, at(2))
    m.on_event({"Event": "Hangup", "Channel": TARGET, "Cause": "16"}, at(2))
    m.on_event({"Event": "Hangup", "Channel": LEG2, "Cause": "16"}, at(2))
    assert not m.finished
    m.on_event({"Event": "AttendedTransfer", "Result": "Success", "OrigTransfererChannel": AGENT}, at(9))
    assert m.outcome is TransferOutcome.ANSWERED


def test_warm_seat_hangs_up_during_consultation_caller_returns():
    m = AttendedTransfer(warm_request(), T0, attempt_id="a")
    run_setup(m)
    leg_appears(m)
    m.on_event({"Event": "DialEnd", "Channel": LEG2, "DestChannel": SEAT, "DialStatus": "ANSWER"}, at(1))
    m.on_event({"Event": "Hangup", "Channel": LEG2, "Cause": "16"}, at(3))
    assert m.outcome is TransferOutcome.RETURNED and "after the seat answered" in m.reason
