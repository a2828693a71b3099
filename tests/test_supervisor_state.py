"""Live supervisor state fed the real Asterisk 22 transcripts (tests/transcripts/ami-*.txt)."""
from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings, strategies as st

from supervisor.state import HANDLED_EVENTS, LiveState, mask_text, split_line
from supervisor.transcript import replay, replay_steps

from tests.conftest import TRANSCRIPTS

BASE = 1795698853.0  # the recording's epoch (Uniqueid 1795698853.0 is the first channel)
NUMBER = "4951234567"


def _queue(view: dict, server: str, name: str) -> dict:
    for s in view["servers"]:
        if s["name"] == server:
            for q in s["queues"]:
                if q["name"] == name:
                    return q
    raise AssertionError(f"no queue {server}/{name} in view")


def _run_until(path, state, server, stop) -> float:
    for msg in replay_steps(path, state, server, BASE):
        if stop(msg.fields):
            return BASE + msg.seconds
    raise AssertionError("transcript ended before the expected message")


def test_answered_call_waits_then_counts_within_service_level():
    state = LiveState()
    path = TRANSCRIPTS / "ami-queue-answered.txt"
    steps = replay_steps(path, state, "hk", BASE)
    for msg in steps:
        if msg.fields.get("Event") == "QueueStatusComplete":
            break  # the QueueStatus sent while the caller waits
    now = BASE + msg.seconds + 9
    q = _queue(state.view(now, full_numbers=True), "hk", "expert-12320")
    assert q["waiting"] == 1
    caller = q["callers"][0]
    assert caller["number"] == NUMBER
    assert caller["line"] == "12320"  # no bracket prefix in this recording: the dialed extension
    assert caller["wait"] == 9 and q["longest_wait"] == 9
    assert q["members_by_state"]["busy"] == 1  # Agent One's device is ringing/in use
    for msg in steps:
        pass
    view = state.view(BASE + 20, full_numbers=True)
    q = _queue(view, "hk", "expert-12320")
    assert q["waiting"] == 0 and q["callers"] == []
    assert (q["answered"], q["abandoned"], q["answered_in_sl"]) == (1, 0, 1)
    assert q["service_level"] == 1.0 and q["average_wait"] == 1
    assert q["members_by_state"] == {"free": 1, "busy": 0, "paused": 0, "unavailable": 0}
    assert q["members"][0]["calls_taken"] == 1
    assert q["lines"] == [{"line": "12320", "waiting": 0, "answered": 1, "abandoned": 0, "overflowed": 0,
                           "answered_in_sl": 1, "service": ""}]
    assert view["lines"] == q["lines"]


def test_redirected_caller_is_no_abandon_and_resync_confirms_members():
    state = LiveState()
    path = TRANSCRIPTS / "ami-queue-redirect.txt"
    now = _run_until(path, state, "hk", lambda f: f.get("Event") == "QueueStatusComplete")
    q = _queue(state.view(now, full_numbers=False), "hk", "general-12345")
    # the first QueueStatus reply: Agent Two ringing (Status 2), Agent Three free; one caller, Wait 2
    assert {m["name"]: m["state"] for m in q["members"]} == {"Agent Two": "busy", "Agent Three": "free"}
    assert q["waiting"] == 1 and q["longest_wait"] == 2
    assert q["callers"][0]["number"] == "495*****67"
    assert NUMBER not in repr(state.view(now, full_numbers=False))
    state = LiveState()
    replay(path, state, "hk", BASE)
    q = _queue(state.view(BASE + 12, full_numbers=False), "hk", "general-12345")
    # Asterisk sends QueueCallerAbandon for the Redirect; the caller lived on 2 s (no HangupRequest before it,
    # no Hangup right after it): moved on by someone, neither abandoned nor overflowed
    assert (q["waiting"], q["answered"], q["abandoned"], q["overflowed"]) == (0, 0, 0, 0)
    assert q["service_level"] is None
    assert q["members_by_state"]["free"] == 2


