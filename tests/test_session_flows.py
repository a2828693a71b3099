"""The IVR session driven without sockets: each command goes through the real codec to the Asterisk 22 stand-in
(ivr.emulator.AsteriskChannel, faithful to the recorded transcripts) and its reply comes back parsed."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Callable, Iterable
from zoneinfo import ZoneInfo

import pytest

from ivr.agi.codec import ResponseParser, command_line
from ivr.agi.commands import HANGUP_NOTICE, Command, GetOption, Response, SetVariable
from ivr.emulator import AsteriskChannel, asterisk_env
from ivr.menus import load_menus
from ivr.session import CallOutcome, IvrSession, digits_of, key_of
from routing.decide import decide
from routing.loader import load_table
from routing.privacy import mask_number
from routing.model import Action, CallerHistory, Category, TransferKind

ROOT = Path(__file__).resolve().parents[1]
SHANGHAI = ZoneInfo("Asia/Shanghai")
DAY = datetime(2026, 11, 26, 10, 0, tzinfo=SHANGHAI)      # a Thursday, working hours
NIGHT = datetime(2026, 11, 26, 3, 0, tzinfo=SHANGHAI)
CALLER = "13812345678"
TABLE = load_table(ROOT / "conf" / "routing.yaml")
MENUS = load_menus(ROOT / "conf" / "ivr.yaml", TABLE)


@dataclass
class Call:
    outcome: CallOutcome
    lines: list[str]                  # every command line the session sent
    channel: AsteriskChannel

    @property
    def heard(self) -> list[str]:
        return self.channel.t.heard

    def lines_after_hangup(self) -> list[str]:
        replies = self.channel.t.exchanges
        first = next(i for i, (_, reply) in enumerate(replies) if reply.startswith("200 result=-1"))
        return [line for line, _ in replies[first + 1:]]


def env_for(dialed: str, *, caller: str | None = CALLER, name: str = "Zhang San", language: str = "en") -> dict:
    return asterisk_env(dialed=dialed, caller=caller, caller_name=name, language=language)


def call(dialed: str, script: Iterable[str] = (), *, at: datetime = DAY, route=None, menus=MENUS, env=None,
         hours: bool = True, history: CallerHistory | None = None) -> Call:
    env = env or env_for(dialed)
    caller = env.get("callerid")
    route = route or decide(TABLE, dialed, None if caller == "unknown" else caller, at, history)
    channel = AsteriskChannel(env, script)
    session = IvrSession(env, route, menus, TABLE, at=at if hours else None)
    parser = ResponseParser()
    lines: list[str] = []
    gen = session.run()
    command = next(gen)
    while True:
        line = command_line(command)
        lines.append(line)
        replies = parser.feed(channel.handle(line))
        assert len(replies) == 1, replies
        try:
            command = gen.send(replies[0])
        except StopIteration as stop:
            return Call(stop.value, lines, channel)
        assert len(lines) < 300, "the session does not end"


def respond(session: IvrSession, answer: Callable[[Command], Response]) -> tuple[CallOutcome, list[Command]]:
    """Drive with hand-made responses (errors the emulator does not produce for well-formed commands)."""
    sent: list[Command] = []
    gen = session.run()
    command = next(gen)
    while True:
        sent.append(command)
        try:
            command = gen.send(answer(command))
        except StopIteration as stop:
            return stop.value, sent
        assert len(sent) < 300


# ------------------------------------------------------------------------------------------ 12345 main menu


@pytest.mark.parametrize("script, target, tags, path", [
    (["1"], "general-12345", ("general",), ("main", "1")),
    (["0"], "general-12345", ("general",), ("main", "0")),
    (["2"], "general-12345", ("general", "complaint"), ("main", "2")),
    (["3"], "business-environment", ("general", "business-environment"), ("main", "3")),
    (["4"], "minors-protection", ("general", "minors"), ("main", "4")),
    (["5", "1"], "city-haikou", ("general", "haikou"), ("main", "5", "cities", "1")),
    (["5", "2"], "city-sanya", ("general", "sanya"), ("main", "5", "cities", "2")),
    (["5", "0"], "general-12345", ("general",), ("main", "5", "cities", "0")),
    (["5", "*", "2"], "general-12345", ("general", "complaint"), ("main", "5", "cities", "*", "main", "2")),
    (["5", "#", "2"], "city-sanya", ("general", "sanya"), ("main", "5", "cities", "#", "2")),
    (["#", "4"], "minors-protection", ("general", "minors"), ("main", "#", "4")),
])
def test_every_path_of_the_main_menu(script, target, tags, path):
    c = call("12345", script)
    assert (c.outcome.action, c.outcome.target, c.outcome.route.tags) == (Action.QUEUE, target, tags)
    assert c.outcome.ivr_path == path
    assert not c.outcome.hungup
    assert c.channel.t.variables["HOTLINE_TARGET"] == target
    assert c.channel.t.variables["HOTLINE_IVR_PATH"] == ">".join(path)
    assert all(line.startswith("GET OPTION ") for line in c.lines if "menu" in line)


def test_a_menu_is_one_get_option_with_every_key_as_barge_in():
    c = call("12345", ["2"])
    assert c.lines == [
        "ANSWER",
        "SET VARIABLE CHANNEL(language) zh",
        "SET VARIABLE HOTLINE_LANG zh",
        "GET OPTION hotline/zh/main-menu 0123456789*# 5000",
        "SET VARIABLE HOTLINE_TARGET general-12345",
        "SET VARIABLE HOTLINE_LINE 12345",
        "SET VARIABLE HOTLINE_TAGS general+complaint",
        "SET VARIABLE HOTLINE_RULE 12345-unified",
        "SET VARIABLE HOTLINE_IVR_PATH main>2",
        f"SET VARIABLE HOTLINE_TABLE {TABLE.version}",
        'SET VARIABLE CALLERID(name) "[12345] Zhang San"',
        "SET VARIABLE HOTLINE_ACTION queue",     # last: a session cut short leaves it empty (fail open)
    ]


def test_contract_variables_and_the_derived_route():
    c = call("12345", ["3"])
    v = c.outcome.variables
    assert dict(v) == c.channel.t.variables            # what the session says it set is what the channel has
    assert v["HOTLINE_ACTION"] == "queue" and v["HOTLINE_TARGET"] == "business-environment"
    assert (v["HOTLINE_LINE"], v["HOTLINE_RULE"], v["HOTLINE_LANG"]) == ("12345", "12345-unified", "zh")
    assert v["HOTLINE_TAGS"] == "general+business-environment"
    assert v["HOTLINE_TABLE"] == TABLE.version
    assert "HOTLINE_CALLBACK" not in v
    route = c.outcome.route
    original = decide(TABLE, "12345", CALLER, DAY)
    assert route.rule_id == original.rule_id and route.category is original.category
    assert route.reason.startswith(original.reason) and "IVR main>3: queue business-environment" in route.reason
    assert [o.to for o in route.overflow] == ["general-12345"]  # the chosen queue's overflow, not the rule's


def test_caller_name_shows_the_legacy_line():
    c = call("12320", ["1"], env=env_for("12320", name="unknown"))
    assert c.outcome.variables["CALLERID(name)"] == "[12320]"
    again = call("12366", ["1"], env=env_for("12366", name="[12345] Li Si"))
    assert again.outcome.variables["CALLERID(name)"] == "[12366] Li Si"


def test_channel_already_in_chinese_needs_no_language_change():
    c = call("12345", ["1"], env=env_for("12345", language="zh"))
    assert not any("language" in line for line in c.lines)
    assert c.outcome.variables["HOTLINE_LANG"] == "zh"


# ------------------------------------------------------------------------------------------ bad input


def test_invalid_keys_until_the_retries_run_out_go_to_the_route():
    c = call("12345", ["7", "7", "7"])
    assert c.outcome.ivr_path == ("main", "7", "7", "7")
    assert c.heard.count("hotline/zh/main-menu") == 3
    assert c.heard.count("hotline/zh/invalid-choice") == 3
    assert (c.outcome.action, c.outcome.target) == (Action.QUEUE, "general-12345")
    assert c.outcome.route == decide(TABLE, "12345", CALLER, DAY)   # the route itself, untouched


def test_an_invalid_key_then_a_valid_one():
    c = call("12345", ["7", "2"])
    assert c.outcome.ivr_path == ("main", "7", "2")
    assert c.heard == ["hotline/zh/main-menu", "hotline/zh/invalid-choice", "hotline/zh/main-menu"]
    assert c.outcome.route.tags == ("general", "complaint")


def test_no_key_until_the_retries_run_out():
    c = call("12345", ["timeout", "timeout", "timeout"])
    assert c.outcome.ivr_path == ("main", "t", "t", "t")
    assert c.heard.count("hotline/zh/no-input") == 2      # between attempts, not after the last one
    assert (c.outcome.action, c.outcome.target) == (Action.QUEUE, "general-12345")


def test_asterisk_errors_on_the_menu_count_as_no_input():
    session = IvrSession(env_for("12345"), decide(TABLE, "12345", CALLER, DAY), MENUS, TABLE)
    usage = Response(code=520, usage="Usage: GET OPTION", raw="520-Invalid command syntax.\n520 End of proper usage.")
    replies = iter([Response(510, raw="510 Invalid or unknown command"), usage, Response(510)])

    def answer(cmd: Command) -> Response:
        return next(replies) if isinstance(cmd, GetOption) else Response(200, result=0)

    outcome, sent = respond(session, answer)
    assert outcome.ivr_path == ("main", "t", "t", "t")
    assert outcome.target == "general-12345" and not outcome.hungup


def test_the_caller_cannot_loop_forever():
    c = call("12345", ["#"] * 40)
    assert sum(line.startswith("GET OPTION") for line in c.lines) == MENUS.max_menu_plays
    assert (c.outcome.action, c.outcome.target) == (Action.QUEUE, "general-12345")


# ------------------------------------------------------------------------------------------ language


def test_nine_switches_to_english_and_replays_the_menu():
    c = call("12345", ["9", "1"])
    assert c.heard == ["hotline/zh/main-menu", "hotline/en/main-menu"]
    switch = c.lines.index("SET VARIABLE CHANNEL(language) en")
    assert c.lines[switch + 1] == "SET VARIABLE HOTLINE_LANG en"
    assert c.lines[switch + 2] == "GET OPTION hotline/en/main-menu 0123456789*# 5000"
    assert c.outcome.language == "en"
    assert c.channel.t.variables["HOTLINE_LANG"] == "en"
    assert c.channel.t.variables["CHANNEL(language)"] == "en"
    assert c.outcome.variables["CHANNEL(language)"] == "en"
    assert c.outcome.ivr_path == ("main", "9", "1")


def test_english_carries_into_submenus_and_back_to_chinese():
    c = call("12345", ["9", "5", "8", "1"])              # "8" is no option in the cities menu
    assert c.heard == ["hotline/zh/main-menu", "hotline/en/main-menu", "hotline/en/cities-menu",
                       "hotline/en/invalid-choice", "hotline/en/cities-menu"]
    assert c.outcome.target == "city-haikou" and c.outcome.language == "en"
    back = call("12345", ["9", "8", "1"])
    assert back.heard == ["hotline/zh/main-menu", "hotline/en/main-menu", "hotline/zh/main-menu"]
    assert back.outcome.language == "zh" and back.channel.t.variables["CHANNEL(language)"] == "zh"


# ------------------------------------------------------------------------------------------ callback


def test_callback_on_hash_uses_the_calling_number():
    c = call("12345", ["6", "#", "1"])
    assert c.outcome.action is Action.CALLBACK and c.outcome.target == "general-12345"
    assert c.outcome.callback_number == CALLER
    assert c.outcome.variables["HOTLINE_CALLBACK"] == mask_number(CALLER)     # the full number: the record only
    assert c.outcome.variables["HOTLINE_ACTION"] == "callback"
    assert "GET DATA hotline/zh/callback-enter-number 8000 20" in c.lines
    assert f'SAY DIGITS {CALLER} ""' in c.lines
    assert "GET OPTION hotline/zh/callback-confirm 12 8000" in c.lines
    assert c.heard[-1] == "hotline/zh/callback-accepted"


def test_callback_number_entered_and_confirmed_by_silence():
    c = call("12345", ["6", "13900001111#", "timeout"])
    assert c.outcome.callback_number == "13900001111"
    assert "digits:13900001111" in c.heard


def test_callback_number_too_short_then_reentered():
    c = call("12345", ["6", "139#", "13900001111#", "2", "13700002222#", "1"])
    assert c.heard.count("hotline/zh/callback-invalid") == 1
    assert c.outcome.callback_number == "13700002222"
    assert c.channel.t.variables["HOTLINE_CALLBACK"] == "137****2222"
    assert not any("13700002222" in line for line in c.lines if line.startswith("SET VARIABLE"))


def test_callback_without_any_usable_number_queues_the_caller():
    env = env_for("12345", caller=None)
    c = call("12345", ["6", "timeout", "timeout", "timeout"], env=env)
    assert (c.outcome.action, c.outcome.target, c.outcome.callback_number) == (Action.QUEUE, "general-12345", None)
    assert "HOTLINE_CALLBACK" not in c.channel.t.variables
    assert c.channel.t.variables["HOTLINE_ACTION"] == "queue"


def test_a_closed_business_seat_at_night_takes_a_callback_request():
    c = call("12345", ["3", "#", "1"], at=NIGHT)
    assert "hotline/business-seat-closed" in c.heard
    assert (c.outcome.action, c.outcome.target) == (Action.CALLBACK, "business-environment")
    assert c.outcome.callback_number == CALLER
    assert "closed" in c.outcome.route.reason


def test_a_closed_minors_queue_at_night_goes_to_12345():
    c = call("12345", ["4"], at=NIGHT)
    assert (c.outcome.action, c.outcome.target) == (Action.QUEUE, "general-12345")
    assert c.outcome.route.tags == ("general", "minors")


def test_without_the_instant_the_session_does_not_guess_hours():
    c = call("12345", ["3"], at=NIGHT, hours=False)
    assert c.outcome.target == "business-environment"


# ------------------------------------------------------------------------------------------ hang-up


def test_hangup_during_the_menu_prompt():
    c = call("12345", ["hangup"])
    assert c.outcome.hungup
    assert (c.outcome.action, c.outcome.target) == (Action.QUEUE, "general-12345")
    after = c.lines_after_hangup()
    # one probe tells a hang-up from a sound Asterisk cannot open (both answer -1); a dead channel refuses it
    assert after[0] == "CHANNEL STATUS" and c.channel.t.exchanges[-len(after)][1].startswith("511")
    assert after[1:] and all(line.startswith("SET VARIABLE ") for line in after[1:])
    assert c.channel.t.variables["HOTLINE_ACTION"] == "queue"     # 200 on a dead channel: harmless, fail-safe


def test_hangup_during_the_callback_confirmation():
    c = call("12345", ["6", "#", "hangup"])
    assert c.outcome.hungup and c.outcome.action is Action.CALLBACK and c.outcome.callback_number is None
    after = c.lines_after_hangup()
    after = after[1:] if after[:1] == ["CHANNEL STATUS"] else after      # the probe after a prompt's -1
    assert all(line.startswith("SET VARIABLE ") for line in after)


def test_hangup_during_the_announcement_of_a_cancelled_line():
    at = datetime(2021, 9, 10, 10, 0, tzinfo=SHANGHAI)
    c = call("12396", ["hangup"], at=at)
    assert c.outcome.hungup and c.heard == ["hotline/number-merged-into-12345"]


def test_the_unsolicited_hangup_line_and_511_end_the_session():
    route = decide(TABLE, "12345", CALLER, DAY)
    for notice in (HANGUP_NOTICE, Response(511, raw="511 Command Not Permitted on a dead channel")):
        session = IvrSession(env_for("12345"), route, MENUS, TABLE)
        outcome, sent = respond(session, lambda cmd, n=notice: n if isinstance(cmd, GetOption)
                                else Response(200, result=1 if isinstance(cmd, SetVariable) else 0))
        first = next(i for i, cmd in enumerate(sent) if isinstance(cmd, GetOption))
        assert outcome.hungup and all(isinstance(cmd, SetVariable) for cmd in sent[first + 1:])


# ------------------------------------------------------------------------------------------ other lines


def test_emergency_lines_get_no_answer_no_prompt_no_menu():
    for number in ("110", "119", "120", "122"):
        c = call(number, ["1"])
        assert c.heard == [] and all(line.startswith("SET VARIABLE ") for line in c.lines)
        assert (c.outcome.action, c.outcome.target) == (Action.DIAL, f"emergency-{number}")
        assert c.outcome.variables["HOTLINE_ACTION"] == "dial"
        assert c.outcome.ivr_path == ()


@pytest.mark.parametrize("number, tag", [("12360", "customs"), ("12366", "tax"), ("12305", "postal")])
def test_subcenter_lines(number, tag):
    general = call(number, ["1"])
    assert (general.outcome.target, general.outcome.route.tags) == ("general-12345", (tag,))
    assert general.outcome.ivr_path == ("subcenter", "1")
    specialist = call(number, ["2"])
    assert (specialist.outcome.target, specialist.outcome.route.tags) == ("general-12345", (tag, "specialist"))
    kinds = {(t.kind, t.trunk) for t in specialist.outcome.route.transfers}
    assert (TransferKind.THREE_WAY, f"subcenter-{number}") in kinds     # the agent's three-way transfer
    assert specialist.outcome.variables["HOTLINE_TAGS"] == f"{tag}+specialist"
    assert specialist.outcome.variables["HOTLINE_LINE"] == number


def test_the_12320_expert_line():
    expert = call("12320", ["1"])
    assert (expert.outcome.target, expert.outcome.route.tags) == ("expert-12320", ("health", "expert"))
    assert expert.heard == ["hotline/zh/expert-12320-menu"]
    other = call("12320", ["2"])
    assert (other.outcome.target, other.outcome.route.tags) == ("general-12345", ("health",))
    silent = call("12320", ["timeout", "timeout"])
    assert silent.outcome.ivr_path == ("expert-12320", "t", "t")
    assert (silent.outcome.target, silent.outcome.route.tags) == ("general-12345", ("health",))


def test_12320_at_night_skips_the_expert_menu():
    c = call("12320", ["1"], at=NIGHT)      # decide() drops the menu while the expert seat is closed
    assert not any(line.startswith("GET OPTION") for line in c.lines)
    assert c.outcome.target == "general-12345"


def test_cancelled_line_in_its_transition_announces_then_connects():
    at = datetime(2021, 9, 10, 10, 0, tzinfo=SHANGHAI)
    c = call("12396", ["5"], at=at)
    assert 'STREAM FILE hotline/number-merged-into-12345 ""' in c.lines   # no barge-in: the caller must hear it
    assert (c.outcome.action, c.outcome.target) == (Action.QUEUE, "general-12345")
    assert c.outcome.ivr_path == ()


def test_abusive_caller_hears_the_warning_and_goes_to_review_without_a_menu():
    c = call("12345", ["1"], history=CallerHistory(calls_in_window=50))
    assert c.outcome.route.category is Category.ABUSE
    assert c.heard == ["hotline/abuse-warning"]
    assert (c.outcome.action, c.outcome.target) == (Action.QUEUE, "abuse-review")
    assert not any(line.startswith("GET OPTION") for line in c.lines)


def test_unknown_number_gets_the_welcome_and_12345():
    c = call("12399", [])
    assert c.heard == ["hotline/welcome-12345"]
    assert (c.outcome.action, c.outcome.target) == (Action.QUEUE, "general-12345")
    assert c.outcome.variables["HOTLINE_LINE"] == "12345"     # the contract: 12345 for unknown numbers


def test_a_key_during_the_greeting_is_the_menu_choice():
    route = dataclasses.replace(decide(TABLE, "12345", CALLER, DAY), prompts=("hotline/welcome-12345",))
    c = call("12345", ["2"], route=route)
    assert c.lines[3] == "STREAM FILE hotline/welcome-12345 0123456789*#"
    assert c.heard == ["hotline/welcome-12345"]                 # the menu prompt is skipped
    assert c.outcome.ivr_path == ("main", "2") and c.outcome.route.tags == ("general", "complaint")


def test_a_route_naming_a_menu_that_is_missing_still_reaches_its_queue():
    route = dataclasses.replace(decide(TABLE, "12345", CALLER, DAY), menu="no-such-menu")
    c = call("12345", ["2"], route=route)
    assert c.outcome.target == "general-12345" and c.outcome.ivr_path == ()


def test_a_callback_route_from_the_table_captures_the_number():
    route = dataclasses.replace(decide(TABLE, "12345", CALLER, DAY), action=Action.CALLBACK,
                                target="business-environment", menu=None, prompts=("hotline/business-seat-closed",))
    c = call("12345", ["13900001111#", "1"], route=route)
    assert c.heard[0] == "hotline/business-seat-closed"
    assert (c.outcome.action, c.outcome.callback_number) == (Action.CALLBACK, "13900001111")


# ------------------------------------------------------------------------------------------ custom menus

CUSTOM = """\
version: 1
defaults:
  invalid_prompt: {zh: t/zh/bad, en: t/en/bad}
  barge_in: %(barge)s
