"""Today's figures are one definition (records.figures): the same calls give the same numbers in the live view,
the terminal view, /metrics and `hotline report daily`, whether counted live from AMI events or seeded from SQL
after a restart; a call seeded and then seen live again is counted once."""
from __future__ import annotations

import re
from datetime import date, datetime, timezone

import pytest

from records.db import make_engine
from records.outcomes import QueueOutcomeTracker
from records.period_report import load as load_report
from records.periods import period
from records.recorder import CallRecorder
from records.reports import day_rows
from records.schema import calls as calls_table
from sqlalchemy import select
from supervisor import metrics, textview
from supervisor.state import HOTLINE_TZ, LiveState
from tests.db_fixtures import db_url  # noqa: F401

DAY = date(2021, 9, 17)
T0 = datetime(2021, 9, 17, 10, 0, tzinfo=HOTLINE_TZ).timestamp()
SERVER = "hk"
QUEUES = ("general-12345", "expert-12320", "minors-protection")


def _ev(event: str, uid: str, **fields: str) -> dict[str, str]:
    return {"Event": event, "Uniqueid": uid, **fields}


def _join(uid: str, line: str, queue: str) -> dict[str, str]:
    return _ev("QueueCallerJoin", uid, Queue=queue, CallerIDNum="13800138000", CallerIDName=f"[{line}] x",
               Position="1")


def calls() -> list[tuple[float, dict[str, str]]]:
    """(instant, event) for a morning: answered in and out of 15 s, abandoned, an overflow answered next door,
    an overflow whose chain ended, a caller redirected out of the queue (neither)."""
    out: list[tuple[float, dict[str, str]]] = []

    def answered(uid: str, line: str, queue: str, t: float, hold: int) -> None:
        out.extend([(t, _ev("Newchannel", uid)), (t, _join(uid, line, queue)),
                    (t + hold, _ev("QueueCallerLeave", uid, Queue=queue)),
                    (t + hold, _ev("AgentConnect", uid, Queue=queue, Interface="PJSIP/9001", HoldTime=str(hold))),
                    (t + hold + 60, _ev("Hangup", uid, Cause="16"))])

    def abandoned(uid: str, line: str, queue: str, t: float, hold: int) -> None:
        out.extend([(t, _join(uid, line, queue)), (t + hold, _ev("HangupRequest", uid)),
                    (t + hold, _ev("QueueCallerAbandon", uid, Queue=queue, HoldTime=str(hold))),
                    (t + hold, _ev("Hangup", uid, Cause="16"))])

    def overflow(uid: str, line: str, first: str, t: float, after: int) -> None:
        out.extend([(t, _join(uid, line, first)),
                    (t + after, _ev("QueueCallerAbandon", uid, Queue=first, HoldTime=str(after))),
                    (t + after, _ev("QueueCallerLeave", uid, Queue=first)),
                    (t + after, _ev("UserEvent", uid, UserEvent="HotlineQueueLeft", Queue=first))])

    for i, hold in enumerate((3, 15, 16, 40)):
        answered(f"a{i}", "12345", "general-12345", T0 + 100 * i, hold)
    answered("b0", "12320", "expert-12320", T0 + 500, 5)
    abandoned("c0", "12345", "general-12345", T0 + 600, 30)
    abandoned("c1", "12320", "expert-12320", T0 + 700, 8)
    overflow("d0", "12349", "minors-protection", T0 + 800, 10)          # then answered in general-12345
    answered("d0", "12349", "general-12345", T0 + 810, 4)
    overflow("e0", "12320", "expert-12320", T0 + 900, 20)               # then nobody: the chain ended
    out.append((T0 + 925, _ev("Hangup", "e0", Cause="16")))
    out.extend([(T0 + 1000, _join("f0", "12345", "general-12345")),       # redirected out: neither
                (T0 + 1003, _ev("QueueCallerAbandon", "f0", Queue="general-12345", HoldTime="3")),
                (T0 + 1010, _ev("Hangup", "f0", Cause="16"))])
    return sorted(out, key=lambda item: item[0])


# What a supervisor should read, per queue: answered, in 15 s, abandoned, overflowed.
EXPECTED = {"general-12345": (5, 3, 1, 0), "expert-12320": (1, 1, 1, 1), "minors-protection": (0, 0, 0, 1)}
EXPECTED_LINES = {"12345": (4, 2, 1, 0), "12320": (1, 1, 1, 1), "12349": (1, 1, 0, 1)}
NOW = T0 + 3600


def _status() -> list[dict[str, str]]:
    return [{"Event": "QueueParams", "Queue": q, "Strategy": "rrmemory"} for q in QUEUES]


def _live_and_recorded(url: str, tmp_path) -> LiveState:
    """The engine's way (tracker -> recorder -> SQL) and the view's way (LiveState) over the same events."""
    state = LiveState(service_level=15)
    state.resync(SERVER, _status(), T0 - 10)
    tracker = QueueOutcomeTracker(server=SERVER)
    recorder = CallRecorder(url, tmp_path / "spool", b"k", auto_upgrade=True)
    try:
        for at, event in calls():
            state.apply(SERVER, event, at)
            for record in tracker.feed(event, datetime.fromtimestamp(at, timezone.utc)):
                recorder.record(record)
        recorder.flush()
    finally:
        recorder.close()
    return state


def _view_figures(state: LiveState) -> tuple[dict, dict]:
    view = state.view(NOW, full_numbers=False)
    queues = {q["name"]: (q["answered"], q["answered_in_sl"], q["abandoned"], q["overflowed"])
              for s in view["servers"] for q in s["queues"]}
    lines = {r["line"]: (r["answered"], r["answered_in_sl"], r["abandoned"], r["overflowed"]) for r in view["lines"]}
    return queues, lines