def test_status_pause_reason_and_time_then_unpause_and_removal():
    state = LiveState()
    path = TRANSCRIPTS / "ami-status.txt"
    now = _run_until(path, state, "hk", lambda f: f.get("Event") == "QueueMemberAdded")
    q = _queue(state.view(now, full_numbers=False), "hk", "general-12345")
    nine = {m["name"]: m for m in q["members"]}["Agent Nine"]
    assert nine["state"] == "unavailable" and nine["membership"] == "dynamic"  # Status 4: invalid device
    state = LiveState()  # start again, to stop right after the pause event
    steps = replay_steps(path, state, "hk", BASE)
    for msg in steps:
        if msg.fields.get("Event") == "QueueMemberPause":
            break
    paused_at = BASE + msg.seconds
    q = _queue(state.view(paused_at + 125, full_numbers=False), "hk", "general-12345")
    nine = {m["name"]: m for m in q["members"]}["Agent Nine"]
    assert (nine["state"], nine["reason"], nine["paused_for"]) == ("paused", "lunch", 125)
    assert q["members_by_state"]["paused"] == 1
    for msg in steps:
        if msg.fields.get("Event") == "QueueMemberPause":
            break  # the unpause
    q = _queue(state.view(paused_at + 130, full_numbers=False), "hk", "general-12345")
    nine = {m["name"]: m for m in q["members"]}["Agent Nine"]
    assert nine["state"] != "paused" and nine["reason"] == "" and nine["paused_for"] is None
    for msg in steps:
        pass
    q = _queue(state.view(paused_at + 131, full_numbers=False), "hk", "general-12345")
    assert "Agent Nine" not in {m["name"] for m in q["members"]}
    assert {m["name"] for m in q["members"]} == {"Agent Two", "Agent Three"}
    expert = _queue(state.view(paused_at, full_numbers=False), "hk", "expert-12320")
    assert [m["name"] for m in expert["members"]] == ["Agent One"]


def test_real_sip_caller_without_prior_queue_status():
    state = LiveState()
    path = TRANSCRIPTS / "ami-sip-baresip.txt"
    now = _run_until(path, state, "hk", lambda f: f.get("Event") == "AgentCalled")
    q = _queue(state.view(now + 3, full_numbers=False), "hk", "expert-12320")
    assert q["waiting"] == 1 and q["callers"][0]["wait"] == 3
    assert q["callers"][0]["number"] == "495*****21" and q["callers"][0]["line"] == "12320"
    state = LiveState()
    replay(path, state, "hk", BASE)
    q = _queue(state.view(BASE + 30, full_numbers=False), "hk", "expert-12320")
    assert (q["answered"], q["abandoned"], q["waiting"]) == (1, 0, 0)
    assert q["members"][0]["state"] == "free"


def test_several_servers_are_kept_apart():
    state = LiveState()
    replay(TRANSCRIPTS / "ami-queue-answered.txt", state, "haikou", BASE)
    replay(TRANSCRIPTS / "ami-abandon-while-ringing-local.txt", state, "sanya", BASE)
    view = state.view(BASE + 20, full_numbers=False)
    assert [s["name"] for s in view["servers"]] == ["haikou", "sanya"]
    assert _queue(view, "haikou", "expert-12320")["answered"] == 1
    assert _queue(view, "sanya", "general-12345")["abandoned"] == 1
    assert {row["line"]: (row["answered"], row["abandoned"]) for row in view["lines"]} == {
        "12320": (1, 0), "12348": (0, 1)}


def _join(uid: str, name: str, queue: str = "general-12345", number: str = "13812345678") -> dict:
    return {"Event": "QueueCallerJoin", "Queue": queue, "Uniqueid": uid, "CallerIDNum": number,
            "CallerIDName": name, "Exten": "s", "Position": "1", "Count": "1"}


def _connect(uid: str, hold: int, name: str = "", queue: str = "general-12345") -> dict:
    return {"Event": "AgentConnect", "Queue": queue, "Uniqueid": uid, "HoldTime": str(hold),
            "CallerIDName": name, "Interface": "PJSIP/7001", "MemberName": "A"}


