"""conf/ivr.yaml: the shipped menus load against the shipped table; every broken file is refused with file:line."""
from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from ivr.menus import Kind, MenuError, load_menus
from routing.loader import load_table

ROOT = Path(__file__).resolve().parents[1]
IVR_YAML = ROOT / "conf" / "ivr.yaml"
PROMPTS_TXT = ROOT / "conf" / "prompts.txt"


@pytest.fixture(scope="module")
def table():
    return load_table(ROOT / "conf" / "routing.yaml")


HEADER = """\
version: 1
defaults:
  invalid_prompt: {zh: hotline/zh/invalid-choice, en: hotline/en/invalid-choice}
callback:
  prompt: {zh: a/zh/cb, en: a/en/cb}
  confirm_prompt: {zh: a/zh/is, en: a/en/is}
  confirm_options_prompt: {zh: a/zh/ok, en: a/en/ok}
  accepted_prompt: {zh: a/zh/yes, en: a/en/yes}
  invalid_prompt: {zh: a/zh/bad, en: a/en/bad}
menus:
"""  # the first menu starts on line 11


def doc(menus: str) -> str:
    return HEADER + textwrap.indent(textwrap.dedent(menus).strip("\n") + "\n", "  ")


def problems(text: str, table=None) -> list[str]:
    with pytest.raises(MenuError) as caught:
        load_menus("ivr.yaml", table, text=text)
    return [str(p) for p in caught.value.problems]


def the_problem(text: str, table=None) -> str:
    found = problems(text, table)
    assert len(found) == 1, found
    return found[0]


# ------------------------------------------------------------------------------------------ shipped file


def test_shipped_menus_load_against_the_shipped_table(table):
    menus = load_menus(IVR_YAML, table)
    assert {"main", "subcenter", "expert-12320", "cities"} <= set(menus.menus)
    named = {rule.menu for line in table.lines.values() for rule in line.rules if rule.menu}
    assert named <= set(menus.menus)
    main = menus["main"]
    assert main.options["3"].kind is Kind.QUEUE and main.options["3"].target == "business-environment"
    assert main.options["4"].target == "minors-protection"
    assert main.options["5"].kind is Kind.MENU and main.options["5"].target == "cities"
    assert main.options["6"].kind is Kind.CALLBACK
    assert main.options["9"].kind is Kind.LANGUAGE and main.options["9"].target == "en"
    assert main.options["#"].kind is Kind.REPEAT
    assert {d.target for d in menus["cities"].options.values()} >= {"city-haikou", "city-sanya"}
    assert menus["cities"].options["*"].kind is Kind.PREVIOUS
    assert menus["subcenter"].options["2"].tags == ("specialist",)
    assert menus["expert-12320"].options["1"].target == "expert-12320"
    assert menus["expert-12320"].after_retries.target == "general-12345"
    assert menus.default_language == "zh"


