"""The daily report on a known data set, searches by keyed hash, and exports that never hold a full number."""
from __future__ import annotations

import csv
import io
import json
from datetime import date, datetime, timedelta

import pytest
from click.testing import CliRunner

from records import figures, period_report, periods, reports
from records.periods import period
from records.figures import leg
from records.schema import callback_requests, work_orders
from records.db import make_engine
from records.recorder import CallRecorder
from records.types import CallbackRequest, CallRecord, TransferRecord
from cryptography.fernet import Fernet
from routing.privacy import caller_hash
from scripts.hotline import cli
from tests.db_fixtures import db_url, pg_url  # noqa: F401
from zoneinfo import ZoneInfo

SH = ZoneInfo("Asia/Shanghai")
KEY_TEXT = "report-test-key"
KEY = KEY_TEXT.encode()
DAY = date(2021, 9, 17)
START = datetime(2021, 9, 17, 0, 0, tzinfo=SH)


def number(i: int) -> str:
    return f"1398765{i:04d}"


# (line, outcome, wait seconds) for calls on 2021-09-17 in Shanghai
KNOWN = ([("12345", "answered", w) for w in (5, 10, 20)] + [("12345", "abandoned", 40)]
         + [("12320", "answered", w) for w in range(1, 10)] + [("12320", "abandoned", 10)]
         + [("12366", "answered", 3), ("12366", "ivr_hangup", None)]
         + [("12349", "no_answer", 60), ("12349", "answered", 4)])     # the queues gave up; an overflow answered


@pytest.fixture
def loaded(db_url, tmp_path):  # noqa: F811
    rec = CallRecorder(db_url, tmp_path / "spool", KEY, auto_upgrade=True, callback_key=Fernet.generate_key())
    try:
        for i, (line, outcome, wait) in enumerate(KNOWN):
            arrived = START + timedelta(minutes=10 * i)
            legs = ()
            if i == 17:     # overflowed from minors-protection after 2 s, answered in general-12345 2 s later
                legs = (leg("minors-protection", arrived, arrived + timedelta(seconds=2), 2, "overflowed", "hk"),
                        leg("general-12345", arrived + timedelta(seconds=2), arrived + timedelta(seconds=4), 2,
                            "answered", "hk"))
            rec.record_call(CallRecord(uniqueid=f"u{i:02d}", dialed=line, line=line, caller=number(i),
                                       arrived_at=arrived, action="queue", queue_legs=legs,
                                       target="general-12345", outcome=outcome, wait_seconds=wait))
        for uid in ("u00", "u01"):
            rec.record_callback(CallbackRequest(uniqueid=uid, line="12345", queue="general-12345",
                                                number=number(50), requested_at=START + timedelta(hours=1)))
        # Day boundaries are Shanghai's: one second before, the first instant of the next day.
        for uid, at in (("before", START - timedelta(seconds=1)), ("after", START + timedelta(days=1))):
            rec.record_call(CallRecord(uniqueid=uid, dialed="12345", line="12345", caller=number(99),
                                       arrived_at=at, outcome="answered", wait_seconds=1000))
        for uid, kind, outcome, trunk in (("u00", "attended", "returned", "seat-12348"),
                                          ("u01", "attended", "answered", "seat-12333"),
                                          ("u14", "three_way", "answered", "subcenter-12366"),
                                          ("u15", "work_order", None, "subcenter-12366")):
            rec.record_transfer(TransferRecord(uniqueid=uid, kind=kind, from_line="12345", first_line="12345",
                                               started_at=START + timedelta(hours=5), target_trunk=trunk,
                                               outcome=outcome))
        assert rec.flush() == len(KNOWN) + 2 + 4 + 2
    finally:
        rec.close()
    engine = make_engine(db_url)
    try:
        with engine.begin() as conn:
            conn.execute(callback_requests.update().where(callback_requests.c.uniqueid == "u01")
                         .values(status="done", done_at=START + timedelta(hours=2)))
            for n, signed in ((1, START + timedelta(hours=5)), (2, None)):
                conn.execute(work_orders.insert().values(
                    number=f"WO-20210917-000{n}", uniqueid="u14", line="12366", category="subcenter",
                    target="subcenter-12366", status="signed" if signed else "dispatched",
                    dispatched_at=START + timedelta(hours=3), sign_deadline=START + timedelta(days=1),
                    signed_at=signed))
    finally:
        engine.dispose()
    return db_url


