"""The calendar running out (issue 11, item 6): `routes check` warns ahead, `routes explain` names the day kind,
the hours that decided and the next opening; the engine's gauge of days left."""
from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path
from types import SimpleNamespace
from zoneinfo import ZoneInfo

from click.testing import CliRunner
from prometheus_client import CollectorRegistry, generate_latest

from routing.loader import load_table, load_table_with_warnings
from scripts.cli_routes import routes
from scripts.engine_metrics import CalendarCollector

ROOT = Path(__file__).resolve().parents[1]
TABLE = ROOT / "conf" / "routing.yaml"
TZ = ZoneInfo("Asia/Shanghai")


def calendar_warnings(text: str | None = None, *, now: datetime, days: int = 60) -> list[str]:
    result = load_table_with_warnings(TABLE, text=text, now=now, calendar_days=days)
    return [str(w) for w in result.warnings if "calendar 'cn-mainland' has holidays" in str(w)]


def test_the_shipped_calendar_warns_from_60_days_before_its_end():
    assert calendar_warnings(now=datetime(2026, 10, 31, 12, tzinfo=TZ)) == []          # 61 days left
    [warning] = calendar_warnings(now=datetime(2026, 12, 1, 10, tzinfo=TZ))
    assert "conf/routing.yaml:22:" in warning and "only until 2026-12-31 (30 days from today, 2026-12-01" in warning
    assert "do not guess it" in warning
    assert calendar_warnings(now=datetime(2026, 12, 1, 10, tzinfo=TZ), days=30) == []   # N is configurable
    [past] = calendar_warnings(now=datetime(2027, 2, 1, tzinfo=TZ))
    assert "ran out 32 days ago" in past


def test_covers_until_says_how_far_the_data_goes_and_unused_calendars_do_not_warn():
    text = TABLE.read_text(encoding="utf-8")
    later = text.replace("  cn-mainland:\n    holidays:", "  cn-mainland:\n    covers_until: 2027-06-30\n    holidays:")
    assert later != text
    assert calendar_warnings(later, now=datetime(2026, 12, 1, tzinfo=TZ)) == []
    [warning] = calendar_warnings(later, now=datetime(2027, 6, 1, tzinfo=TZ))
    assert "until 2027-06-30" in warning
    unused = text.replace("calendar: cn-mainland", "calendar: other").replace(
        "calendars:\n", "calendars:\n  other: {holidays: [{name: x, from: 2030-01-01}]}\n", 1)
    result = load_table_with_warnings(TABLE, text=unused, now=datetime(2026, 12, 1, tzinfo=TZ), calendar_days=60)
    assert not any("has holidays and adjusted" in str(w) and "'cn-mainland'" in str(w) for w in result.warnings)


def test_routes_check_warns_today_with_the_env_setting(monkeypatch):
    runner = CliRunner()
    out = runner.invoke(routes, ["check", "--no-dns", "--calendar-days", "100000"])
    assert out.exit_code == 0 and "calendar 'cn-mainland' has holidays and adjusted working days only until " \
        "2026-12-31" in out.output
    monkeypatch.setenv("HOTLINE_CALENDAR_WARN_DAYS", "0")
    quiet = runner.invoke(routes, ["check", "--no-dns"])
    today = datetime.now(TZ).date()
    assert ("calendar 'cn-mainland'" in quiet.output) == (today > date(2026, 12, 31))


def explain(*args: str) -> str:
    out = CliRunner().invoke(routes, ["explain", *args])
    assert out.exit_code == 0, out.output
    return out.output


def test_explain_names_the_holiday_the_hours_and_the_next_opening():
    holiday = explain("12320", "--at", "2026-10-01T10:00")
    assert "hours:     12320 卫生健康专家座席 (health expert seat) (expert-12320) closed: public holiday 国庆节 " \
           "(calendar cn-mainland), rest-day hours closed all day (schedule office-hours, Asia/Shanghai)" in holiday
    assert "opens:     2026-10-08 08:00 (Asia/Shanghai)" in holiday
    adjusted = explain("12320", "--at", "2026-10-10T09:00")        # a Saturday, 调休
    assert "open: adjusted working day (调休)" in adjusted and "working-day hours 08:00-12:00, 14:30-18:00" in adjusted
    lunch = explain("12329", "--at", "2026-12-02T12:30")
    assert "closed: weekday" in lunch and "opens:     2026-12-02 14:30" in lunch
    beyond = explain("12320", "--at", "2027-10-01T10:00")           # no 2027 data: said, never invented
    assert "past the calendar's data (it ends 2026-12-31)" in beyond and "open: weekday" in beyond
    data = json.loads(explain("12320", "--at", "2026-10-01T10:00", "--json"))
    assert data["hours"] == [{"queue": "expert-12320", "schedule": "office-hours", "calendar": "cn-mainland",
                              "day": "public holiday 国庆节", "working_day": False, "beyond_calendar_data": False,
                              "spans": "closed all day", "open": False, "next_open": "2026-10-08T08:00:00+08:00"}]


def test_the_engine_gauge_counts_days_left_from_the_table_in_force():
    table = load_table(TABLE)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(CalendarCollector(SimpleNamespace(current=SimpleNamespace(table=table)),
                                        clock=lambda: datetime(2026, 11, 30, 20, tzinfo=ZoneInfo("UTC"))))
    # 20:00 UTC on 30 Nov is 1 Dec in Hainan: 30 days to 2026-12-31
    assert 'hotline_calendar_days_left{calendar="cn-mainland"} 30.0' in generate_latest(registry).decode()


def test_explain_and_work_orders_say_when_they_count_past_the_data(tmp_path):
    night = explain("12320", "--at", "2026-12-31T19:00")
    assert "opens:     2027-01-01 08:00 (Asia/Shanghai) (past the calendar's data: holidays unknown)" in night
    from scripts.cli_records import workorders_group
    runner = CliRunner()
    db = f"sqlite:///{tmp_path / 'r.sqlite3'}"
    args = ["dispatch", "--line", "12366", "--category", "subcenter", "--target", "subcenter-12366", "--db-url", db]
    inside = runner.invoke(workorders_group, args + ["--at", "2026-12-01T10:00"])
    assert inside.exit_code == 0 and "sign by 2026-12-02 10:00" in inside.output and "note:" not in inside.output
    past = runner.invoke(workorders_group, args + ["--at", "2026-12-31T10:00"])
    assert past.exit_code == 0 and "sign by 2027-01-01 10:00" in past.output
    assert "note: the sign deadline lies past the holiday data of calendar cn-mainland (it ends 2026-12-31)" \
        in past.output
