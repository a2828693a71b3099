"""Replay (issue 13): the decision cache is exact against uncached routing.decide, a replay under the same
table moves nothing, and a changed table or menus shows its moves, closed queues, cancelled lines, unknown
numbers and vanished IVR paths."""
from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from ivr.menus import load_menus
from records.types import Outcome
from routing.loader import load_table
from routing.privacy import caller_hash
from traffic.replay import RecordedCall, Replayer
from traffic.synth import synthesize

CONF = Path(__file__).resolve().parents[1] / "conf"
SH = ZoneInfo("Asia/Shanghai")
KEY = b"k" * 32
LISTED = "13912345678"
TEXT = (CONF / "routing.yaml").read_text(encoding="utf-8").replace(
    "  listed: []",
    f"  listed:\n    - {{number: '{LISTED}', until: 2026-06-01, reason: test}}\n"
    "    - {number: '13800000001', reason: for ever}")
TABLE = load_table(CONF / "routing.yaml", text=TEXT)
MENUS = load_menus(CONF / "ivr.yaml", TABLE)
PATHS = [None, "main", "main>1", "main>3", "main>5>cities>2", "main>5>cities>*>main>4", "main>7>t>t",
         "main>9>2", "expert-12320>1", "expert-12320>7>7", "expert-12320>2", "subcenter>2", "cities>1", "x>1"]
NUMBERS = sorted(TABLE.lines) + ["+8612345", "12399", "99999"]
CALLERS = [None, LISTED, "13800000001", "13700000000"]


@settings(max_examples=400, deadline=None)
@given(dialed=st.sampled_from(NUMBERS), caller=st.sampled_from(CALLERS), path=st.sampled_from(PATHS),
       minutes=st.integers(0, 60 * 24 * 365 * 6))
def test_the_cache_is_exact_against_uncached_decide(dialed, caller, path, minutes):
    """Instants over six years from 2021 (transition windows, holidays, 调休, listings that end), every
    schedule bound hit to the minute: the cached answer is always decide()'s own."""
    at = datetime(2021, 1, 1, tzinfo=SH) + timedelta(minutes=minutes)
    replayer = Replayer(TABLE, MENUS, KEY)
    call = RecordedCall(dialed, at, caller_hash(caller, KEY) if caller else None, path)
    reference = replayer.decide_one(call)
    # warm the cache with other instants of the same bucket first, then the call itself
    for other in (at.replace(second=0) - timedelta(minutes=1), at + timedelta(seconds=30)):
        replayer.replay_one(RecordedCall(dialed, other, call.caller_hash, path))
    assert replayer.replay_one(call) == reference
    assert Replayer(TABLE, MENUS, KEY).replay_one(call) == reference


def test_the_cache_on_the_bounds_of_a_schedule_and_a_window():
    replayer = Replayer(TABLE, MENUS, KEY)
    for at in (datetime(2026, 11, 23, 11, 59, 59, tzinfo=SH), datetime(2026, 11, 23, 12, 0, tzinfo=SH),
               datetime(2026, 11, 23, 14, 29, 59, tzinfo=SH), datetime(2026, 11, 23, 14, 30, tzinfo=SH),
               datetime(2026, 5, 31, 23, 59, 59, tzinfo=SH), datetime(2026, 6, 1, tzinfo=SH)):
        for dialed, caller in (("12320", None), ("12345", LISTED)):
            call = RecordedCall(dialed, at, caller_hash(caller, KEY) if caller else None)
            assert replayer.replay_one(call) == replayer.decide_one(call), at
    assert replayer.replay_one(RecordedCall("12320", datetime(2026, 11, 23, 12, 0, tzinfo=SH))).closed_queue \
        == "expert-12320"
    assert replayer.replay_one(RecordedCall("12320", datetime(2026, 11, 23, 11, 59, tzinfo=SH))).target \
        == "expert-12320"


def _recorded(records):
    return [RecordedCall(r.dialed, r.arrived_at, caller_hash(r.caller, KEY), None, r.target, r.action)
            for r in records]


WEEK = synthesize(TABLE, date(2026, 11, 23), 7, seed=3)