def _report(url, kind="daily", day=DAY, as_of=None):
    engine = make_engine(url)
    try:
        return period_report.load(engine, period(kind, day, SH), as_of=as_of or START + timedelta(days=3),
                                  service_level=15, line_names={"12345": "海南12345"},
                                  queue_names={"general-12345": "综合受理", "minors-protection": "未成年人保护"})
    finally:
        engine.dispose()


def test_daily_report_figures_per_line(loaded):
    report = _report(loaded)
    result = {r.key: r for r in report.lines}
    assert sorted(result) == ["12320", "12345", "12349", "12366"]
    r = result["12345"]
    assert r.name == "海南12345"
    assert (r.calls, r.offered, r.answered, r.answered_in_sl, r.abandoned, r.overflowed) == (4, 4, 3, 2, 1, 0)
    assert (r.service_level, r.abandonment_rate) == (0.5, 0.25)
    assert r.average_wait == pytest.approx(11.7) and r.p90_wait == 20       # answered calls' waits: 5, 10, 20
    assert r.transfers == {"attended": {"answered": 1, "returned": 1}}
    r = result["12320"]
    assert (r.calls, r.offered, r.answered, r.answered_in_sl, r.abandoned) == (10, 10, 9, 9, 1)
    assert (r.service_level, r.abandonment_rate, r.average_wait, r.p90_wait) == (0.9, 0.1, 5.0, 9)
    r = result["12366"]       # one answered, one hung up in the IVR (a call, not offered to a queue)
    assert (r.calls, r.offered, r.answered, r.average_wait, r.p90_wait) == (2, 1, 1, 3.0, 3)
    assert r.transfers == {"three_way": {"answered": 1}, "work_order": {"unknown": 1}}
    r = result["12349"]       # the queues gave up on one (overflowed, not offered), the other answered
    assert (r.calls, r.offered, r.answered, r.abandoned, r.overflowed) == (2, 1, 1, 0, 2)
    t = report.total
    assert (t.calls, t.offered, t.answered, t.answered_in_sl, t.abandoned, t.overflowed) == (18, 16, 14, 13, 2, 2)
    assert t.p90_wait == 10 and t.service_level == pytest.approx(13 / 16, abs=1e-4)


def test_daily_report_per_queue_hour_callbacks_and_work_orders(loaded):
    report = _report(loaded)
    queues = {r.key: r for r in report.queues}
    assert list(queues) == ["general-12345", "minors-protection"]          # the table's order
    g, m = queues["general-12345"], queues["minors-protection"]
    assert (m.name, m.calls, m.offered, m.overflowed, m.service_level) == ("未成年人保护", 1, 0, 1, None)
    # the overflow from minors-protection was answered in general-12345 after 4 s in all
    assert (g.calls, g.offered, g.answered, g.answered_in_sl, g.abandoned, g.overflowed) == (17, 16, 14, 13, 2, 1)
    assert (g.callbacks_requested, g.callbacks_done) == (2, 1)
    assert (g.work_orders_opened, g.work_orders_overdue) == (2, 1)
    lines = {r.key: r for r in report.lines}
    assert (lines["12366"].work_orders_opened, lines["12366"].work_orders_overdue) == (2, 1)
    assert (lines["12345"].callbacks_requested, lines["12345"].callbacks_done) == (2, 1)
    assert len(report.buckets) == 24 and report.buckets[0].key == "2021-09-17T00:00:00+08:00"
    hours = [(r.calls, r.answered, r.abandoned) for r in report.buckets[:4]]
    assert hours == [(6, 5, 1), (6, 6, 0), (6, 3, 1), (0, 0, 0)]
    assert sum(r.calls for r in report.buckets) == report.total.calls
    assert (report.total.callbacks_requested, report.total.work_orders_opened) == (2, 2)
    # overdue is as of the moment asked: before the deadline nothing is overdue
    early = _report(loaded, as_of=START + timedelta(hours=12))
    assert early.total.work_orders_overdue == 0


