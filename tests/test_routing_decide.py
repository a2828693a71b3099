"""Every number of the seed: its decision inside and outside its windows, hours, holidays and 调休."""
from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from routing.decide import decide, is_open, next_change
from routing.loader import load_table
from routing.model import Action, CallerHistory, Category, TransferKind

SH = ZoneInfo("Asia/Shanghai")
IN_TRANSITION = datetime(2021, 9, 10, 10, 0, tzinfo=SH)     # a Friday, working hours, inside the window
AFTER = datetime(2026, 11, 26, 10, 0, tzinfo=SH)            # today, a Thursday
NIGHT = datetime(2026, 11, 26, 3, 0, tzinfo=SH)
CANCELLED_TO_GENERAL = ["12396", "12336", "12312", "12301", "12300", "12356", "96119", "12322"]


@pytest.fixture(scope="module")
def table(routing_yaml):
    return load_table(routing_yaml)


@pytest.mark.parametrize("number", CANCELLED_TO_GENERAL)
def test_cancelled_line_inside_transition_announces_then_connects(table, number):
    route = decide(table, number, "13812345678", IN_TRANSITION)
    assert route.category is Category.CANCELLED
    assert route.action is Action.QUEUE and route.target == "general-12345"
    assert route.prompts == ("hotline/number-merged-into-12345",)
    assert route.line == number and "transition" in route.reason


@pytest.mark.parametrize("number", CANCELLED_TO_GENERAL)
def test_cancelled_line_after_transition_takes_the_admins_choice(table, number):
    route = decide(table, number, None, AFTER)
    assert route.action is Action.QUEUE and route.target == "general-12345"
    assert route.prompts == ("hotline/number-cancelled-dial-12345",)
    assert "after its transition" in route.reason


def test_transition_window_edges_are_whole_days(table):
    last_moment = datetime(2021, 10, 31, 23, 59, 59, tzinfo=SH)
    first_after = datetime(2021, 11, 1, 0, 0, tzinfo=SH)
    assert "inside" in decide(table, "12396", None, last_moment).reason
    assert "after" in decide(table, "12396", None, first_after).reason
    assert next_change(table.lines["12396"], IN_TRANSITION) == first_after


def test_before_any_rule_the_caller_still_reaches_12345_with_a_warning(table):
    route = decide(table, "12396", None, datetime(2021, 8, 1, 10, tzinfo=SH))
    assert route.action is Action.QUEUE and route.target == "general-12345"
    assert route.category is Category.UNKNOWN
    assert route.warnings and "next starts 2021-09-01" in route.warnings[0]


def test_12349_lands_in_minors_protection(table):
    inside = decide(table, "12349", None, IN_TRANSITION)
    after = decide(table, "12349", None, AFTER)
    assert inside.target == after.target == "minors-protection"
    assert after.prompts == ("hotline/minors-protection-now-12345",)
    assert "minors-protection" in after.tags


def test_12349_outside_minors_hours_falls_back_to_12345(table):
    route = decide(table, "12349", None, NIGHT)
    assert route.target == "general-12345"
    assert "minors-protection is closed" in route.reason


@pytest.mark.parametrize("number,tag", [("12318", "culture-market"), ("12317", "rural-revitalisation"),
                                        ("12367", "immigration")])
def test_dual_lines_go_straight_into_12345_tagged(table, number, tag):
    for at in (IN_TRANSITION, AFTER, NIGHT):
        route = decide(table, number, None, at)
        assert route.category is Category.DUAL
        assert (route.action, route.target, route.prompts) == (Action.QUEUE, "general-12345", ())
        assert route.tags == (tag,) and route.line == number


@pytest.mark.parametrize("number", ["12320", "12329"])
def test_expert_lines_reach_their_expert_queue_with_overflow(table, number):
    route = decide(table, number, None, AFTER)
    assert route.category is Category.EXPERT
    assert route.target == f"expert-{number}"
    assert [(o.after_seconds, o.to) for o in route.overflow] == [(90, "general-12345")]
    assert route.transfers[0].kind is TransferKind.ESCALATE


def test_12320_runs_its_menu_and_carries_the_health_tag(table):
    route = decide(table, "12320", None, AFTER)
    assert route.menu == "expert-12320" and route.tags == ("health",)


@pytest.mark.parametrize("number", ["12320", "12329"])
def test_expert_queue_closed_at_night_goes_to_12345_without_the_expert_menu(table, number):
    route = decide(table, number, None, NIGHT)
    assert route.target == "general-12345" and route.menu is None
    assert f"expert-{number} is closed" in route.reason


@pytest.mark.parametrize("number", ["12348", "12333"])
def test_retained_seat_lines_offer_a_warm_transfer_to_their_trunk(table, number):
    route = decide(table, number, None, NIGHT)
    assert route.category is Category.RETAINED_SEAT and route.target == "general-12345"
    (transfer,) = route.transfers
    assert transfer.kind is TransferKind.ATTENDED and transfer.trunk == f"seat-{number}"
    assert transfer.no_answer_seconds == 30 and transfer.on_no_answer == "return_to_agent"


@pytest.mark.parametrize("number", ["12360", "12366", "12305"])
def test_subcenters_are_answered_by_12345_with_three_way_or_work_order(table, number):
    route = decide(table, number, None, AFTER)
    assert route.category is Category.SUBCENTER and route.target == "general-12345"
    assert route.menu == "subcenter"
    kinds = {t.kind: t for t in route.transfers}
    assert kinds[TransferKind.THREE_WAY].trunk == f"subcenter-{number}"
    assert kinds[TransferKind.WORK_ORDER].department