def _metric_figures(state: LiveState) -> dict:
    text = metrics.render(metrics.make_registry(state, lambda: NOW)).decode()

    def value(name: str, queue: str) -> int:
        m = re.search(rf'^{name}\{{queue="{queue}",server="{SERVER}"\}} ([0-9.]+)$', text, re.M)
        assert m, (name, queue)
        return int(float(m.group(1)))
    sl = {q: float(m) for q, m in re.findall(
        rf'^hotline_queue_service_level_ratio\{{queue="([^"]+)",server="{SERVER}"\}} ([0-9.]+)$', text, re.M)}
    return {q: (value("hotline_queue_answered_today", q), value("hotline_queue_abandoned_today", q),
                value("hotline_queue_overflowed_today", q), sl.get(q)) for q in QUEUES}


def _terminal_figures(state: LiveState) -> dict:
    text = textview.render(state.view(NOW, full_numbers=False))
    out = {}
    for q in QUEUES:
        row = next(line for line in text.splitlines() if line.strip().startswith(q + " "))
        cells = row.split()
        out[q] = (int(cells[-4]), int(cells[-3]), int(cells[-2]), cells[-1])
    return out


def test_the_four_outlets_agree_live_and_after_a_restart(db_url, tmp_path):  # noqa: F811
    live = _live_and_recorded(db_url, tmp_path)
    queues, lines = _view_figures(live)
    assert queues == EXPECTED and lines == EXPECTED_LINES

    # A restart: a fresh view seeded from SQL has the same figures.
    engine = make_engine(db_url)
    try:
        rows = day_rows(engine, DAY, HOTLINE_TZ)
        restarted = LiveState(service_level=15)
        restarted.resync(SERVER, _status(), NOW)
        restarted.seed(rows, NOW)
        assert _view_figures(restarted) == (queues, lines)

        # Seeding again on top of live figures (the periodic re-seed) counts nothing twice.
        live.seed(rows, NOW)
        assert _view_figures(live) == (queues, lines)

        report = load_report(engine, period("daily", DAY, HOTLINE_TZ), as_of=datetime.now(timezone.utc),
                             service_level=15)
    finally:
        engine.dispose()

    by_queue = {r.key: r for r in report.queues}
    assert {q: (r.answered, r.answered_in_sl, r.abandoned, r.overflowed) for q, r in by_queue.items()} == EXPECTED
    assert {r.key: (r.answered, r.answered_in_sl, r.abandoned, r.overflowed) for r in report.lines} == EXPECTED_LINES

    for state in (live, restarted):
        view = state.view(NOW, full_numbers=False)
        sls = {q["name"]: q["service_level"] for s in view["servers"] for q in s["queues"]}
        assert sls == {q: by_queue[q].service_level for q in QUEUES}
        assert _metric_figures(state) == {
            q: (a, ab, o, sls[q]) for q, (a, _in, ab, o) in EXPECTED.items()}
        assert _terminal_figures(state) == {
            q: (a, ab, o, "-" if sls[q] is None else f"{sls[q] * 100:.0f}%")
            for q, (a, _in, ab, o) in EXPECTED.items()}
    assert by_queue["general-12345"].service_level == pytest.approx(3 / 6, abs=1e-4)


def test_a_call_seeded_then_seen_live_counts_once(db_url, tmp_path):  # noqa: F811
    recorded = _live_and_recorded(db_url, tmp_path)
    engine = make_engine(db_url)
    try:
        rows = day_rows(engine, DAY, HOTLINE_TZ)
    finally:
        engine.dispose()
    # The view restarts while a0 is still on the line: SQL has a0 answered; the live events of a0 come again.
    state = LiveState(service_level=15)
    state.resync(SERVER, _status(), T0)
    state.seed(rows, T0 + 200)
    for at, event in calls():
        if event["Uniqueid"] == "a0":
            state.apply(SERVER, event, at)
    assert _view_figures(state) == _view_figures(recorded)


def test_midnight_in_shanghai_starts_the_figures_again(tmp_path):
    state = _live_and_recorded(f"sqlite:///{tmp_path / 'r.sqlite3'}", tmp_path)
    midnight = datetime(2021, 9, 18, 0, 0, tzinfo=HOTLINE_TZ).timestamp()
    assert not state.roll_day(midnight - 1)
    assert state.roll_day(midnight)
    view = state.view(midnight + 1, full_numbers=False)
    assert all(q["answered"] == q["abandoned"] == q["overflowed"] == 0 for s in view["servers"] for q in s["queues"])
    assert view["lines"] == []


def test_the_records_keep_each_calls_queue_legs(db_url, tmp_path):  # noqa: F811
    _live_and_recorded(db_url, tmp_path)
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            rows = {r["uniqueid"]: r for r in conn.execute(select(calls_table)).mappings()}
    finally:
        engine.dispose()
    legs = {uid: [(leg["server"], leg["queue"], leg["result"], leg["wait"]) for leg in row["queue_legs"]]
            for uid, row in rows.items()}
    assert legs["d0"] == [("hk", "minors-protection", "overflowed", 10.0), ("hk", "general-12345", "answered", 4.0)]
    assert legs["e0"] == [("hk", "expert-12320", "overflowed", 20.0)]
    assert legs["f0"] == [("hk", "general-12345", "left", 3.0)]
    assert legs["c0"] == [("hk", "general-12345", "abandoned", 30.0)]
    assert rows["d0"]["wait_seconds"] == 14.0
    assert rows["a3"]["answered_at"] == datetime.fromtimestamp(T0 + 340, timezone.utc)