def test_line_from_bracket_prefix_and_hotline_line_variable():
    state = LiveState()
    t = 1_800_000_000.0
    state.apply("hk", _join("1.1", "[12320] Zhang San"), t)
    state.apply("hk", {"Event": "VarSet", "Uniqueid": "1.2", "Variable": "HOTLINE_LINE", "Value": "12349"}, t)
    state.apply("hk", _join("1.2", "Li Si"), t + 1)
    q = _queue(state.view(t + 2, full_numbers=True), "hk", "general-12345")
    assert {c["id"]: (c["line"], c["name"]) for c in q["callers"]} == {
        "1.1": ("12320", "Zhang San"), "1.2": ("12349", "Li Si")}
    assert {r["line"]: r["waiting"] for r in q["lines"]} == {"12320": 1, "12349": 1}


def test_service_level_threshold_and_abandons_count_against_it():
    state = LiveState(service_level=15)
    t = 1_800_000_000.0
    for i, hold in enumerate((3, 15, 16)):
        state.apply("hk", _join(f"2.{i}", "[12345] x"), t)
        state.apply("hk", {"Event": "QueueCallerLeave", "Queue": "general-12345", "Uniqueid": f"2.{i}"}, t + hold)
        state.apply("hk", _connect(f"2.{i}", hold), t + hold)
    state.apply("hk", _join("2.9", "[12345] x"), t)
    state.apply("hk", {"Event": "HangupRequest", "Uniqueid": "2.9", "Cause": "16"}, t + 40)   # Asterisk's order
    state.apply("hk", {"Event": "QueueCallerAbandon", "Queue": "general-12345", "Uniqueid": "2.9",
                       "HoldTime": "40"}, t + 40)
    q = _queue(state.view(t + 50, full_numbers=False), "hk", "general-12345")
    assert (q["answered"], q["answered_in_sl"], q["abandoned"]) == (3, 2, 1)
    assert q["service_level"] == 0.5
    assert LiveState(service_level=20).service_level == 20


def test_day_boundary_is_midnight_in_shanghai():
    tz = ZoneInfo("Asia/Shanghai")
    before = datetime(2026, 11, 26, 23, 59, 50, tzinfo=tz).timestamp()  # 15:59:50 UTC
    state = LiveState()
    state.apply("hk", _join("3.1", "[12345] x"), before - 5)
    state.apply("hk", _connect("3.1", 5), before)
    assert _queue(state.view(before + 5, full_numbers=False), "hk", "general-12345")["answered"] == 1
    q = _queue(state.view(before + 15, full_numbers=False), "hk", "general-12345")  # 00:00:05 local
    assert (q["answered"], q["abandoned"], q["service_level"]) == (0, 0, None)
    assert q["answered_total"] == 1  # the Prometheus counter never goes back


def test_resync_after_reconnect_drops_ghosts_and_keeps_known_wait():
    state = LiveState()
    t = 1_800_000_000.0
    state.apply("hk", _join("4.1", "[12320] a"), t)
    state.apply("hk", _join("4.2", "[12320] b"), t)  # will have left while we were disconnected
    reply = [
        {"Response": "Success", "EventList": "start"},
        {"Event": "QueueParams", "Queue": "general-12345", "Strategy": "rrmemory"},
        {"Event": "QueueMember", "Queue": "general-12345", "Name": "Agent", "Location": "PJSIP/7001",
         "StateInterface": "PJSIP/7001", "Status": "1", "Paused": "1", "PausedReason": "training",
         "LastPause": str(int(t - 300)), "InCall": "0"},
        {"Event": "QueueEntry", "Queue": "general-12345", "Uniqueid": "4.1", "CallerIDNum": "13812345678",
         "CallerIDName": "[12320] a", "Wait": "3", "Position": "1"},
        {"Event": "QueueEntry", "Queue": "general-12345", "Uniqueid": "4.3", "CallerIDNum": "13900000000",
         "CallerIDName": "[12318] c", "Wait": "7", "Position": "2"},
        {"Event": "QueueStatusComplete", "ListItems": "3"},
    ]
    state.resync("hk", reply, t + 10)
    q = _queue(state.view(t + 10, full_numbers=True), "hk", "general-12345")
    assert {c["id"]: c["wait"] for c in q["callers"]} == {"4.1": 10, "4.3": 7}
    assert q["members"][0]["state"] == "paused" and q["members"][0]["paused_for"] == 310
    assert q["members"][0]["reason"] == "training"


