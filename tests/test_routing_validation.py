"""Every class of validation error, with the line it names; warnings; nothing half-loaded."""
from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from routing.decide import decide
from routing.loader import TableError, load_table, load_table_with_warnings
from routing.model import Category

SH = ZoneInfo("Asia/Shanghai")

BASE = ("""\
    version: 1
    timezone: Asia/Shanghai
    general_queue: general
    calendars:
      cn:
        holidays:
          - {name: 国庆节, from: 2021-10-01, to: 2021-10-07}
        working_days: [2021-10-09]
    schedules:
      office:
        calendar: cn
        workday: ["08:00-18:00"]
    queues:
      general:
        name: general
      expert:
        name: expert
        schedule: office
        overflow: {after_seconds: 60, to: general}
    trunks:
      seat:
        name: seat
        kind: retained_seat
        host: 192.0.2.9
    lines:
      "12345":
        service: unified
        seed: test
        rules:
          - {category: unified, queue: general}
      "12320":
        service: expert
        seed: test
        rules:
          - {category: expert, queue: expert, from: 2021-09-01}
      "12348":
        service: retained
        seed: test
        rules:
          - category: retained_seat
            queue: general
            transfers: [{kind: attended, trunk: seat}]
    """)


BASE = BASE[:BASE.rindex("\n") + 1]  # drop the closing quote's indentation


def extra_line(number: str, rule: str) -> str:
    return f'      "{number}":\n        service: x\n        seed: t\n        rules:\n          - {rule}\n'


def col_of(text: str, needle: str) -> int:
    return next(line.index(needle) + 1 for line in text.splitlines() if needle in line)


def problems(text: str, now: datetime | None = None) -> list[str]:
    with pytest.raises(TableError) as info:
        load_table("t.yaml", text=text, now=now)
    return [str(p) for p in info.value.problems]


def line_of(text: str, needle: str, occurrence: int = 1) -> int:
    count = 0
    for number, line in enumerate(text.splitlines(), 1):
        if needle in line:
            count += 1
            if count == occurrence:
                return number
    raise AssertionError(needle)


def test_base_is_valid():
    table = load_table("t.yaml", text=BASE)
    assert set(table.lines) == {"12345", "12320", "12348"}


def test_unknown_key_is_an_error_at_its_line():
    text = BASE.replace("        name: expert\n", "        name: expert\n        colour: blue\n")
    assert problems(text) == [f"t.yaml:{line_of(text, 'colour')}:9: unknown key 'colour'"]


def test_wrong_type_names_the_value():
    text = BASE.replace("after_seconds: 60", "after_seconds: soon")
    (problem,) = problems(text)
    assert problem.startswith(f"t.yaml:{line_of(text, 'soon')}:")
    assert "overflow.after_seconds" in problem and "integer" in problem


def test_missing_required_key():
    text = BASE.replace("        seed: test\n", "", 1)
    (problem,) = problems(text)
    assert problem.startswith(f"t.yaml:{line_of(text, '12345') + 1}:") and "missing required key 'seed'" in problem


def test_undefined_queue_and_trunk_references():
    text = BASE.replace("to: general}", "to: nowhere}").replace("trunk: seat}", "trunk: ghost}")
    found = problems(text)
    assert f"t.yaml:{line_of(text, 'nowhere')}:{col_of(text, 'nowhere')}: queue 'nowhere' is not defined (known: expert, general)" in found
    assert any(p.startswith(f"t.yaml:{line_of(text, 'ghost')}:") and "trunk 'ghost' is not defined" in p
               for p in found)


def test_number_listed_twice():
    text = BASE + extra_line("12320", "{category: dual, queue: general}")
    found = problems(text)
    first, second = line_of(text, '"12320":'), line_of(text, '"12320":', 2)
    assert f"t.yaml:{second}:7: '12320' is given twice in this mapping (first at line {first})" in found


def test_overlapping_windows_for_one_number():
    text = BASE.replace("          - {category: expert, queue: expert, from: 2021-09-01}\n",
                        "          - {category: expert, queue: expert, from: 2021-09-01}\n"
                        "          - {category: dual, queue: general, from: 2022-01-01}\n")
    (problem,) = problems(text)
    assert problem.startswith(f"t.yaml:{line_of(text, 'from: 2022-01-01')}:") and "overlaps rule 1" in problem


