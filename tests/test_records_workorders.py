"""Work orders: the sign deadline on the routing table's calendar (holidays, 调休 working days), numbering,
the dispatched -> signed -> closed life cycle and the overdue query, on SQLite and PostgreSQL."""
from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from records.db import make_engine, upgrade
from records.workorders import WorkOrderError, deadline, dispatch, get, list_orders, sign
from records.workorders import close as close_order
from routing.loader import load_table
from routing.model import Calendar
from tests.db_fixtures import db_url  # noqa: F401

ROOT = Path(__file__).resolve().parents[1]
TABLE = load_table(ROOT / "conf" / "routing.yaml")
CAL = TABLE.calendars["cn-mainland"]
SH = TABLE.timezone


def at(y, mo, d, h=0, mi=0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=SH)


def test_the_shipped_calendar_has_the_2021_facts_these_tests_rely_on():
    assert TABLE.timezone == ZoneInfo("Asia/Shanghai")
    assert CAL.is_working_day(date(2021, 9, 18))        # Saturday, 调休 for the Mid-Autumn festival
    assert not CAL.is_working_day(date(2021, 9, 20))    # Mid-Autumn holiday (Monday)
    assert CAL.is_working_day(date(2021, 9, 26))        # Sunday, 调休 for National Day
    assert not CAL.is_working_day(date(2021, 10, 4))    # National Day holiday (Monday)
    assert CAL.is_working_day(date(2021, 10, 9))        # Saturday, 调休 for National Day


@pytest.mark.parametrize("dispatched, days, expected", [
    # Friday before a 调休 Saturday: that Saturday counts.
    (at(2021, 9, 17, 17), 1, at(2021, 9, 18, 17)),
    # Two days from that Friday: Saturday, then the Mid-Autumn holiday 19-21, then Wednesday.
    (at(2021, 9, 17, 17), 2, at(2021, 9, 22, 17)),
    # Eve of the National Day week: 10-01..07 skipped, Friday 10-08 is the next working day.
    (at(2021, 9, 30, 17), 1, at(2021, 10, 8, 17)),
    # Friday 10-08: Saturday 10-09 is an adjusted working day.
    (at(2021, 10, 8, 17), 1, at(2021, 10, 9, 17)),
    # Dispatched on a rest Saturday: the clock starts at the 调休 Sunday 09-26 and runs through it.
    (at(2021, 9, 25, 10), 1, at(2021, 9, 27, 0)),
    # Dispatched during the holiday: nothing runs until 10-08.
    (at(2021, 10, 3, 9), 1, at(2021, 10, 9, 0)),
    # An ordinary week.
    (at(2021, 11, 3, 9, 30), 1, at(2021, 11, 4, 9, 30)),
    (at(2021, 11, 5, 9, 30), 1, at(2021, 11, 8, 9, 30)),    # Friday -> Monday
    (at(2021, 11, 5, 9, 30), 0, at(2021, 11, 5, 9, 30)),
])
def test_deadline_counts_working_days_on_the_table_calendar(dispatched, days, expected):
    assert deadline(dispatched, CAL, days, SH) == expected


def test_deadline_uses_the_table_zone_for_day_boundaries():
    # 2021-09-17 09:30 UTC is 17:30 in Shanghai: Friday evening there.
    utc = datetime(2021, 9, 17, 9, 30, tzinfo=ZoneInfo("UTC"))
    assert deadline(utc, CAL, 1, SH) == at(2021, 9, 18, 17, 30)


def test_deadline_refuses_naive_time_and_a_calendar_without_working_days():
    with pytest.raises(ValueError, match="timezone-aware"):
        deadline(datetime(2021, 9, 17, 17), CAL)
    never = Calendar(id="never", working_days=frozenset(),
                     holidays={date(2021, 1, 1) + timedelta(days=i): "x" for i in range(4000)})
    with pytest.raises(ValueError, match="no working day"):
        deadline(at(2021, 1, 1), never, 1, SH)


@settings(max_examples=200, deadline=None)
@given(st.datetimes(min_value=datetime(2021, 1, 1), max_value=datetime(2023, 12, 1)), st.integers(0, 5))
def test_deadline_properties(local, days):
    dispatched = local.replace(tzinfo=SH)
    due = deadline(dispatched, CAL, days, SH)
    assert due >= dispatched
    assert due - dispatched >= timedelta(days=days)
    if days:
        # the deadline falls on a working day, or at the midnight that ends one
        assert CAL.is_working_day(due.date()) or CAL.is_working_day(due.date() - timedelta(days=1))
    # monotone in the number of days
    assert deadline(dispatched, CAL, days + 1, SH) > due