callback:
  prompt: {zh: a/zh/cb, en: a/en/cb}
  confirm_prompt: {zh: a/zh/is, en: a/en/is}
  confirm_options_prompt: {zh: a/zh/ok, en: a/en/ok}
  accepted_prompt: {zh: a/zh/yes, en: a/en/yes}
  invalid_prompt: {zh: a/zh/bad, en: a/en/bad}
menus:
  main:
    prompt: {zh: t/zh/main, en: t/en/main}
    max_digits: %(digits)s
    options:
      "%(key)s": {queue: minors-protection}
      "3": route
      "*": {hangup: {zh: t/zh/bye, en: t/en/bye}}
"""


def custom_menus(*, barge: bool = True, digits: int = 2, key: str = "12"):
    text = CUSTOM % {"barge": str(barge).lower(), "digits": digits, "key": key}
    return load_menus("custom.yaml", None, text=text)   # only a main menu: the table's other menus are absent


def test_multi_digit_menus_use_get_data():
    menus = custom_menus()
    c = call("12345", ["12"], menus=menus)
    assert "GET DATA t/zh/main 5000 2" in c.lines
    assert c.outcome.target == "minors-protection"
    short = call("12345", ["3#"], menus=menus)            # '#' ends the input early
    assert short.outcome.target == "general-12345" and short.outcome.ivr_path == ("main", "3")
    waited = call("12345", ["3"], menus=menus)            # `200 result=3 (timeout)`: the digits still count
    assert waited.outcome.ivr_path == ("main", "3")


def test_leading_zero_survives_get_data():
    c = call("12345", ["01"], menus=custom_menus(key="01"))
    assert c.outcome.target == "minors-protection" and c.outcome.ivr_path == ("main", "01")


def test_without_barge_in_the_prompt_plays_whole_then_silence_listens():
    c = call("12345", ["12"], menus=custom_menus(barge=False))
    i = c.lines.index('STREAM FILE t/zh/main ""')
    assert c.lines[i + 1] == "GET DATA silence/1 5000 2"
    one = call("12345", ["*"], menus=custom_menus(barge=False, digits=1, key="1"))
    i = one.lines.index('STREAM FILE t/zh/main ""')
    assert one.lines[i + 1] == "GET OPTION silence/1 0123456789*# 5000"


def test_hangup_destination_plays_its_prompt():
    c = call("12345", ["*"], menus=custom_menus(digits=1, key="1"))
    assert c.heard[-1] == "t/zh/bye"
    assert (c.outcome.action, c.outcome.target) == (Action.HANGUP, None)
    assert c.outcome.variables["HOTLINE_ACTION"] == "hangup" and c.outcome.variables["HOTLINE_TARGET"] == ""


# ------------------------------------------------------------------------------------------ reading replies


@pytest.mark.parametrize("raw, digits", [
    ("200 result=12", "12"), ("200 result=012", "012"), ("200 result=*1", "*1"), ("200 result=", ""),
    ("200 result= (timeout)", ""), ("200 result=45 (timeout)", "45"), ("200 result=1x", "?"),
])
def test_get_data_digits_are_read_as_written(raw, digits):
    from ivr.agi.codec import parse_result_line
    assert digits_of(parse_result_line(raw)) == digits


def test_get_data_without_raw_falls_back_to_the_number():
    assert digits_of(Response(200, result=7)) == "7"
    assert digits_of(Response(200)) == ""
    assert digits_of(Response(510)) == ""


@pytest.mark.parametrize("result, key", [(0, ""), (None, ""), (ord("5"), "5"), (ord("#"), "#"), (ord("A"), "?"),
                                         (10**9, "?")])
def test_keys_from_option_results(result, key):
    assert key_of(Response(200, result=result)) == key


def test_a_greeting_key_starts_a_multi_digit_choice():
    route = dataclasses.replace(decide(TABLE, "12345", CALLER, DAY), prompts=("hotline/welcome-12345",))
    c = call("12345", ["12"], route=route, menus=custom_menus())
    assert "GET DATA silence/1 5000 1" in c.lines              # the rest of the key after the barge-in
    assert c.outcome.ivr_path == ("main", "12") and c.outcome.target == "minors-protection"


def test_a_hangup_route_announces_and_ends():
    route = dataclasses.replace(decide(TABLE, "12396", CALLER, DAY), action=Action.HANGUP, target=None,
                                prompts=("hotline/number-cancelled-dial-12345",))
    c = call("12396", ["1"], route=route)
    assert c.heard == ["hotline/number-cancelled-dial-12345"]
    assert (c.outcome.action, c.outcome.variables["HOTLINE_ACTION"]) == (Action.HANGUP, "hangup")
    assert not any(line == "HANGUP" for line in c.lines)       # the dialplan hangs up after AGI() returns


def test_route_destination_with_tags_keeps_the_rule_target():
    text = CUSTOM.replace('"3": route', '"3": {route: true, tags: [vip]}') % {"barge": "true", "digits": 1, "key": "1"}
    c = call("12345", ["3"], menus=load_menus("custom.yaml", None, text=text))
    assert (c.outcome.target, c.outcome.route.tags) == ("general-12345", ("general", "vip"))


def test_one_log_event_per_decision_with_uniqueid_and_masked_caller():
    from structlog.testing import capture_logs
    with capture_logs() as events:
        call("12345", ["7", "5", "timeout", "1"], env=env_for("12345") | {"uniqueid": "1795698853.7"})
    kinds = [e["event"] for e in events]
    assert kinds == ["ivr.menu", "ivr.invalid", "ivr.key", "ivr.menu", "ivr.timeout", "ivr.key", "ivr.destination"]
    assert all(e["uniqueid"] == "1795698853.7" and e["caller"] == "138****5678" for e in events)
    assert not any(CALLER in repr(e) for e in events)


def test_a_sound_asterisk_cannot_open_keeps_the_caller_and_the_decision(capsys):
    # res_agi answers GET OPTION on a missing file with `200 result=-1 endpos=0` on a live channel
    env = env_for("12320")
    route = decide(TABLE, "12320", CALLER, DAY)
    channel = AsteriskChannel(env, ["1"], missing_sounds={"hotline/zh/expert-12320-menu"})
    session = IvrSession(env, route, MENUS, TABLE, at=DAY)
    parser, gen = ResponseParser(), session.run()
    command = next(gen)
    try:
        while True:
            (reply,) = [r for r in parser.feed(channel.handle(command_line(command)))]
            command = gen.send(reply)
    except StopIteration as stop:
        outcome = stop.value
    assert not outcome.hungup and channel.t.command_failed
    assert (outcome.action, outcome.target) == (Action.QUEUE, "expert-12320")  # the route, not a fail-open
    assert channel.t.variables["HOTLINE_ACTION"] == "queue"
    assert "ivr.prompt_unplayable" in capsys.readouterr().out


def test_a_callback_prompt_asterisk_cannot_open_queues_the_caller_instead():
    # found by the property test: the capture cut short by a missing sound left HOTLINE_ACTION=callback with no
    # number, which the dialplan can only fail open; the caller belongs in the queue they wanted a call from
    env = env_for("12345")
    route = decide(TABLE, "12345", CALLER, DAY)
    channel = AsteriskChannel(env, ["6", "13912345678#"], missing_sounds={"hotline/zh/callback-number-is"})
    session = IvrSession(env, route, MENUS, TABLE, at=DAY)
    parser, gen = ResponseParser(), session.run()
    command = next(gen)
    try:
        while True:
            (reply,) = parser.feed(channel.handle(command_line(command)))
            command = gen.send(reply)
    except StopIteration as stop:
        outcome = stop.value
    assert not outcome.hungup and outcome.callback_number is None
    assert (outcome.action, outcome.target) == (Action.QUEUE, "general-12345")
    assert channel.t.variables["HOTLINE_ACTION"] == "queue"