def test_adjacent_windows_do_not_overlap():
    text = BASE.replace("          - {category: expert, queue: expert, from: 2021-09-01}\n",
                        "          - {category: expert, queue: expert, from: 2021-09-01, until: 2021-12-31}\n"
                        "          - {category: dual, queue: general, from: 2022-01-01}\n")
    table = load_table("t.yaml", text=text)
    assert decide(table, "12320", None, datetime(2021, 12, 31, 23, tzinfo=SH)).category is Category.EXPERT
    assert decide(table, "12320", None, datetime(2022, 1, 1, 0, tzinfo=SH)).category is Category.DUAL


def test_range_that_ends_before_it_starts():
    text = BASE.replace("from: 2021-09-01}", "from: 2021-09-01, until: 2021-08-01}")
    (problem,) = problems(text)
    assert problem.startswith(f"t.yaml:{line_of(text, 'until: 2021-08-01')}:")
    assert "ends (2021-08-01) before it starts (2021-09-01)" in problem


def test_invalid_time_zone_and_invalid_date():
    text = BASE.replace("Asia/Shanghai", "Asia/Haikou").replace("[2021-10-09]", "[2021-02-30]")
    found = problems(text)
    assert any(p.startswith("t.yaml:2:15:") and "'Asia/Haikou' is not a known time zone" in p for p in found)
    assert any(p.startswith(f"t.yaml:{line_of(text, '2021-02-30')}:") and "working_days" in p for p in found)


def test_opening_span_that_ends_before_it_starts():
    text = BASE.replace('["08:00-18:00"]', '["18:00-08:00"]')
    (problem,) = problems(text)
    assert problem.startswith(f"t.yaml:{line_of(text, '18:00-08:00')}:") and "ends before it starts" in problem


def test_every_error_is_reported_at_once():
    text = (BASE.replace("        name: expert\n", "        name: expert\n        colour: blue\n")
            .replace("after_seconds: 60", "after_seconds: soon")
            .replace("kind: retained_seat", "kind: satellite"))
    assert len(problems(text)) == 3


def test_overflow_loop_is_an_error():
    text = BASE.replace("      general:\n        name: general\n",
                        "      general:\n        name: general\n        overflow: {after_seconds: 30, to: expert}\n")
    found = problems(text)
    assert any("fallback loop: general -> expert -> general" in p or "fallback loop: expert -> general -> expert" in p
               for p in found)


def test_queue_overflowing_into_itself():
    text = BASE.replace("to: general}", "to: expert}")
    (problem,) = problems(text)
    assert problem == f"t.yaml:{line_of(text, 'to: expert}')}:{col_of(text, 'expert}')}: fallback loop: expert -> expert"


def test_closed_handling_loop_through_two_queues():
    text = BASE.replace("        schedule: office\n",
                        "        schedule: office\n        when_closed: {queue: general}\n").replace(
        "      general:\n        name: general\n",
        "      general:\n        name: general\n        schedule: office\n        when_closed: {queue: expert}\n")
    assert any("fallback loop" in p for p in problems(text))


def test_secrets_are_refused_in_yaml():
    text = BASE.replace("        host: 192.0.2.9\n", "        host: 192.0.2.9\n        password: hunter2\n")
    (problem,) = problems(text)
    assert "does not belong in YAML" in problem and "hunter2" not in problem


def test_emergency_rule_must_not_queue():
    text = BASE + extra_line("110", "{category: emergency_linkage, queue: general}")
    (problem,) = problems(text)
    assert "emergency_linkage rule needs 'trunk'" in problem


def test_cancelled_rule_needs_transition_and_choice():
    text = BASE + extra_line("12396", "{category: cancelled, queue: general, prompts: [a]}")
    (problem,) = problems(text)
    assert "needs 'transition'" in problem


def test_holiday_and_working_day_on_the_same_date():
    text = BASE.replace("[2021-10-09]", "[2021-10-03]")
    (problem,) = problems(text)
    assert "2021-10-03 is listed both as a holiday and as a working day" in problem


def test_holiday_range_across_two_months_expands_to_exactly_its_days():
    text = BASE.replace("{name: 国庆节, from: 2021-10-01, to: 2021-10-07}", "{name: 元旦, from: 2022-12-31, to: 2023-01-02}")
    table = load_table("t.yaml", text=text)
    days = sorted(table.calendars["cn"].holidays)
    assert [d.isoformat() for d in days] == ["2022-12-31", "2023-01-01", "2023-01-02"]