def test_weekly_and_monthly_periods(loaded):
    week = _report(loaded, "weekly")
    assert (week.period.first, week.period.last) == (date(2021, 9, 13), date(2021, 9, 19))
    assert [r.calls for r in week.buckets] == [0, 0, 0, 1, 18, 1, 0]   # the day before and the day after
    month = _report(loaded, "monthly", date(2021, 9, 30))
    assert (month.period.first, month.period.last, len(month.buckets)) == (date(2021, 9, 1), date(2021, 9, 30), 30)
    # the calls of the 16th and 18th were answered but never queued: calls, not offered to a queue
    assert (month.total.calls, month.total.offered, month.total.answered) == (20, 16, 14)
    assert periods.previous("monthly", date(2021, 3, 1), SH).first == date(2021, 2, 1)
    assert periods.previous("weekly", date(2021, 9, 15), SH).first == date(2021, 9, 6)


def test_percentile_is_nearest_rank():
    assert figures.percentile([], 0.9) is None
    assert figures.percentile([7], 0.9) == 7
    assert figures.percentile(list(range(1, 11)), 0.9) == 9
    assert figures.percentile(list(range(1, 12)), 0.9) == 10     # ceil(9.9) = 10th of 11


def test_search_by_caller_uses_the_keyed_hash(loaded):
    engine = make_engine(loaded)
    try:
        rows = reports.search(engine, reports.CallFilter(caller=number(3)), KEY)
        assert [r["uniqueid"] for r in rows] == ["u03"]
        assert rows[0]["caller_masked"] == "139****0003" and "caller_hash" not in rows[0]
        assert reports.search(engine, reports.CallFilter(caller=number(3)), b"another key") == []
        rows = reports.search(engine, reports.CallFilter(line="12345", since=START, until=START + timedelta(days=1)))
        assert [r["uniqueid"] for r in rows] == ["u00", "u01", "u02", "u03"]
        assert [r["transfers"] for r in rows] == [1, 1, 0, 0]
        assert len(reports.search(engine, reports.CallFilter(outcome="abandoned"))) == 2
    finally:
        engine.dispose()


def run(args: list[str]) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, args, env={"HOTLINE_CALLER_HASH_KEY": KEY_TEXT}, catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_csv_export_never_contains_a_full_number(loaded, tmp_path):
    out = tmp_path / "calls.csv"
    code, _, err = run(["records", "export", "--csv", str(out), "--db-url", loaded])
    assert code == 0, err
    text = out.read_text(encoding="utf-8")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == len(KNOWN) + 2
    for i in list(range(len(KNOWN))) + [99]:
        assert number(i) not in text
        assert caller_hash(number(i), KEY) not in text
    assert {r["caller_masked"] for r in rows} >= {"139****0000", "139****0099"}
    assert "caller_hash" not in rows[0]


def test_cli_search_report_and_refusals(loaded):
    code, out, err = run(["records", "search", "--db-url", loaded, "--caller", number(14)])
    assert code == 0, err
    assert "u14" in out and "139****0014" in out and number(14) not in out
    assert out.count("\n") == 2   # header + one call

    code, out, err = run(["records", "search", "--db-url", loaded, "--full"])
    assert code == 1
    assert "never stored in full" in err and "cannot be shown" in err

    code, out, err = run(["report", "daily", "--db-url", loaded, "--date", "2021-09-17", "--json"])
    assert code == 0, err
    doc = json.loads(out)
    assert (doc["period"], doc["timezone"], doc["start"]) == ("daily", "Asia/Shanghai", "2021-09-17T00:00:00+08:00")
    by_line = {r["key"]: r for r in doc["lines"]}
    assert by_line["12345"]["p90_wait"] == 20 and by_line["12320"]["service_level"] == 0.9
    assert len(doc["hours"]) == 24 and doc["total"]["offered"] == 16
    code, out, _ = run(["report", "daily", "--db-url", loaded, "--date", "2021-09-17"])
    assert code == 0
    assert out.startswith("12345 热线日报 2021-09-17\n") and "按热线" in out and "合计" in out
    section = out.split("== 按热线\n")[1].split("\n\n")[0]
    row = next(line for line in section.splitlines() if line.strip().startswith("12345 "))
    assert row.split()[-14:-4] == ["4", "4", "3", "2", "1", "0", "50.0%", "25.0%", "11.7s", "20.0s"]
    code, out, _ = run(["report", "daily", "--db-url", loaded, "--date", "2021-09-17", "--lang", "en"])
    assert "By queue" in out and "Service level" in out and "Times in Asia/Shanghai" in out

    code, _, err = run(["report", "daily", "--db-url", loaded, "--date", "17/09/2021"])
    assert code == 2 and "is not a date" in err


