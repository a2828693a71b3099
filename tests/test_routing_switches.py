"""Manual override switches: validated with file:line, applied by decide() from the set of active names (pure),
never to emergency linkage; `switches_changing` says which switches change a call (routes explain)."""
from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from routing.decide import decide, switches_changing, to_queue
from routing.loader import TableError, load_table
from routing.model import Action, TransferKind

SH = ZoneInfo("Asia/Shanghai")
ROOT = Path(__file__).resolve().parents[1]
WORKDAY_10 = datetime(2026, 12, 1, 10, 0, tzinfo=SH)      # a Tuesday: the expert seats are open
NIGHT = datetime(2026, 12, 1, 23, 0, tzinfo=SH)


@pytest.fixture(scope="module")
def table():
    return load_table(ROOT / "conf" / "routing.yaml")


def test_the_shipped_switches_load_with_their_names(table):
    assert set(table.switches) == {"typhoon", "subcenter-12366-down", "force-night"}
    typhoon = table.switches["typhoon"]
    assert (typhoon.name("zh"), typhoon.name("en"), typhoon.code) == ("台风停工公告", "Typhoon closure announcement", "1")
    assert typhoon.source_line > 0


def test_no_switch_on_changes_nothing(table):
    assert decide(table, "12320", None, WORKDAY_10, switches=()) == decide(table, "12320", None, WORKDAY_10)
    assert decide(table, "12320", None, WORKDAY_10).switches == ()


def test_typhoon_announces_then_12345_for_every_line(table):
    for number in ("12345", "12320", "12349", "12366", "99999"):
        route = decide(table, number, None, WORKDAY_10, switches={"typhoon"})
        assert route.action is Action.QUEUE and route.target == "general-12345", number
        assert route.prompts[0] == "hotline/typhoon-notice", number
        assert route.menu is None and route.switches == ("typhoon",)
        assert "switch typhoon is on" in route.reason


@pytest.mark.parametrize("number", ["110", "119", "120", "122"])
def test_emergency_lines_are_never_touched_by_any_switch(table, number):
    plain = decide(table, number, None, NIGHT)
    every = decide(table, number, None, NIGHT, switches=set(table.switches))
    assert every == plain and every.action is Action.DIAL and every.switches == ()


def test_subcenter_down_leaves_only_work_orders_on_its_line(table):
    down = decide(table, "12366", None, WORKDAY_10, switches={"subcenter-12366-down"})
    assert [t.kind for t in down.transfers] == [TransferKind.WORK_ORDER]
    assert down.target == "general-12345" and down.menu == "subcenter"       # the call itself is unchanged
    other = decide(table, "12360", None, WORKDAY_10, switches={"subcenter-12366-down"})
    assert TransferKind.THREE_WAY in [t.kind for t in other.transfers] and other.switches == ()


def test_force_night_closes_the_expert_seat_in_office_hours(table):
    open_ = decide(table, "12320", None, WORKDAY_10)
    assert open_.target == "expert-12320"
    night = decide(table, "12320", None, WORKDAY_10, switches={"force-night"})
    assert night.target == "general-12345" and "closed" in night.reason     # its when_closed
    business = decide(table, "12345", None, WORKDAY_10, switches={"force-night"})
    assert business.target == "general-12345"                               # 24/7 stays open
    # an IVR choice into a seat during night mode meets the closed seat too
    moved = to_queue(table, business, "business-environment", WORKDAY_10, "menu main 3")
    assert moved.action is Action.CALLBACK


def test_an_abusive_caller_hears_the_announcement_but_stays_in_review(table):
    from routing.model import CallerHistory
    route = decide(table, "12345", "13800000000", WORKDAY_10, CallerHistory(99), switches={"typhoon"})
    assert route.target == "abuse-review" and route.prompts[0] == "hotline/typhoon-notice"


def test_unknown_switch_names_are_ignored(table):
    assert decide(table, "12345", None, WORKDAY_10, switches={"no-such"}) == decide(table, "12345", None, WORKDAY_10)


def test_switches_changing_names_the_ones_that_matter(table):
    changing = switches_changing(table, "12320", None, WORKDAY_10)
    assert set(changing) == {"typhoon", "force-night"}
    assert changing["force-night"].target == "general-12345"
    assert switches_changing(table, "110", None, WORKDAY_10) == {}
    assert "subcenter-12366-down" in switches_changing(table, "12366", None, WORKDAY_10)
    # with typhoon on, flipping it off is what changes the call
    assert "typhoon" in switches_changing(table, "12345", None, WORKDAY_10, active={"typhoon"})


BASE = """\
version: 1
timezone: Asia/Shanghai
general_queue: general
queues:
  general: {name: general}
trunks:
  e110: {name: police, kind: emergency, host: 192.0.2.1, caller_id: {identity: pai, withheld: send}}
lines:
  "12345":
    service: unified
    seed: s
    rules:
      - {category: unified, queue: general}
  "110":
    service: police
    seed: s
    rules:
      - {category: emergency_linkage, trunk: e110}
switches:
"""


def problems(switches: str) -> list[str]:
    with pytest.raises(TableError) as info:
        load_table("t.yaml", text=BASE + switches)
    return [str(p) for p in info.value.problems]


def test_a_switch_on_an_emergency_line_is_refused_with_its_line():
    found = problems("""\
  bad:
    name: {zh: 坏, en: bad}
    code: 1
    lines: ["110"]
    prompts: [hotline/x]
""")
    assert found == ["t.yaml:23:13: line 110 is emergency linkage: no switch may touch it (dialed at once, always)"]


def test_unknown_line_and_queue_duplicate_code_and_empty_switch_are_each_reported():
    found = "\n".join(problems("""\
  one:
    name: {zh: 一, en: one}
    code: 1
    lines: ["12399"]
    queue: nowhere
  two:
    name: {zh: 二, en: two}
    code: 1
    closed: true
  three:
    name: {zh: 三, en: three}
    code: 3
  four:
    name: {zh: 四, en: four}
    code: 4
    pin: "1234"
    closed: true
"""))
    assert "t.yaml:23:13: line 12399 is not in the table" in found
    assert "t.yaml:24:12: queue 'nowhere' is not defined (known: general)" in found
    assert "t.yaml:27:11: code 1 is already used by switch 'one'" in found
    assert "t.yaml:30:5: switches.three: a switch needs at least one of prompts" in found
    assert "t.yaml:33:5: switches.four: 'pin' does not belong in YAML" in found


def test_work_orders_only_needs_lines_with_a_work_order():
    found = "\n".join(problems("""\
  wo:
    name: {zh: 工单, en: work orders}
    code: 5
    lines: ["12345"]
    work_orders_only: true
"""))
    assert "t.yaml:23:13: line 12345 has no work_order transfer" in found
