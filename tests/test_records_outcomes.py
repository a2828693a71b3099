"""Call outcomes from the AMI events a real Asterisk 22 sent (tests/transcripts/ami-*.txt), merged with the
engine's own record into one row per call."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import select

from ivr.ami.framing import AmiDecoder
from ivr.ami.transcript import read_transcript
from records.db import make_engine
from records.outcomes import QueueOutcomeTracker
from records.recorder import CallRecorder
from records.schema import calls
from records.types import CallRecord
from tests.db_fixtures import db_url  # noqa: F401

TRANSCRIPTS = Path(__file__).resolve().parent / "transcripts"
BASE = datetime(2026, 11, 26, 13, 0, tzinfo=timezone.utc)


def replay(name: str, tracker: QueueOutcomeTracker) -> list[CallRecord]:
    decoder = AmiDecoder()
    out: list[CallRecord] = []
    for chunk in read_transcript(TRANSCRIPTS / name):
        if chunk.direction == "A>C":
            for event in decoder.feed(chunk.data):
                out.extend(tracker.feed(event, BASE + timedelta(seconds=chunk.seconds)))
    return out


@pytest.mark.parametrize("name, uniqueid, queue, dialed, outcome, wait, answered_by", [
    ("ami-queue-answered.txt", "1795698853.1", "expert-12320", "12320", "answered", 1.0,
     "Local/agent1@queue-agents/n"),
    ("ami-sip-baresip.txt", "1795698957.32", "expert-12320", "12320", "answered", 1.0,
     "Local/agent1@queue-agents/n"),
    ("ami-atxfer.txt", "1795698869.5", "expert-12320", "12320", "answered", 1.0, "Local/agent1@queue-agents/n"),
    # Redirected out of the waiting queue by AMI: Asterisk reports an abandon, but the caller lived on (no
    # hang-up request before it, the hang-up 2 s later): moved on, not abandoned; no agent answered.
    ("ami-queue-redirect.txt", "1795698890.11", "general-12345", "12345", "no_answer", 2.0, None),
])
def test_outcomes_from_real_asterisk_events(name, uniqueid, queue, dialed, outcome, wait, answered_by):
    tracker = QueueOutcomeTracker()
    (record,) = replay(name, tracker)
    assert record.uniqueid == uniqueid and record.revision == 1
    assert (record.target, record.dialed, record.line) == (queue, dialed, dialed)
    assert record.outcome.value == outcome and record.wait_seconds == wait and record.answered_by == answered_by
    assert record.hangup_cause == "16 Normal Clearing"
    assert record.caller and record.caller.isdigit()    # in memory only; the recorder masks it
    assert record.ended_at > record.arrived_at
    assert len(tracker) == 0                       # nothing kept after the hang-up


def test_line_from_caller_name_overflow_and_timeout():
    tracker = QueueOutcomeTracker()
    t = BASE

    def ev(name, **fields):
        return {"Event": name, "Uniqueid": "u1", **fields}

    assert tracker.feed(ev("QueueCallerJoin", Queue="expert-12320", Exten="12320",
                           CallerIDName="[12320] Zhang", CallerIDNum="13812345678"), t) == []
    tracker.feed(ev("QueueCallerLeave", Queue="expert-12320"), t + timedelta(seconds=30))
    tracker.feed(ev("QueueCallerJoin", Queue="general-12345", Exten="12320"), t + timedelta(seconds=30))
    tracker.feed(ev("QueueCallerLeave", Queue="general-12345"), t + timedelta(seconds=95))
    (rec,) = tracker.feed(ev("Hangup", Cause="16", **{"Cause-txt": "Normal Clearing"}), t + timedelta(seconds=100))
    assert rec.line == "12320" and rec.target == "general-12345"
    assert rec.outcome.value == "no_answer" and rec.wait_seconds == 95.0   # 30 s + 65 s in the two queues
    assert tracker.feed({"Event": "Hangup", "Uniqueid": "u1"}, t) == []          # unknown now: ignored
    assert tracker.feed({"Event": "Hangup", "Uniqueid": "never-queued"}, t) == []


def test_a_call_whose_hangup_we_never_see_is_forgotten():
    tracker = QueueOutcomeTracker(max_age=timedelta(hours=1))
    tracker.feed({"Event": "QueueCallerJoin", "Uniqueid": "lost", "Queue": "general-12345", "Exten": "12345"}, BASE)
    assert len(tracker) == 1
    tracker.feed({"Event": "Newchannel", "Uniqueid": "other"}, BASE + timedelta(hours=2))
    assert len(tracker) == 0


def test_engine_record_and_ami_outcome_make_one_row(db_url, tmp_path):  # noqa: F811
    tracker = QueueOutcomeTracker()
    (outcome,) = replay("ami-queue-answered.txt", tracker)
    routed = CallRecord(uniqueid="1795698853.1", dialed="12320", line="12320", caller="4951234567",
                        arrived_at=BASE + timedelta(seconds=1), category="expert", rule_id="12320-expert",
                        action="queue", target="expert-12320", ivr_path=("expert-12320", "1"), language="en",
                        table_version="v1")
    rec = CallRecorder(db_url, tmp_path / "spool", b"k", auto_upgrade=True)
    try:
        rec.record(outcome)          # AMI's outcome is written first here ...
        rec.flush()
        rec.record(routed)           # ... the engine's record after it
        rec.flush()
    finally:
        rec.close()
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            (row,) = conn.execute(select(calls)).mappings().all()
    finally:
        engine.dispose()
    assert (row["rule_id"], row["ivr_path"], row["language"], row["table_version"]) == (
        "12320-expert", "expert-12320>1", "en", "v1")
    assert (row["outcome"], row["wait_seconds"], row["answered_by"], row["hangup_cause"]) == (
        "answered", 1.0, "Local/agent1@queue-agents/n", "16 Normal Clearing")
    assert row["caller_masked"] == "495*****67"


def test_overflow_then_answered_counts_the_whole_wait():
    tracker = QueueOutcomeTracker()

    def feed(name, seconds, **fields):
        return tracker.feed({"Event": name, "Uniqueid": "u2", **fields}, BASE + timedelta(seconds=seconds))

    feed("QueueCallerJoin", 0, Queue="expert-12320", Exten="12320")
    feed("QueueCallerLeave", 30, Queue="expert-12320")
    feed("QueueCallerJoin", 30, Queue="general-12345", Exten="12320")
    feed("QueueCallerLeave", 42, Queue="general-12345")               # Asterisk: Leave, then AgentConnect
    feed("AgentConnect", 42, Queue="general-12345", HoldTime="12", Interface="PJSIP/agent-3")
    (rec,) = feed("Hangup", 300, Cause="16")
    assert (rec.outcome.value, rec.wait_seconds, rec.answered_by, rec.target) == (
        "answered", 42.0, "PJSIP/agent-3", "general-12345")
    assert rec.hangup_cause == "16"


def _feeder(tracker: QueueOutcomeTracker, uid: str):
    def feed(name, seconds, **fields):
        return tracker.feed({"Event": name, "Uniqueid": uid, **fields}, BASE + timedelta(seconds=seconds))
    return feed


def test_the_queues_gave_up_is_no_answer_not_abandoned():
    """Timeout in minors-protection (Asterisk 22's order: Abandon, Leave, then our UserEvent), on to general-12345,
    which is full (Queue() returns at once, no join): the announcement, then the dialplan hangs up."""
    tracker = QueueOutcomeTracker()
    feed = _feeder(tracker, "u3")
    feed("QueueCallerJoin", 0, Queue="minors-protection", Exten="s", CallerIDName="[12349] x")
    feed("QueueCallerAbandon", 60, Queue="minors-protection", HoldTime="60")
    feed("QueueCallerLeave", 60, Queue="minors-protection")
    feed("UserEvent", 60, UserEvent="HotlineQueueLeft", Queue="minors-protection", Status="TIMEOUT",
         Next="general-12345")
    feed("UserEvent", 60, UserEvent="HotlineQueueLeft", Queue="general-12345", Status="FULL", Next="")
    (rec,) = feed("Hangup", 75, Cause="16")
    assert (rec.outcome.value, rec.wait_seconds, rec.dialed, rec.line) == ("no_answer", 60.0, "12349", "12349")


def test_caller_hanging_up_is_abandoned_when_the_request_comes_first_or_the_hangup_right_after():
    for request in (True, False):
        tracker = QueueOutcomeTracker()
        feed = _feeder(tracker, "u4")
        feed("QueueCallerJoin", 0, Queue="general-12345", Exten="12345")
        if request:
            feed("HangupRequest", 5, Cause="16")
        feed("QueueCallerAbandon", 5, Queue="general-12345", HoldTime="5")
        feed("QueueCallerLeave", 5, Queue="general-12345")
        (rec,) = feed("Hangup", 5.01, Cause="16")
        assert (rec.outcome.value, rec.wait_seconds) == ("abandoned", 5.0), request


def test_an_overflow_answered_in_the_next_queue_is_answered():
    tracker = QueueOutcomeTracker()
    feed = _feeder(tracker, "u5")
    feed("QueueCallerJoin", 0, Queue="minors-protection", Exten="s", CallerIDName="[12349] x")
    feed("QueueCallerAbandon", 0, Queue="minors-protection", HoldTime="0")     # leave-empty
    feed("QueueCallerLeave", 0, Queue="minors-protection")
    feed("QueueCallerJoin", 0.002, Queue="general-12345", Exten="s", CallerIDName="[12349] x")
    feed("QueueCallerLeave", 3, Queue="general-12345")
    feed("AgentConnect", 3, Queue="general-12345", HoldTime="3", Interface="PJSIP/agent-3")
    (rec,) = feed("Hangup", 90, Cause="16")
    assert (rec.outcome.value, rec.wait_seconds, rec.target) == ("answered", 3.0, "general-12345")


# --- defect 15: the number dialed and the real arrival, when only the queue events know the call -------------
def test_queue_context_call_gets_the_dialed_number_and_the_channel_creation_as_arrival():
    """The generated dialplan queues from hotline-queue-<id>,s (Exten "s") and says the DID in its HotlineQueued
    event; the channel's Newchannel is the arrival, not the join (a stalled engine, an IVR before the queue)."""
    tracker = QueueOutcomeTracker()

    def ev(name, seconds, **fields):
        return tracker.feed({"Event": name, "Uniqueid": "u7", **fields}, BASE + timedelta(seconds=seconds))

    ev("Newchannel", 0, Exten="12366", Context="hotline-from-carrier")
    ev("UserEvent", 12, UserEvent="HotlineQueued", Queue="general-12345", Dialed="12366")
    ev("QueueCallerJoin", 12, Queue="general-12345", Exten="s", CallerIDNum="13812345678",
       CallerIDName="Zhang")                              # failed open: no engine, no [line] tag
    (rec,) = ev("Hangup", 20, Cause="16")
    assert (rec.dialed, rec.line, rec.target) == ("12366", "12366", "general-12345")
    assert rec.arrived_at == BASE and rec.wait_seconds == 8.0
    assert tracker._channels == {}                        # forgotten with the hang-up


def test_without_the_dialplan_event_or_newchannel_the_tag_and_the_join_are_used():
    tracker = QueueOutcomeTracker()
    tracker.feed({"Event": "QueueCallerJoin", "Uniqueid": "u8", "Queue": "expert-12320", "Exten": "s",
                  "CallerIDName": "[12320] Li"}, BASE)
    (rec,) = tracker.feed({"Event": "Hangup", "Uniqueid": "u8"}, BASE + timedelta(seconds=5))
    assert (rec.dialed, rec.line, rec.arrived_at) == ("12320", "12320", BASE)


def test_channels_that_never_queue_are_forgotten():
    tracker = QueueOutcomeTracker(max_age=timedelta(hours=1))
    for i in range(50):
        tracker.feed({"Event": "Newchannel", "Uniqueid": f"agent-leg-{i}"}, BASE)
    tracker.feed({"Event": "Newchannel", "Uniqueid": "later"}, BASE + timedelta(minutes=30))
    tracker.feed({"Event": "Hangup", "Uniqueid": "agent-leg-0"}, BASE + timedelta(minutes=31))
    assert len(tracker._channels) == 50
    tracker.feed({"Event": "Newchannel", "Uniqueid": "much-later"}, BASE + timedelta(hours=1, minutes=1))
    assert set(tracker._channels) == {"later", "much-later"}


def test_talk_time_from_the_real_agentcomplete():
    """The transcript's agent talks ~6 s and Asterisk's AgentComplete says TalkTime: 7; a queue-redirect call
    nobody answered has no talk time (issue 13: the forecast's handle time)."""
    (answered,) = replay("ami-queue-answered.txt", QueueOutcomeTracker())
    assert answered.talk_seconds == 7.0
    (redirected,) = replay("ami-queue-redirect.txt", QueueOutcomeTracker())
    assert redirected.talk_seconds is None


def test_talk_time_without_agentcomplete_is_connect_to_hangup():
    tracker = QueueOutcomeTracker()
    feed = _feeder(tracker, "u-talk")
    feed("QueueCallerJoin", 0, Queue="general-12345", Exten="12345", CallerIDNum="13800000000")
    feed("AgentConnect", 4, Interface="PJSIP/agent1", HoldTime="4")
    (record,) = feed("Hangup", 130, Cause="16", **{"Cause-txt": "Normal Clearing"})
    assert record.talk_seconds == 126.0 and record.wait_seconds == 4.0
