"""The abuse rule's in-memory caller counts (records.caller_counts): pure, every instant passed in."""
from __future__ import annotations

from records.caller_counts import CallerCounts

MIN = 60.0
T = 1_800_000_000.0          # any instant; POSIX seconds


def test_counts_the_earlier_calls_in_the_window_inclusive_not_this_one():
    counts = CallerCounts(60)
    assert [counts.arrive("a", f"u{i}", T + i * MIN, 60) for i in range(4)] == [0, 1, 2, 3]
    assert counts.count("a", T + 3 * MIN, 60) == 4
    assert counts.count("a", T + 60 * MIN, 60) == 4        # the call at T is exactly at the edge: counted
    assert counts.count("a", T + 60 * MIN + 1, 60) == 3    # a second later it is out
    assert counts.count("a", T + 2 * MIN, 60) == 3         # only calls up to `at`, not later ones
    assert counts.count("b", T + 3 * MIN, 60) == 0         # per caller


def test_a_call_is_counted_once_by_uniqueid_whichever_way_it_came():
    counts = CallerCounts(60)
    counts.arrive("a", "u1", T, 60)                         # ours, at its arrival
    assert counts.merge([("u1", "a", T), ("u2", "a", T + MIN), ("u2", "a", T + MIN)]) == 1   # ours again, theirs twice
    assert counts.arrive("a", "u3", T + 2 * MIN, 60) == 2
    assert counts.arrive("a", "u3", T + 2 * MIN, 60) == 2   # the same call asked twice: not its own earlier call
    assert len(counts) == 3


def test_a_call_without_uniqueid_is_never_noted():
    counts = CallerCounts(60)
    assert counts.arrive("a", None, T, 60) == 0
    assert counts.arrive("a", None, T + 1, 60) == 0 and len(counts) == 0


def test_old_calls_are_dropped_and_idle_callers_forgotten():
    counts = CallerCounts(60)
    counts.arrive("idle", "u1", T, 60)
    counts.arrive("busy", "u2", T, 60)
    counts.arrive("busy", "u3", T + 50 * MIN, 60)
    counts.prune(T + 70 * MIN)
    assert counts.callers == 1 and counts.count("busy", T + 70 * MIN, 60) == 1 and len(counts) == 1
    assert counts.merge([("u0", "busy", T + 5 * MIN)]) == 0   # arrived before the window: not taken


def test_a_longer_window_widens_what_is_kept_and_says_so():
    counts = CallerCounts(60)
    assert counts.widen(30) is False and counts.keep_minutes == 60
    assert counts.widen(180) is True and counts.keep_minutes == 180
    counts.arrive("a", "u1", T, 180)
    counts.arrive("a", "u2", T + 100 * MIN, 60)            # a shorter window asked again keeps the longest
    assert counts.keep_minutes == 180
    assert counts.count("a", T + 170 * MIN, 180) == 2 and counts.count("a", T + 170 * MIN, 60) == 0


def test_memory_is_bounded_least_recently_heard_caller_first():
    counts = CallerCounts(60, max_callers=3, max_calls=5)
    for i, caller in enumerate("abcd"):
        counts.arrive(caller, f"u{i}", T + i, 60)
    assert counts.callers == 3 and counts.count("a", T + 10, 60) == 0      # "a" was heard from least recently
    counts.arrive("b", "u10", T + 10, 60)                                   # "b" heard again: kept
    counts.arrive("c", "u11", T + 11, 60)
    counts.arrive("d", "u12", T + 12, 60)                                   # 6 calls > 5: the oldest caller goes
    assert len(counts) <= 5 and counts.count("d", T + 12, 60) == 2 and counts.count("b", T + 12, 60) == 0


def test_out_of_order_merges_count_in_order():
    counts = CallerCounts(60)
    counts.merge([("u3", "a", T + 3 * MIN), ("u1", "a", T + MIN), ("u2", "a", T + 2 * MIN)])
    assert counts.count("a", T + 2 * MIN, 60) == 2 and counts.count("a", T + 3 * MIN, 1) == 2