def test_cli_reports_an_unreachable_database_in_one_line(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code, _, err = run(["report", "daily", "--db-url", f"sqlite:///{blocker}/db.sqlite3", "--date", "2021-09-17"])
    assert code == 1
    assert err.startswith("Error: database error: OperationalError:") and "Traceback" not in err


# --- defect 17: a fresh database -----------------------------------------------------------------------------
READING_COMMANDS = [["report", "daily", "--date", "2021-09-17"], ["records", "search"],
                    ["records", "export", "--csv", "-"], ["records", "versions"], ["workorders", "list"],
                    ["callbacks", "list"]]


@pytest.mark.parametrize("args", READING_COMMANDS, ids=lambda a: " ".join(a[:2]))
def test_every_reading_command_creates_a_fresh_sqlite_schema(args, tmp_path):
    url = f"sqlite:///{tmp_path / 'fresh' / 'fresh.db'}"
    code, out, err = run([*args, "--db-url", url])
    assert code == 0, err
    assert "no such table" not in out + err
    code, out, _ = run(["db", "current", "--db-url", url])
    assert code == 0 and "(none" not in out


def _total_cells(out: str) -> list[str]:
    return next(line for line in out.splitlines() if line.strip().startswith("Total ")).split()[1:]


def test_an_empty_day_is_a_report_with_zeros(tmp_path):
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    code, out, err = run(["report", "daily", "--db-url", url, "--date", "2021-09-17", "--lang", "en"])
    assert code == 0, err
    assert _total_cells(out)[:6] == ["0"] * 6 and "(No calls in this period)" in out
    code, out, err = run(["report", "daily", "--db-url", url, "--date", "2021-09-17", "--json"])
    assert code == 0, err
    doc = json.loads(out)
    assert doc["lines"] == [] and doc["queues"] == []
    assert (doc["total"]["calls"], doc["total"]["answered"], doc["total"]["service_level"]) == (0, 0, None)


def test_the_total_line_adds_up(loaded):
    code, out, err = run(["report", "daily", "--db-url", loaded, "--date", "2021-09-17", "--json"])
    assert code == 0, err
    doc = json.loads(out)
    total = doc["total"]
    for name in ("calls", "offered", "answered", "answered_in_sl", "abandoned", "overflowed",
                 "callbacks_requested", "work_orders_opened"):
        assert total[name] == sum(r[name] for r in doc["lines"]) == sum(r[name] for r in doc["hours"]), name
    assert total["transfers"] == {"attended": {"answered": 1, "returned": 1}, "three_way": {"answered": 1},
                                  "work_order": {"unknown": 1}}


def test_csv_has_one_row_per_line_queue_hour_and_the_total_in_local_time(loaded, tmp_path):
    out = tmp_path / "day.csv"
    code, _, err = run(["report", "daily", "--db-url", loaded, "--date", "2021-09-17", "--csv", str(out)])
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))
    scopes = [r["scope"] for r in rows]
    assert scopes == ["line"] * 4 + ["queue"] * 2 + ["hour"] * 24 + ["total"]
    assert {r["timezone"] for r in rows} == {"Asia/Shanghai"}
    hour10 = next(r for r in rows if r["scope"] == "hour" and r["key"].startswith("2021-09-17T10:"))
    assert hour10["start_local"] == "2021-09-17T10:00:00+08:00"
    first = rows[0]
    assert (first["key"], first["offered"], first["service_level"], first["p90_wait"]) == ("12320", "10", "0.9", "9.0")
    assert rows[-1]["calls"] == "18" and rows[-1]["service_level"] == "0.8125"
    assert number(3) not in out.read_text(encoding="utf-8")
    # the record export is in local time too, with its offset
    export = tmp_path / "calls.csv"
    code, _, err = run(["records", "export", "--csv", str(export), "--db-url", loaded, "--line", "12345",
                          "--since", "2021-09-17"])
    assert code == 0, err
    assert next(csv.DictReader(io.StringIO(export.read_text())))["arrived_at"] == "2021-09-17T00:00:00+08:00"