@pytest.mark.parametrize("number", ["110", "119", "120", "122"])
@pytest.mark.parametrize("at", [IN_TRANSITION, NIGHT, datetime(2021, 10, 3, 3, tzinfo=SH)])
def test_emergency_linkage_is_never_queued_nor_behind_hours(table, number, at):
    route = decide(table, number, "13812345678", at, CallerHistory(calls_in_window=500))
    assert route.category is Category.EMERGENCY_LINKAGE
    assert (route.action, route.target) == (Action.DIAL, f"emergency-{number}")
    assert route.prompts == () and route.menu is None and route.overflow == ()


def test_12345_general_queue_is_open_every_hour(table):
    for hour in range(0, 24, 3):
        route = decide(table, "12345", None, datetime(2021, 10, 2, hour, tzinfo=SH))
        assert (route.action, route.target, route.menu) == (Action.QUEUE, "general-12345", "main")


def test_unknown_number_gets_general_handling_and_a_warning(table):
    route = decide(table, "55555", None, AFTER)
    assert (route.action, route.target, route.line) == (Action.QUEUE, "general-12345", "12345")
    assert route.category is Category.UNKNOWN and route.warnings


def test_carrier_prefixes_and_separators_are_normalised(table):
    assert decide(table, "+86 12320", None, AFTER).line == "12320"
    assert decide(table, "123-20", None, AFTER).line == "12320"


def test_naive_instant_is_read_in_shanghai_time(table):
    assert decide(table, "12320", None, datetime(2026, 11, 26, 10, 0)).target == "expert-12320"


def test_utc_instant_is_converted(table):
    # 02:00 UTC is 10:00 in Shanghai: the expert seat is open.
    at = datetime(2026, 11, 26, 2, 0, tzinfo=ZoneInfo("UTC"))
    assert decide(table, "12320", None, at).target == "expert-12320"


class TestCalendar:
    def test_national_day_is_a_holiday(self, table):
        # 2021-10-04 is a Monday inside 国庆节: office-hours queues are closed.
        assert not is_open(table, "office-hours", datetime(2021, 10, 4, 10, tzinfo=SH))
        assert decide(table, "12320", None, datetime(2021, 10, 4, 10, tzinfo=SH)).target == "general-12345"

    def test_adjusted_working_saturday_opens_office_hours(self, table):
        # 2021-09-18 (Saturday) and 2021-10-09 (Saturday) were working days (调休).
        for day in (datetime(2021, 9, 18, 10, tzinfo=SH), datetime(2021, 10, 9, 10, tzinfo=SH)):
            assert day.weekday() == 5
            assert is_open(table, "office-hours", day)
            assert decide(table, "12320", None, day).target == "expert-12320"

    def test_ordinary_saturday_is_a_rest_day(self, table):
        saturday = datetime(2021, 9, 11, 10, tzinfo=SH)
        assert not is_open(table, "office-hours", saturday)
        assert is_open(table, "extended-hours", saturday)  # rest-day hours 09:00-17:00
        assert not is_open(table, "extended-hours", saturday.replace(hour=18))

    def test_lunch_break_and_span_edges(self, table):
        day = datetime(2026, 11, 26, tzinfo=SH)
        assert is_open(table, "office-hours", day.replace(hour=8))
        assert not is_open(table, "office-hours", day.replace(hour=12))
        assert not is_open(table, "office-hours", day.replace(hour=14, minute=29))
        assert is_open(table, "office-hours", day.replace(hour=14, minute=30))
        assert not is_open(table, "office-hours", day.replace(hour=18))

    def test_spring_festival_2026_and_its_working_saturday(self, table):
        calendar = table.calendars["cn-mainland"]
        festival = [datetime(2026, 2, 15) + timedelta(days=i) for i in range(9)]
        assert all(not calendar.is_working_day(d.date()) for d in festival)
        assert calendar.is_working_day(datetime(2026, 2, 14).date())


class TestAbuse:
    def test_rate_limit_sends_to_review_queue_with_warning(self, table):
        route = decide(table, "12345", "13812345678", AFTER, CallerHistory(calls_in_window=21))
        assert route.category is Category.ABUSE and route.target == "abuse-review"
        assert route.prompts == ("hotline/abuse-warning",) and "21 calls" in route.reason

    def test_at_the_limit_is_still_served_normally(self, table):
        route = decide(table, "12345", "13812345678", AFTER, CallerHistory(calls_in_window=20))
        assert route.category is Category.UNIFIED

    def test_no_history_means_no_rate_limit(self, table):
        assert decide(table, "12345", "13812345678", AFTER, None).category is Category.UNIFIED


def test_ivr_choice_to_a_closed_seat_follows_its_closed_handling(table):
    from routing.decide import to_queue
    route = decide(table, "12345", None, NIGHT)
    moved = to_queue(table, route, "business-environment", NIGHT, "menu main: 3")
    assert (moved.action, moved.target) == (Action.CALLBACK, "business-environment")
    assert moved.prompts == ("hotline/business-seat-closed",) and moved.rule_id == route.rule_id
    open_ = to_queue(table, route, "business-environment", AFTER, "menu main: 3")
    assert (open_.action, open_.target, open_.prompts) == (Action.QUEUE, "business-environment", ())