def test_prompts_list_names_every_sound_the_menus_and_the_table_play(table):
    listed = {}
    for number, line in enumerate(PROMPTS_TXT.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        parts = [p.strip() for p in line.split("|")]
        assert len(parts) == 3 and all(parts), f"prompts.txt:{number}: want 'name | 中文 | English'"
        assert re.fullmatch(r"[A-Za-z0-9_/.-]+", parts[0]), parts[0]
        assert parts[0] not in listed, f"prompts.txt:{number}: {parts[0]} listed twice"
        listed[parts[0]] = parts[1:]
    menus = load_menus(IVR_YAML, table)
    table_prompts = set(table.unknown_prompts) | set(table.abuse.prompts)
    for line in table.lines.values():
        for rule in line.rules:
            table_prompts |= set(rule.prompts) | set(rule.after_prompts)
    table_prompts |= {p for q in table.queues.values() if q.when_closed for p in q.when_closed.prompts}
    table_prompts |= {retry.announce for retry in table.emergency_retry.values()}
    table_prompts |= {p for switch in table.switches.values() for p in switch.prompts}
    assert menus.prompt_files() <= set(listed), sorted(menus.prompt_files() - set(listed))
    assert table_prompts <= set(listed), sorted(table_prompts - set(listed))
    from dataclasses import fields

    from dialplan.options import RenderOptions
    dialplan_prompts = {getattr(RenderOptions(), f.name) for f in fields(RenderOptions) if f.name.startswith("prompt_")}
    assert dialplan_prompts and dialplan_prompts <= set(listed), sorted(dialplan_prompts - set(listed))


def test_a_minimal_file_uses_the_defaults():
    menus = load_menus("ivr.yaml", text=doc("""
        main:
          prompt: {zh: m/zh, en: m/en}
          options:
            1: route
            "0": {queue: general-12345}
    """))
    main = menus["main"]
    assert set(main.options) == {"1", "0"}          # an unquoted 1 is the key "1"
    assert (main.timeout_ms, main.retries, main.max_digits, main.barge_in) == (5000, 2, 1, True)
    assert main.after_retries.kind is Kind.ROUTE
    assert main.line == 11


# ------------------------------------------------------------------------------------------ schema errors


def test_yaml_syntax_error_names_its_line():
    text = doc("""
        main:
          prompt: {zh: m/zh, en: m/en}
          options:
            "1": [route
    """)
    assert re.match(r"ivr\.yaml:1[45]:\d+: YAML syntax", the_problem(text))


def test_unknown_key_is_refused_at_the_key():
    text = doc("""
        main:
          prompt: {zh: m/zh, en: m/en}
          timeout: 5
          options: {"1": route}
    """)
    assert the_problem(text) == ("ivr.yaml:13:5: unknown key 'timeout'; did you mean 'timeout_prompt' or "
                                 "'timeout_seconds'?")


def test_missing_prompt_is_reported_at_the_menu():
    text = doc("""
        main:
          options: {"1": route}
    """)
    assert the_problem(text).startswith("ivr.yaml:12:5: missing required key 'prompt'")


def test_a_prompt_needs_both_languages():
    text = doc("""
        main:
          prompt: {zh: m/zh}
          options: {"1": route}
    """)
    assert the_problem(text).startswith("ivr.yaml:12:")
    assert "missing required key 'en'" in the_problem(text)


def test_a_destination_takes_exactly_one_kind():
    text = doc("""
        main:
          prompt: {zh: m/zh, en: m/en}
          options:
            "1": {queue: general-12345, menu: main}
    """)
    found = the_problem(text)
    assert found.startswith("ivr.yaml:14:")
    assert "exactly one of" in found and "found menu, queue" in found


def test_a_language_must_be_zh_or_en():
    text = doc("""
        main:
          prompt: {zh: m/zh, en: m/en}
          options:
            "9": {language: fr}
    """)
    assert the_problem(text).startswith("ivr.yaml:14:")


def test_tags_only_where_a_call_lands():
    text = doc("""
        main:
          prompt: {zh: m/zh, en: m/en}
          options:
            "1": {menu: main, tags: [x]}
    """)
    assert "tags belong to queue, callback or route" in the_problem(text)


# ------------------------------------------------------------------------------------------ cross-checks


def test_duplicate_keys_are_refused_at_the_second():
    text = doc("""
        main:
          prompt: {zh: m/zh, en: m/en}
          options:
            "1": route
            1: {queue: general-12345}
    """)
    assert the_problem(text) == "ivr.yaml:15:7: '1' is given twice in this mapping (first at line 14)"


def test_an_option_to_a_menu_that_does_not_exist():
    text = doc("""
        main:
          prompt: {zh: m/zh, en: m/en}
          options:
            "5": {menu: citiez}
    """)
    assert the_problem(text) == "ivr.yaml:14:19: menu 'citiez' is not defined under menus"


def test_a_queue_not_in_the_routing_table(table):
    text = doc("""
        main:
          prompt: {zh: m/zh, en: m/en}
          options:
            "1": {queue: general-12345}
            "2": {queue: general-12346}
            "3": {callback: nowhere}
    """)
    found = [p for p in problems(text, table) if p.startswith("ivr.yaml")]
    assert found == [
        "ivr.yaml:15:20: queue 'general-12346' is not in the routing table (conf/routing.yaml); did you mean "
        "'general-12345'?".replace("conf/routing.yaml", table.source),
        f"ivr.yaml:16:23: queue 'nowhere' is not in the routing table ({table.source})",
    ]
    load_menus("ivr.yaml", None, text=text)          # without a table the queues are not checked


def test_keys_a_telephone_cannot_send():
    text = doc("""
        main:
          prompt: {zh: m/zh, en: m/en}
          options:
            "x": route
            "12": route
    """)
    assert problems(text) == [
        "ivr.yaml:14:7: option 'x' is not a telephone key (use 0123456789, * or #, quoted in YAML)",
        "ivr.yaml:15:7: option '12' has more digits than max_digits (1)",
    ]


def test_hash_cannot_be_part_of_a_multi_digit_key():
    text = doc("""
        main:
          prompt: {zh: m/zh, en: m/en}
          max_digits: 3
          options:
            "12": route
            "1#": route
    """)
    assert the_problem(text).startswith("ivr.yaml:16:7: option '1#': # ends the input")


def test_after_retries_must_lead_somewhere():
    text = doc("""
        main:
          prompt: {zh: m/zh, en: m/en}
          options: {"1": route}
          after_retries: repeat
    """)
    assert the_problem(text).startswith("ivr.yaml:14:20: after_retries must lead somewhere")


def test_a_submenu_loop_without_exit_is_an_error():
    text = doc("""
        main:
          prompt: {zh: m/zh, en: m/en}
          options: {"1": route, "2": {menu: a}}
        a:
          prompt: {zh: a/zh, en: a/en}
          options: {"1": {menu: b}, "#": repeat}
        b:
          prompt: {zh: b/zh, en: b/en}
          options: {"1": {menu: a}, "*": previous, "9": {language: en}}
    """)
    assert the_problem(text) == ("ivr.yaml:14:3: submenu loop a -> b -> a has no way out: no option in it leads "
                                 "to the route, a queue, a callback or a hang-up")


def test_a_menu_naming_itself_without_exit_is_a_loop():
    text = doc("""
        main:
          prompt: {zh: m/zh, en: m/en}
          options: {"1": {menu: main}}
    """)
    assert "submenu loop main -> main has no way out" in the_problem(text)


def test_loops_with_an_exit_and_repeat_only_menus_are_fine():
    menus = load_menus("ivr.yaml", text=doc("""
        main:
          prompt: {zh: m/zh, en: m/en}
          options: {"1": {menu: a}, "2": {menu: info}}
        a:
          prompt: {zh: a/zh, en: a/en}
          options: {"1": {menu: main}, "*": previous}
        info:
          prompt: {zh: i/zh, en: i/en}
          options: {"#": repeat, "*": previous}
    """))
    assert set(menus.menus) == {"main", "a", "info"}


def test_a_rule_naming_a_menu_the_file_lacks(table):
    text = doc("""
        main:
          prompt: {zh: m/zh, en: m/en}
          options: {"1": route}
    """)
    found = problems(text, table)
    assert any(re.match(rf"{re.escape(table.source)}:\d+:1: rule '.+' of line 12320 names menu 'expert-12320', "
                        r"which ivr\.yaml does not define", p) for p in found), found
    assert any("line 12366 names menu 'subcenter'" in p for p in found)


def test_every_problem_is_reported_at_once():
    text = doc("""
        main:
          prompt: {zh: m/zh, en: m/en}
          options:
            "5": {menu: nowhere}
            "y": route
            "#": repeat
            "#": previous
    """)
    found = problems(text)
    assert len(found) == 3, found
    assert [int(p.split(":")[1]) for p in found] == [14, 15, 17]


def test_the_file_must_be_a_mapping_and_readable(tmp_path):
    assert problems("- just\n- a list\n")[0].startswith("ivr.yaml:1:1: the file must be a mapping")
    with pytest.raises(MenuError) as caught:
        load_menus(tmp_path / "missing.yaml")
    assert "cannot read file" in str(caught.value)


def test_a_schema_error_in_one_menu_does_not_hide_the_others_problems():
    text = doc("""
        main:
          prompt: {zh: m/zh, en: m/en}
          options: {"1": {menu: nowhere}, "2": {menu: broken}}
        broken:
          prompt: {zh: b/zh, en: b/en}
          retries: many
          options: {"1": route}
    """)
    found = problems(text)
    assert len(found) == 2, found
    assert found[0].startswith("ivr.yaml:13:27: menu 'nowhere' is not defined")     # 'broken' counts as defined
    assert found[1].startswith("ivr.yaml:16:14: menus.broken.retries: Input should be a valid integer")