def test_hangup_removes_a_caller_whose_leave_was_lost():
    state = LiveState()
    t = 1_800_000_000.0
    state.apply("hk", _join("5.1", "[12345] a"), t)
    assert state.apply("hk", {"Event": "Hangup", "Uniqueid": "5.1"}, t + 1)
    assert _queue(state.view(t + 2, full_numbers=False), "hk", "general-12345")["waiting"] == 0


@pytest.mark.parametrize("name,expected", [
    ("[12320] Zhang San", ("12320", "Zhang San")),
    ("[12345]", ("12345", "")),
    ("IVR routed", ("", "IVR routed")),
    ("<unknown>", ("", "")),
    ("", ("", "")),
])
def test_split_line(name, expected):
    assert split_line(name) == expected


def test_mask_text_hides_numbers_inside_names():
    assert mask_text("13812345678") == "138****5678"
    assert mask_text("Wang 13812345678 x") == "Wang 138****5678 x"
    assert mask_text("Agent 7") == "Agent 7"


def test_unknown_events_change_nothing():
    state = LiveState()
    version = state.version
    assert not state.apply("hk", {"Event": "Newexten", "Uniqueid": "1"}, 0.0)
    assert not state.apply("hk", {"Response": "Success"}, 0.0)
    assert state.version == version


def test_resync_keeps_a_caller_who_joined_after_the_status_was_asked():
    state = LiveState()
    t = 1_800_000_000.0
    reply = [{"Event": "QueueParams", "Queue": "general-12345"}, {"Event": "QueueStatusComplete"}]
    state.apply("hk", _join("6.1", "[12345] early"), t - 60)  # gone by now: the reply does not list it
    state.apply("hk", _join("6.2", "[12345] late"), t + 0.5)  # joined while the reply was on its way
    state.resync("hk", reply, t + 1, sent_at=t)
    q = _queue(state.view(t + 2, full_numbers=False), "hk", "general-12345")
    assert [c["id"] for c in q["callers"]] == ["6.2"]

_FIELDS = ["Queue", "Uniqueid", "CallerIDNum", "CallerIDName", "Exten", "Position", "HoldTime", "Interface",
           "Location", "MemberName", "Status", "Paused", "PausedReason", "InCall", "LastPause", "CallsTaken",
           "Penalty", "Variable", "Value", "Wait"]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(sorted(HANDLED_EVENTS | {"QueueParams", "QueueMember", "QueueEntry"})),
                          st.dictionaries(st.sampled_from(_FIELDS), st.text(max_size=12), max_size=8),
                          st.floats(min_value=0, max_value=4e9)), max_size=30))
def test_garbage_events_never_break_the_state(events):
    state = LiveState()
    for name, fields, now in events:
        state.apply("hk", {"Event": name, **fields}, now)
    state.resync("hk", [{"Event": name, **fields} for name, fields, _ in events], 1e9)
    view = state.view(2e9, full_numbers=False)
    assert all(q["waiting"] == len(q["callers"]) for s in view["servers"] for q in s["queues"])


def _ev(name: str, uid: str, **fields: str) -> dict:
    return {"Event": name, "Uniqueid": uid, **fields}