def test_a_replay_under_the_same_table_moves_nothing():
    report = Replayer(TABLE, MENUS, KEY).replay(_recorded(WEEK))
    assert report.calls == len(WEEK) > 10_000
    assert report.moved == 0 and not report.moves
    assert report.decisions < report.calls / 10       # the cache did its work
    assert not report.unknown and not report.vanished_paths
    assert sum(report.by_queue.values()) == report.calls
    assert any(r.outcome is Outcome.ABANDONED for r in WEEK)


def test_a_changed_table_shows_moves_closed_cancelled_and_unknown():
    text = TEXT.replace("queue: expert-12320\n        menu: expert-12320", "queue: general-12345\n"
                        "        menu: expert-12320")
    text = text.replace('  "12367":', '  "12367-gone":', 1) if '  "12367":' in text else text
    candidate = load_table(CONF / "routing.yaml", text=text.replace('"12367-gone"', '"1236700"'))
    report = Replayer(candidate, load_menus(CONF / "ivr.yaml", candidate), KEY).replay(_recorded(WEEK))
    n12320 = sum(1 for r in WEEK if r.dialed == "12320" and r.target == "expert-12320")
    moved_12320 = sum(n for (h, a, b), n in report.moves.items() if (a, b) == ("expert-12320", "general-12345"))
    assert moved_12320 == n12320 > 0
    assert report.unknown["12367"] == sum(1 for r in WEEK if r.dialed == "12367") > 0
    assert report.cancelled["12396"] == sum(1 for r in WEEK if r.dialed == "12396") > 0
    assert report.closed          # expert-12329 still closes at lunch and at night
    assert all(q != "expert-12320" for (_h, q) in report.closed)


def test_ivr_paths_are_followed_in_the_candidate_menus_and_vanished_ones_reported():
    at = datetime(2026, 11, 24, 10, 0, tzinfo=SH)       # a Tuesday morning: every seat open
    paths = {"main>4": "minors-protection", "main>5>cities>2": "city-sanya", "main>5>cities>*>main>3":
             "business-environment", "main>7>t>t": "general-12345", "main": None}
    replayer = Replayer(TABLE, MENUS, KEY)
    for path, queue in paths.items():
        out = replayer.replay_one(RecordedCall("12345", at, None, path))
        assert out.target == queue and not out.path_vanished, path
    ivr = (CONF / "ivr.yaml").read_text(encoding="utf-8")
    without_cities = ivr.replace('"5": {menu: cities, label: 市县分平台 city and county sub-platforms}',
                                 '"5": {queue: general-12345}')
    menus = load_menus(CONF / "ivr.yaml", TABLE, text=without_cities)
    calls = [RecordedCall("12345", at, None, "main>5>cities>2", "city-sanya", "queue"),
             RecordedCall("12345", at, None, "main>4", "minors-protection", "queue")]
    report = Replayer(TABLE, menus, KEY).replay(calls)
    assert report.vanished_paths == {"main>5>cities>2": 1}     # key 5 now leads to 12345 directly
    assert report.moves == {(10, "city-sanya", "general-12345"): 1}


def test_a_week_with_ivr_paths_replays_to_the_same_queues():
    week = synthesize(TABLE, date(2026, 11, 23), 2, seed=8, menus=MENUS)
    calls = [RecordedCall(r.dialed, r.arrived_at, caller_hash(r.caller, KEY), ">".join(r.ivr_path) or None,
                          r.target, r.action) for r in week]
    assert sum(1 for c in calls if c.ivr_path) > len(calls) / 2
    assert {c.target for c in calls} >= {"city-haikou", "city-sanya", "business-environment"}
    report = Replayer(TABLE, MENUS, KEY).replay(calls)
    assert report.moved == 0 and not report.vanished_paths
    # the menus without the cities submenu: those paths are gone, their callers now reach 12345
    menus = load_menus(CONF / "ivr.yaml", TABLE, text=(CONF / "ivr.yaml").read_text(encoding="utf-8").replace(
        '"5": {menu: cities, label: 市县分平台 city and county sub-platforms}', '"5": {queue: general-12345}'))
    report = Replayer(TABLE, menus, KEY).replay(calls)
    gone = sum(n for p, n in report.vanished_paths.items() if p.startswith("main>5>cities"))
    assert gone == sum(1 for c in calls if (c.ivr_path or "").startswith("main>5>cities")) > 0
    assert {(a, b) for (_h, a, b) in report.moves} <= {("city-haikou", "general-12345"),
                                                        ("city-sanya", "general-12345")}