def test_work_order_life_cycle_and_overdue(db_url):  # noqa: F811
    engine = make_engine(db_url)
    upgrade(engine)
    try:
        friday = at(2021, 9, 17, 17)
        first = dispatch(engine, line="12366", category="subcenter", target="subcenter-12366",
                         department="tax", at=friday, calendar=CAL, tz=SH, uniqueid="1631869205.17",
                         dispatched_by="agent-07", summary="invoice question")
        second = dispatch(engine, line="12360", category="subcenter", target="subcenter-12360",
                          at=friday + timedelta(minutes=5), calendar=CAL, tz=SH)
        third = dispatch(engine, line="12305", category="subcenter", target="subcenter-12305",
                         at=at(2021, 9, 18, 8), calendar=CAL, tz=SH)
        assert (first.number, second.number, third.number) == ("WO-20210917-0001", "WO-20210917-0002",
                                                               "WO-20210918-0001")
        assert first.status.value == "dispatched"
        assert first.sign_deadline == at(2021, 9, 18, 17)
        assert get(engine, first.number).dispatched_at == friday

        saturday_noon, saturday_night = at(2021, 9, 18, 12), at(2021, 9, 18, 20)
        assert [o.number for o in list_orders(engine, overdue_at=saturday_noon)] == []
        assert [o.number for o in list_orders(engine, overdue_at=saturday_night)] == [first.number, second.number]

        sign(engine, first.number, at=at(2021, 9, 18, 16), by="tax-desk")
        close_order(engine, second.number, at=at(2021, 9, 18, 18), by="12360-desk")   # closed late
        overdue_later = [o.number for o in list_orders(engine, overdue_at=saturday_night)]
        assert overdue_later == []
        # As of Saturday 17:30 the second one was overdue (closed only at 18:00): history is answerable.
        assert [o.number for o in list_orders(engine, overdue_at=at(2021, 9, 18, 17, 30))] == [second.number]
        assert get(engine, second.number).is_overdue(at(2021, 9, 18, 17, 30))
        assert not get(engine, first.number).is_overdue(saturday_night)

        signed = get(engine, first.number)
        assert signed.status.value == "signed" and signed.signed_by == "tax-desk"
        with pytest.raises(WorkOrderError, match="is signed; cannot change it to signed"):
            sign(engine, first.number, at=saturday_night, by="x")
        closed = close_order(engine, first.number, at=at(2021, 9, 22, 10), by="tax-desk")
        assert closed.status.value == "closed" and closed.closed_at == at(2021, 9, 22, 10)
        with pytest.raises(WorkOrderError, match="is closed"):
            close_order(engine, first.number, at=saturday_night, by="x")
        with pytest.raises(WorkOrderError, match="no work order WO-20990101-0001"):
            sign(engine, "WO-20990101-0001", at=saturday_night, by="x")
        assert [o.number for o in list_orders(engine, status="dispatched")] == [third.number]
    finally:
        engine.dispose()


def test_cli_db_upgrade_and_work_orders(db_url):  # noqa: F811
    from click.testing import CliRunner

    from scripts.hotline import cli

    def run(*args: str):
        result = CliRunner().invoke(cli, [*args, "--db-url", db_url], catch_exceptions=False)
        return result.exit_code, result.stdout, result.stderr

    code, out, err = run("db", "current")
    assert code == 0 and "(none: run hotline db upgrade)" in out, err
    code, out, err = run("db", "upgrade")
    from tests.test_records_models import head_revision

    assert code == 0 and f"schema at revision {head_revision()}" in out, err
    code, out, err = run("workorders", "dispatch", "--line", "12366", "--category", "subcenter",
                         "--target", "subcenter-12366", "--by", "agent-07", "--at", "2021-09-30T17:00")
    assert code == 0, err
    assert out.startswith("WO-20210930-0001  dispatched") and "sign by 2021-10-08 17:00" in out
    code, out, _ = run("workorders", "list", "--overdue", "--at", "2021-10-05T12:00")
    assert out == ""                                  # the holiday does not count
    code, out, _ = run("workorders", "list", "--overdue", "--at", "2021-10-08T17:01")
    assert "WO-20210930-0001" in out and "OVERDUE" in out
    code, out, err = run("workorders", "sign", "WO-20210930-0001", "--by", "12366-desk", "--at", "2021-10-08T18:00")
    assert code == 0 and "signed" in out, err
    code, out, err = run("workorders", "close", "WO-20210930-0001", "--by", "12366-desk")
    assert code == 0 and "closed" in out, err
    code, _, err = run("workorders", "sign", "WO-20210930-0001", "--by", "x")
    assert code == 1 and "is closed; cannot change it to signed" in err
    code, _, err = run("workorders", "list", "--at", "yesterday")
    assert code == 2 and "is not an ISO-8601" in err