def test_html_report_is_self_contained_with_charts(loaded, tmp_path):
    out = tmp_path / "day.html"
    code, stdout, err = run(["report", "daily", "--db-url", loaded, "--date", "2021-09-17", "--html", str(out)])
    assert code == 0, err
    assert stdout == ""
    page = out.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and '<html lang="zh-CN">' in page
    assert page.count("<svg") == 3 and "<script" not in page and "http" not in page.replace(
        'xmlns="http://www.w3.org/2000/svg"', "")
    assert "12345 热线日报 2021-09-17" in page and "按小时" in page and "81.2%" in page
    code, _, err = run(["report", "weekly", "--db-url", loaded, "--date", "2021-09-17", "--html", str(out),
                        "--lang", "en"])
    assert code == 0, err
    page = out.read_text(encoding="utf-8")
    assert '<html lang="en">' in page and "weekly report 2021-09-13 – 2021-09-19" in page and "By day" in page


def test_records_show_is_a_timeline_with_masked_numbers(loaded):
    code, out, err = run(["records", "show", "u17", "--db-url", loaded, "--lang", "en"])
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("Call u17")
    texts = [line[21:] for line in lines[1:]]
    assert texts[0].startswith("arrived: dialed 12349, line 12349")
    assert "caller 139****0017 (masked)" in texts and number(17) not in out
    joined = [t.split(" 12345 综合受理")[0].split(" 未成年人")[0] for t in texts if "queue" in t]  # names: the table's
    assert joined == ["route: rule -, category -, action queue → general-12345",
                      "joined queue minors-protection",
                      "left queue minors-protection",
                      "joined queue general-12345", "answered in queue general-12345"]
    assert "unanswered (overflow / the queues gave up) after 2s" in out and "12345 综合受理" in out
    assert texts[-1].startswith("ended: answered")
    assert lines[1].startswith("2021-09-17 02:50:00")          # Shanghai time
    code, out, err = run(["records", "show", "u14", "--db-url", loaded])
    assert code == 0, err
    assert "工单 WO-20210917-0001 → subcenter-12366：signed，签收期限 2021-09-18 00:00" in out
    assert "转接（three_way）→ subcenter-12366：answered" in out
    code, out, err = run(["records", "show", "u01", "--db-url", loaded, "--json"])
    assert code == 0, err
    doc = json.loads(out)
    assert doc["call"]["arrived_at"] == "2021-09-17T00:10:00+08:00" and "caller_hash" not in doc["call"]
    assert [cb["status"] for cb in doc["callbacks"]] == ["done"] and number(50) not in out
    code, _, err = run(["records", "show", "nope", "--db-url", loaded, "--lang", "en"])
    assert code == 1 and "no call record with uniqueid nope" in err
    code, _, err = run(["records", "show", "u01", "--db-url", loaded, "--full", "--lang", "en"])
    assert code == 1 and "never stored in full" in err


@pytest.mark.postgres
def test_postgres_without_schema_says_what_to_run(pg_url):  # noqa: F811
    for args in READING_COMMANDS:
        code, _, err = run([*args, "--db-url", pg_url])
        assert code == 1, args
        assert "has no records schema" in err and "hotline db upgrade" in err and "Traceback" not in err
    code, out, err = run(["db", "upgrade", "--db-url", pg_url])
    assert code == 0, err
    code, out, err = run(["report", "daily", "--db-url", pg_url, "--date", "2021-09-17", "--lang", "en"])
    assert code == 0, err
    assert _total_cells(out)[:2] == ["0", "0"]