def _overflow(state: LiveState, uid: str, t: float, *, user_event: bool = True) -> None:
    """minors-protection gives up (timeout or leave-empty) in Asterisk 22's order, then general-12345 takes over."""
    state.apply("hk", _join(uid, "[12349] x", queue="minors-protection"), t)
    state.apply("hk", _ev("QueueCallerAbandon", uid, Queue="minors-protection", HoldTime="0", Position="1"), t)
    state.apply("hk", _ev("QueueCallerLeave", uid, Queue="minors-protection", Count="0"), t)
    if user_event:
        state.apply("hk", _ev("UserEvent", uid, UserEvent="HotlineQueueLeft", Queue="minors-protection",
                              Status="LEAVEEMPTY", Next="general-12345"), t)
    state.apply("hk", _join(uid, "[12349] x"), t + 0.002)


@pytest.mark.parametrize("user_event", [True, False], ids=["user-event", "next-join-only"])
def test_leave_empty_or_timeout_is_an_overflow_not_an_abandon(user_event):
    state = LiveState()
    t = 1_800_000_000.0
    _overflow(state, "3.1", t, user_event=user_event)
    state.apply("hk", _ev("QueueCallerLeave", "3.1", Queue="general-12345"), t + 4)
    state.apply("hk", _connect("3.1", 4), t + 4)
    view = state.view(t + 5, full_numbers=False)
    minors, general = _queue(view, "hk", "minors-protection"), _queue(view, "hk", "general-12345")
    assert (minors["abandoned"], minors["overflowed"], minors["overflowed_total"]) == (0, 1, 1)
    assert minors["service_level"] is None        # not offered here: it is counted where it ended
    assert (general["answered"], general["abandoned"], general["service_level"]) == (1, 0, 1.0)
    assert {r["line"]: (r["answered"], r["abandoned"], r["overflowed"]) for r in view["lines"]} == {
        "12349": (1, 0, 1)}


def test_hangup_right_after_an_abandon_is_an_abandon_even_without_the_request():
    state = LiveState()
    t = 1_800_000_000.0
    state.apply("hk", _join("4.1", "[12345] x"), t)
    assert not state.apply("hk", _ev("QueueCallerAbandon", "4.1", Queue="general-12345", HoldTime="7"), t + 7)
    assert _queue(state.view(t + 7, full_numbers=False), "hk", "general-12345")["abandoned"] == 0   # pending
    state.apply("hk", _ev("Hangup", "4.1", Cause="16"), t + 7.01)
    q = _queue(state.view(t + 8, full_numbers=False), "hk", "general-12345")
    assert (q["abandoned"], q["overflowed"], q["abandoned_total"]) == (1, 0, 1)


def test_a_hangup_request_of_someone_else_or_a_late_hangup_does_not_make_an_abandon():
    state = LiveState()
    t = 1_800_000_000.0
    state.apply("hk", _join("5.1", "[12345] x"), t)
    state.apply("hk", _ev("HangupRequest", "5.9", Cause="0"), t + 3)      # the ringing member's leg
    state.apply("hk", _ev("QueueCallerAbandon", "5.1", Queue="general-12345", HoldTime="3"), t + 3)
    state.apply("hk", _ev("QueueCallerLeave", "5.1", Queue="general-12345"), t + 3)
    state.apply("hk", _ev("Hangup", "5.1", Cause="16"), t + 60)             # redirected, hung up much later
    q = _queue(state.view(t + 61, full_numbers=False), "hk", "general-12345")
    assert (q["abandoned"], q["overflowed"]) == (0, 0)


def test_a_ringing_local_member_is_shown_ringing_though_its_status_is_2():
    """Asterisk 22: a Local member ringing is Status 2 (INUSE) like one on a call; AgentCalled says it rings."""
    state = LiveState()
    path = TRANSCRIPTS / "ami-abandon-while-ringing-local.txt"
    now = _run_until(path, state, "hk", lambda f: f.get("Event") == "DialState")
    (member,) = _queue(state.view(now, full_numbers=False), "hk", "general-12345")["members"]
    assert (member["state"], member["ringing"]) == ("busy", True)
    state = LiveState()
    now = _run_until(path, state, "hk", lambda f: f.get("Event") == "QueueCallerAbandon")
    (member,) = _queue(state.view(now, full_numbers=False), "hk", "general-12345")["members"]
    assert member["ringing"] is False
