"""The daily report on a known data set, searches by keyed hash, and exports that never hold a full number."""
from __future__ import annotations

import csv
import io
import json
from datetime import date, datetime, timedelta

import pytest
from click.testing import CliRunner

from records import reports
from records.db import make_engine
from records.recorder import CallRecorder
from records.types import CallRecord, TransferRecord
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
    rec = CallRecorder(db_url, tmp_path / "spool", KEY, auto_upgrade=True)
    try:
        for i, (line, outcome, wait) in enumerate(KNOWN):
            rec.record_call(CallRecord(uniqueid=f"u{i:02d}", dialed=line, line=line, caller=number(i),
                                       arrived_at=START + timedelta(minutes=10 * i), action="queue",
                                       target="general-12345", outcome=outcome, wait_seconds=wait))
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
        assert rec.flush() == len(KNOWN) + 2 + 4
    finally:
        rec.close()
    return db_url


def test_daily_report_figures(loaded):
    engine = make_engine(loaded)
    try:
        result = {r.line: r for r in reports.daily(engine, DAY, SH)}
    finally:
        engine.dispose()
    assert sorted(result) == ["12320", "12345", "12349", "12366"]
    r = result["12345"]
    assert (r.calls, r.answered, r.answered_share, r.waits) == (4, 3, 0.75, 4)
    assert r.average_wait == pytest.approx(18.75) and r.p90_wait == 40
    assert r.outcomes == {"abandoned": 1, "answered": 3}
    assert (r.abandoned, r.queue_gave_up) == (1, 0)
    assert r.transfers == {"attended": {"answered": 1, "returned": 1}}
    r = result["12320"]
    assert (r.calls, r.answered, r.answered_share) == (10, 9, 0.9)
    assert r.average_wait == pytest.approx(5.5) and r.p90_wait == 9
    assert r.transfers == {}
    r = result["12366"]
    assert (r.calls, r.answered, r.answered_share, r.waits, r.average_wait, r.p90_wait) == (2, 1, 0.5, 1, 3, 3)
    assert r.transfers == {"three_way": {"answered": 1}, "work_order": {"unknown": 1}}
    r = result["12349"]
    assert (r.calls, r.answered, r.abandoned, r.queue_gave_up) == (2, 1, 0, 1)
    text = reports.format_daily(list(result.values()), DAY)
    assert "abandoned" in text and "gave up" in text
    row = next(line for line in text.splitlines() if line.startswith("12349"))
    assert row.split()[:5] == ["12349", "2", "50.0%", "0", "1"]


def test_percentile_is_nearest_rank():
    assert reports.percentile([], 0.9) is None
    assert reports.percentile([7], 0.9) == 7
    assert reports.percentile(list(range(1, 11)), 0.9) == 9
    assert reports.percentile(list(range(1, 12)), 0.9) == 10     # ceil(9.9) = 10th of 11


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
    by_line = {r["line"]: r for r in doc["lines"]}
    assert by_line["12345"]["p90_wait"] == 40 and by_line["12320"]["answered_share"] == 0.9
    code, out, _ = run(["report", "daily", "--db-url", loaded, "--date", "2021-09-17"])
    assert code == 0
    assert "12345         4    75.0%         1       0     18.8s     40.0s  attended: answered 1, returned 1" in out

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


def test_an_empty_day_is_a_report_with_zeros(tmp_path):
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    code, out, err = run(["report", "daily", "--db-url", url, "--date", "2021-09-17"])
    assert code == 0, err
    total = next(line for line in out.splitlines() if line.startswith("all"))
    assert total.split()[:5] == ["all", "0", "0.0%", "0", "0"]
    code, out, err = run(["report", "daily", "--db-url", url, "--date", "2021-09-17", "--json"])
    assert code == 0, err
    doc = json.loads(out)
    assert doc["lines"] == []
    assert (doc["total"]["calls"], doc["total"]["answered"], doc["total"]["answered_share"]) == (0, 0, 0.0)


def test_the_total_line_adds_up(loaded):
    code, out, err = run(["report", "daily", "--db-url", loaded, "--date", "2021-09-17", "--json"])
    assert code == 0, err
    total = json.loads(out)["total"]
    assert (total["calls"], total["answered"], total["abandoned"], total["queue_gave_up"]) == (18, 14, 2, 1)
    assert total["transfers"] == {"attended": {"answered": 1, "returned": 1}, "three_way": {"answered": 1},
                                  "work_order": {"unknown": 1}}


@pytest.mark.postgres
def test_postgres_without_schema_says_what_to_run(pg_url):  # noqa: F811
    for args in READING_COMMANDS:
        code, _, err = run([*args, "--db-url", pg_url])
        assert code == 1, args
        assert "has no records schema" in err and "hotline db upgrade" in err and "Traceback" not in err
    code, out, err = run(["db", "upgrade", "--db-url", pg_url])
    assert code == 0, err
    code, out, err = run(["report", "daily", "--db-url", pg_url, "--date", "2021-09-17"])
    assert code == 0, err
    assert out.splitlines()[-2].split()[:2] == ["all", "0"]