def test_yaml_syntax_error_has_a_position():
    (problem,) = problems(BASE.replace("queues:\n", "queues:\n  - [unclosed\n"))
    assert problem.startswith("t.yaml:") and "YAML syntax" in problem


class TestWarnings:
    def test_unreached_definitions(self):
        text = BASE.replace("    trunks:\n", "    trunks:\n      lonely:\n        name: l\n        kind: subcenter\n"
                                            "        host: l.invalid\n")
        text = text.replace("      expert:\n", "      spare:\n        name: spare\n      expert:\n")
        warnings = [str(w) for w in load_table_with_warnings("t.yaml", text=text).warnings]
        assert f"t.yaml:{line_of(text, 'spare:')}:7: warning: queue 'spare' is defined but nothing reaches it" in warnings
        assert any("trunk 'lonely' is defined but nothing reaches it" in w for w in warnings)

    def test_menu_references_count_as_reached(self):
        text = BASE.replace("      expert:\n", "      spare:\n        name: spare\n      expert:\n")
        result = load_table_with_warnings("t.yaml", text=text, external_references={"spare"})
        assert not result.warnings

    def test_window_already_ended_and_never_matching_rule(self):
        text = BASE.replace("from: 2021-09-01}", "from: 2021-09-01, until: 2021-10-31}") + extra_line(
            "12399", "{category: dual, queue: general, from: 2022-01-01T10:00:00, until: 2022-01-01T10:00:00}")
        warnings = [str(w) for w in load_table_with_warnings(
            "t.yaml", text=text, now=datetime(2026, 1, 1, tzinfo=SH)).warnings]
        assert any("ended on 2021-10-31; it no longer applies" in w for w in warnings)
        assert any("window is empty: it can never match" in w for w in warnings)

    def test_expired_abuse_listing(self):
        text = BASE.replace("    lines:\n", "    abuse:\n      queue: general\n      listed:\n"
                                           "        - {number: '13800000000', until: 2025-01-01, reason: test}\n    lines:\n")
        warnings = [str(w) for w in load_table_with_warnings(
            "t.yaml", text=text, now=datetime(2026, 1, 1, tzinfo=SH)).warnings]
        assert any("listing expired on 2025-01-01" in w for w in warnings)

    def test_listed_caller_is_diverted_until_expiry_but_never_from_emergency(self):
        text = BASE.replace("    lines:\n", "    abuse:\n      queue: general\n      prompts: [warn]\n      listed:\n"
                                           "        - {number: '13800000000', until: 2025-01-01, reason: test}\n    lines:\n")
        text += extra_line("110", "{category: emergency_linkage, trunk: e110}")
        text = text.replace("    trunks:\n", "    trunks:\n      e110:\n        name: e\n        kind: emergency\n"
                                            "        host: e.invalid\n")
        table = load_table("t.yaml", text=text)
        before = datetime(2024, 12, 31, 23, tzinfo=SH)
        assert decide(table, "12345", "13800000000", before).category is Category.ABUSE
        assert decide(table, "12345", "13800000000", datetime(2025, 1, 2, tzinfo=SH)).category is Category.UNIFIED
        assert decide(table, "110", "13800000000", before).category is Category.EMERGENCY_LINKAGE


def test_shipped_table_is_clean(routing_yaml):
    from scripts.cli_routes import menu_references
    result = load_table_with_warnings(routing_yaml, now=datetime(2026, 11, 26, tzinfo=SH),
                                      external_references=menu_references(routing_yaml.parent / "ivr.yaml"))
    # Only its placeholder trunk hosts (.invalid, to be replaced by the real SBC addresses), one per trunk.
    assert all("is a placeholder (.invalid never resolves)" in w.message for w in result.warnings)
    assert [w.line for w in result.warnings] == [w.line for w in result.hosts]
    assert len(result.warnings) == len(result.table.trunks)
    assert {"12396", "12336", "12312", "12301", "12300", "12349", "12356", "96119", "12322", "12318", "12317",
            "12367", "12320", "12329", "12348", "12333", "12360", "12366", "12305", "110", "119", "120", "122",
            "12345"} == set(result.table.lines)
