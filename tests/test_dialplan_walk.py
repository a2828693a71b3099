"""Walk the generated dialplan of the shipped table: every DID reaches the engine, every way the engine can fail
still reaches general-12345 (emergency lines: their trunk, never a queue), overflow chains end at real queues.

dialplan.walk parses the generated text and follows Goto/GotoIf like Asterisk's pbx loop; applications with
outside effects (AGI, Queue, Dial) get their results from the test. It raises on anything it does not model.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from dialplan.extensions import GENERAL_TRIES
from dialplan.options import RenderOptions
from dialplan.render import render
from dialplan.walk import Call, parse, reachable, run
from routing.loader import load_table
from routing.model import Category

ROOT = Path(__file__).resolve().parents[1]
TABLE = load_table(ROOT / "conf" / "routing.yaml")
FILES = render(TABLE, RenderOptions())
PLAN = parse(FILES["extensions_hotline.conf"])
QUEUE_SECTIONS = set(re.findall(r"^\[([a-z0-9-]+)\]$", FILES["queues_hotline.conf"], re.M))
GENERAL = TABLE.general_queue

EMERGENCY_DIDS = sorted(n for n, line in TABLE.lines.items() if line.rules[-1].category is Category.EMERGENCY_LINKAGE)
OTHER_DIDS = sorted(set(TABLE.lines) - set(EMERGENCY_DIDS))
ALL_DIDS = sorted(set(TABLE.lines) | {"12345"})


def engine(**answer: str):
    def effect(call: Call, args: str) -> dict[str, str]:
        return dict(answer)
    return effect


def answered(call: Call, args: str) -> dict[str, str]:
    return {"__end__": "answered"}


def unanswered(call: Call, args: str) -> dict[str, str]:
    return {"QUEUESTATUS": "TIMEOUT"}


def dial(status: str):
    return lambda call, args: {"DIALSTATUS": status}


def call(did: str, agi, queue=answered, dial_effect=dial("NOANSWER"), **variables: str) -> Call:
    return run(PLAN, "hotline-from-carrier", did, {"CALLERID(name)": "Caller", **variables},
               {"AGI": agi, "Queue": queue, "Dial": dial_effect})


def test_parse_knows_every_line() -> None:
    lines = [l for l in FILES["extensions_hotline.conf"].splitlines() if l.startswith(("exten =>", " same =>"))]
    assert len(list(PLAN.steps())) == len(lines) > 100


@pytest.mark.parametrize("did", ALL_DIDS + ["88886666"])
def test_every_did_reaches_the_agi_step_with_the_dialed_number(did: str) -> None:
    seen: list[str] = []

    def at_agi(c: Call, args: str) -> dict[str, str]:
        seen.append(args)
        return {"__end__": "at-agi"}

    result = call(did, at_agi)
    assert result.ended == "at-agi"
    assert seen == [f"agi://127.0.0.1:4573/route,{did}"]
    assert result.variables["HOTLINE_DIALED"] == did
    assert result.variables["TIMEOUT(absolute)"] == ("10" if did in EMERGENCY_DIDS else "300")


def test_a_carrier_call_without_a_usable_did_is_treated_as_12345() -> None:
    for exten in ("s", "+8689812345", "abc"):
        result = call(exten, engine(**{"__end__": "at-agi"}))
        assert result.ended == "at-agi" and result.variables["HOTLINE_DIALED"] == "12345"


FAILURES = {
    "agi-failure": dict(AGISTATUS="FAILURE"),
    "agi-notfound": dict(AGISTATUS="NOTFOUND"),
    "agi-unexpected-status": dict(AGISTATUS="WEIRD"),
    "empty-action": dict(AGISTATUS="SUCCESS", HOTLINE_ACTION=""),
    "unknown-action": dict(AGISTATUS="SUCCESS", HOTLINE_ACTION="dance"),
    "unknown-queue": dict(AGISTATUS="SUCCESS", HOTLINE_ACTION="queue", HOTLINE_TARGET="no-such-queue"),
    "queue-id-without-dash": dict(AGISTATUS="SUCCESS", HOTLINE_ACTION="queue", HOTLINE_TARGET="general12345"),
    "unknown-trunk": dict(AGISTATUS="SUCCESS", HOTLINE_ACTION="dial", HOTLINE_TARGET="carrier-in"),
    "callback-without-number": dict(AGISTATUS="SUCCESS", HOTLINE_ACTION="callback", HOTLINE_TARGET=GENERAL),
}


@pytest.mark.parametrize("did", OTHER_DIDS + ["12345"])
@pytest.mark.parametrize("case", sorted(FAILURES))
def test_engine_failures_fail_open_to_the_general_queue(did: str, case: str) -> None:
    result = call(did, engine(**FAILURES[case]))
    assert result.queues == [GENERAL], result.apps()
    assert result.ended == "answered"
    assert result.variables["HOTLINE_LINE"] == did
    assert result.variables["HOTLINE_TAGS"].endswith("failopen")
    assert result.variables["CALLERID(name)"] == f"[{did}] Caller"
    assert result.variables["HOTLINE_FAILOPEN"]


@pytest.mark.parametrize("field,value", [
    ("HOTLINE_TARGET", 'x" | "1'),            # would make a raw "$[... = ...]" comparison true
    ("HOTLINE_TARGET", 'general-12345" = "'),
    ("HOTLINE_TARGET", "general-12345 "),
    ("HOTLINE_TARGET", "GENERAL-12345"),
    ("HOTLINE_ACTION", 'x" | "1'),
    ("HOTLINE_ACTION", "queue,"),
])
def test_malformed_engine_values_never_enter_an_expression_and_fail_open(field: str, value: str) -> None:
    answer = dict(AGISTATUS="SUCCESS", HOTLINE_ACTION="queue", HOTLINE_TARGET="expert-12320")
    answer[field] = value
    result = call("12320", engine(**answer))      # the walker raises if a quote reaches an expression
    assert result.queues == [GENERAL]
    assert result.variables["HOTLINE_FAILOPEN"] in {"unknown-queue", "unknown-action"}
    for step in PLAN.steps():
        if step.app == "GotoIf":
            assert "${HOTLINE_TARGET}\"" not in step.args and "${HOTLINE_ACTION}\"" not in step.args


@pytest.mark.parametrize("did", OTHER_DIDS)
def test_engine_timeout_fails_open(did: str) -> None:
    result = call(did, engine(__timeout__="1"))
    assert result.queues == [GENERAL]
    assert result.variables["HOTLINE_FAILOPEN"] == "engine-timeout"
    assert result.variables["HOTLINE_LINE"] == did


@pytest.mark.parametrize("did", ALL_DIDS)
def test_agi_leaves_at_once_on_hangup_or_timeout(did: str) -> None:
    """AGIEXITONHANGUP=yes before AGI(): at TIMEOUT(absolute) res_agi leaves AGI instead of waiting for a stalled
    engine without limit (fastagi-engine-stall*.txt); the timeout is set after it and cleared after AGI."""
    steps = [s for s in PLAN.contexts["hotline-engine"]["_X."]]
    apps = [f"{s.app}({s.args})" for s in steps]
    agi = next(i for i, s in enumerate(steps) if s.app == "AGI")
    assert apps.index("Set(AGIEXITONHANGUP=yes)") < apps.index("Set(TIMEOUT(absolute)=${HOTLINE_ENGINE_TIMEOUT})") < agi


@pytest.mark.parametrize("did, action, target, where", [
    ("12345", "queue", "expert-12320", "queue"), ("110", "dial", "emergency-110", "dial")])
def test_engine_timeout_after_the_decision_carries_it_out(did, action, target, where) -> None:
    result = call(did, engine(__timeout__="1", AGISTATUS="HANGUP", HOTLINE_ACTION=action, HOTLINE_TARGET=target,
                              HOTLINE_TABLE=TABLE.version), dial_effect=dial("ANSWER"))
    assert "HOTLINE_FAILOPEN" not in result.variables
    if where == "queue":
        assert result.queues == [target]
    else:
        trunk = TABLE.trunks[target]
        assert result.dials == [f"PJSIP/{trunk.dial}@{trunk.id}"] and result.queues == []


@pytest.mark.parametrize("did", EMERGENCY_DIDS)
def test_emergency_timeout_without_a_decision_dials_the_trunk(did: str) -> None:
    result = call(did, engine(__timeout__="1", AGISTATUS="HANGUP"), dial_effect=dial("ANSWER"))
    trunk = TABLE.trunks[TABLE.lines[did].rules[-1].trunk]
    assert result.variables["HOTLINE_FAILOPEN"] == "engine-timeout"
    assert result.dials == [f"PJSIP/{trunk.dial}@{trunk.id}"] and result.queues == []


def test_unknown_numbers_carry_the_engine_tag_on_fail_open() -> None:
    from routing.decide import UNKNOWN_TAG, decide
    from datetime import datetime, timezone
    result = call("88886666", engine(AGISTATUS="FAILURE"))
    engine_tags = decide(TABLE, "88886666", None, datetime(2026, 3, 2, 2, tzinfo=timezone.utc)).tags
    assert result.variables["HOTLINE_TAGS"] == f"{UNKNOWN_TAG}+failopen" and engine_tags == (UNKNOWN_TAG,)


@pytest.mark.parametrize("did", ALL_DIDS)
def test_a_caller_who_hung_up_is_not_queued(did: str) -> None:
    result = call(did, engine(AGISTATUS="HANGUP", HOTLINE_ACTION="queue", HOTLINE_TARGET=GENERAL))
    assert result.ended == "hangup" and result.queues == [] and result.dials == []


@pytest.mark.parametrize("did", EMERGENCY_DIDS)
@pytest.mark.parametrize("case", ["agi-failure", "agi-notfound", "empty-action", "unknown-queue", "timeout"])
def test_emergency_lines_fail_open_to_their_trunk_never_a_queue(did: str, case: str) -> None:
    answer = dict(__timeout__="1") if case == "timeout" else FAILURES[case]
    result = call(did, engine(**answer), dial_effect=dial("ANSWER"))
    trunk = TABLE.trunks[TABLE.lines[did].rules[-1].trunk]
    assert result.queues == []
    assert result.dials == [f"PJSIP/{trunk.dial}@{trunk.id}"]
    assert result.ended == "hangup"


@pytest.mark.parametrize("did", EMERGENCY_DIDS)
def test_emergency_trunk_down_retries_then_announces(did: str) -> None:
    result = call(did, engine(AGISTATUS="FAILURE"), dial_effect=dial("CHANUNAVAIL"))
    retry = TABLE.retry_for(TABLE.lines[did].rules[-1].trunk)
    assert result.queues == [] and len(result.dials) == retry.attempts
    # paced: a Wait between attempts, never two Dials in a row
    apps = [a for a in result.apps() if a in ("Dial", "Wait")]
    assert apps == ["Dial", "Wait"] * (retry.attempts - 1) + ["Dial"]
    assert result.apps()[-2:] == ["Playback", "Hangup"]


BACKUP_TRUNK = """  emergency-110-b:
    name: 110 backup gateway
    kind: emergency
    host: emergency-gw2.hainan.invalid
    match: [emergency-gw2.hainan.invalid]
    dial: 1100
"""


def _retry_plan(edit: str):
    text = (ROOT / "conf" / "routing.yaml").read_text(encoding="utf-8")
    text = text.replace("  trunks: {}               # per emergency trunk: any of the fields above, and next", edit)
    text = text.replace("\n\nemergency:", "\n" + BACKUP_TRUNK + "\nemergency:", 1)   # the last trunk, whatever its keys
    table = load_table("routing.yaml", text=text)
    return table, parse(render(table, RenderOptions())["extensions_hotline.conf"])


def test_emergency_retry_is_bounded_overall_then_announces_and_takes_the_next_route() -> None:
    table, plan = _retry_plan("  trunks:\n    emergency-110:\n      {attempts: 5, ring_seconds: 20, pause_seconds: 2,"
                              " within_seconds: 45, next: emergency-110-b, announce: hotline/emergency-busy}")
    rings: list[str] = []

    def rings_out(c: Call, args: str) -> dict[str, str]:       # the gateway rings until Dial gives up
        target, _, seconds = args.partition(",")
        rings.append(f"{target} {seconds}")
        c.variables["EPOCH"] = str(int(c.variables["EPOCH"]) + int(seconds))
        return {"DIALSTATUS": "ANSWER" if target.endswith("@emergency-110-b") else "NOANSWER"}

    def waits(c: Call, args: str) -> dict[str, str]:
        c.variables["EPOCH"] = str(int(c.variables["EPOCH"]) + int(args))
        return {}

    result = run(plan, "hotline-emergency", "110", {}, {"Dial": rings_out, "Wait": waits})
    # 20 + 2 + 20 + 2 leaves 1 s of the 45: the third attempt rings 1 s, then the announcement, then the backup
    assert rings == ["PJSIP/110@emergency-110 20", "PJSIP/110@emergency-110 20", "PJSIP/110@emergency-110 1",
                     "PJSIP/1100@emergency-110-b 15"]
    played = [s.args for s in result.trace if s.app == "Playback"]
    assert played == ["hotline/emergency-busy"] and result.ended == "hangup"


def _table_chain(queue_id: str) -> list[str]:
    chain = [queue_id]
    while TABLE.queues[chain[-1]].overflow is not None:
        chain.append(TABLE.queues[chain[-1]].overflow.to)
    if chain[-1] != GENERAL:
        chain.append(GENERAL)
    return chain


@pytest.mark.parametrize("queue_id", sorted(TABLE.queues))
def test_overflow_chain_follows_the_table_and_ends_at_an_existing_queue(queue_id: str) -> None:
    result = call("12345", engine(AGISTATUS="SUCCESS", HOTLINE_ACTION="queue", HOTLINE_TARGET=queue_id),
                  queue=unanswered)
    chain = _table_chain(queue_id)
    assert result.queues == chain[:-1] + [GENERAL] * GENERAL_TRIES
    assert set(result.queues) <= QUEUE_SECTIONS
    assert result.apps()[-2:] == ["Playback", "Hangup"]     # a clear announcement, not silence
    for step in result.trace:
        if step.app == "Queue" and TABLE.queues[step.args.split(",")[0]].overflow:
            overflow = TABLE.queues[step.args.split(",")[0]].overflow
            assert step.args.split(",")[4] == str(overflow.after_seconds)


@pytest.mark.parametrize("queue_id", sorted(TABLE.queues))
def test_queue_action_reaches_its_queue_with_transfer_options(queue_id: str) -> None:
    result = call("12345", engine(AGISTATUS="SUCCESS", HOTLINE_ACTION="queue", HOTLINE_TARGET=queue_id))
    assert result.queues == [queue_id] and result.ended == "answered"
    queue_step = next(s for s in result.trace if s.app == "Queue")
    assert queue_step.args.split(",")[1] == "tT"


@pytest.mark.parametrize("trunk_id", sorted(t for t in TABLE.trunks if TABLE.trunks[t].kind != "carrier"))
def test_dial_action_whitelist(trunk_id: str) -> None:
    trunk = TABLE.trunks[trunk_id]
    ok = call("12345", engine(AGISTATUS="SUCCESS", HOTLINE_ACTION="dial", HOTLINE_TARGET=trunk_id),
              dial_effect=dial("ANSWER"))
    assert ok.dials == [f"PJSIP/{trunk.dial}@{trunk.id}"] and ok.ended == "hangup" and ok.queues == []
    failed = call("12345", engine(AGISTATUS="SUCCESS", HOTLINE_ACTION="dial", HOTLINE_TARGET=trunk_id),
                  dial_effect=dial("NOANSWER"))
    if trunk.kind == "emergency":
        assert failed.queues == [] and len(failed.dials) == 3
    else:
        assert failed.queues == [GENERAL] and failed.variables["HOTLINE_FAILOPEN"] == "dial-NOANSWER"


def test_hangup_and_callback_actions() -> None:
    hung = call("12396", engine(AGISTATUS="SUCCESS", HOTLINE_ACTION="hangup"))
    assert hung.ended == "hangup" and hung.queues == [] and hung.apps()[-1] == "Hangup"
    back = call("12345", engine(AGISTATUS="SUCCESS", HOTLINE_ACTION="callback", HOTLINE_TARGET="business-environment",
                                HOTLINE_CALLBACK="13800000000"))
    # the engine already said goodbye (the menus' accepted prompt): the dialplan plays nothing more
    assert back.queues == [] and "Playback" not in back.apps() and back.apps()[-1] == "Hangup"


def test_second_engine_is_tried_only_when_the_first_cannot_be_reached() -> None:
    plan = parse(render(TABLE, RenderOptions(engines=("agi://10.0.0.1:4573", "hagi://engines.invalid")))[
        "extensions_hotline.conf"])
    answers = iter([{"AGISTATUS": "FAILURE"},
                    {"AGISTATUS": "SUCCESS", "HOTLINE_ACTION": "queue", "HOTLINE_TARGET": "expert-12320"}])
    result = run(plan, "hotline-from-carrier", "12320", {}, {"AGI": lambda c, a: next(answers), "Queue": answered})
    assert result.agi == ["agi://10.0.0.1:4573/route", "hagi://engines.invalid/route"]
    assert result.queues == ["expert-12320"]
    # NOTFOUND (the engine answered but has no such script) is not retried elsewhere: it fails open.
    result = run(plan, "hotline-from-carrier", "12320", {},
                 {"AGI": engine(AGISTATUS="NOTFOUND"), "Queue": answered})
    assert result.agi == ["agi://10.0.0.1:4573/route"] and result.queues == [GENERAL]


def test_whitelists_are_exactly_the_table() -> None:
    def targets(context: str) -> set[str]:
        return {re.search(r'= "([^"]+)"', s.args).group(1) for s in PLAN.contexts[context]["s"]
                if s.app == "GotoIf" and s.args.startswith('$["${HOTLINE_SAFE_TARGET}" = "')}
    assert targets("hotline-action-queue") == set(TABLE.queues)
    assert targets("hotline-action-dial") == {t for t, v in TABLE.trunks.items() if v.kind != "carrier"}


FORBIDDEN_IN_EMERGENCY = {"Queue", "GotoIfTime", "ExecIfTime", "IFTIME"}


def test_emergency_paths_have_no_time_check_and_no_queue() -> None:
    entries = [("hotline-emergency", ext) for ext in PLAN.contexts["hotline-emergency"]]
    entries += [("hotline-failopen", did) for did in EMERGENCY_DIDS]
    entries += [("hotline-warm-transfer", did) for did in EMERGENCY_DIDS]
    entries += [("hotline-threeway", TABLE.trunks[TABLE.lines[did].rules[-1].trunk].dial) for did in EMERGENCY_DIDS]
    assert len(PLAN.contexts["hotline-emergency"]) == len(EMERGENCY_DIDS) == 4
    for context, exten in entries:
        steps = reachable(PLAN, context, exten)
        assert steps, (context, exten)
        apps = {s.app for s in steps}
        assert not apps & FORBIDDEN_IN_EMERGENCY, (context, exten, apps)
        assert not any("IFTIME" in s.args for s in steps)
    # the engine owns business hours: no time check anywhere in the generated dialplan
    assert not {s.app for s in PLAN.steps()} & {"GotoIfTime", "ExecIfTime"}
    assert not any("IFTIME" in s.args for s in PLAN.steps())


def test_transfer_contexts_use_digit_extensions_for_atxfer() -> None:
    warm = set(PLAN.contexts["hotline-warm-transfer"])
    assert warm == {"12348", "12333", "110", "119", "120", "122", "i"}
    threeway = set(PLAN.contexts["hotline-threeway"])
    assert threeway == {"caller", "agent", "target", "conf", "12360", "12366", "12305", "110", "119", "120", "122"}
    for digits in ("12348", "12333"):
        steps = PLAN.contexts["hotline-warm-transfer"][digits]
        assert any(s.app == "Dial" and s.args == f"PJSIP/{digits}@seat-{digits},30" for s in steps)
    for digits in ("12360", "12366", "12305"):
        steps = PLAN.contexts["hotline-threeway"][digits]
        assert any(s.app == "Dial" and s.args == f"PJSIP/{digits}@subcenter-{digits},45" for s in steps)


def test_threeway_caller_without_a_room_is_not_dropped() -> None:
    result = run(PLAN, "hotline-threeway", "caller", {"HOTLINE_DIALED": "12360"}, {"Queue": answered})
    assert result.queues == [GENERAL]
    joined = run(PLAN, "hotline-threeway", "caller", {"HOTLINE_CONF": "abc", "HOTLINE_DIALED": "12360"}, {})
    assert "ConfBridge" in joined.apps() and joined.variables["CONFBRIDGE(user,end_marked_any)"] == "yes"


def test_timeout_extension_lives_in_the_agi_context() -> None:
    agi_contexts = {s.context for s in PLAN.steps() if s.app == "AGI"}
    assert agi_contexts == {"hotline-engine"}
    assert "T" in PLAN.contexts["hotline-engine"]
    # the absolute timeout is cleared right after AGI so it cannot cut a queued call
    steps = PLAN.contexts["hotline-engine"]["_X."]
    after = steps[[s.app for s in steps].index("AGI") + 1]
    assert after.app == "Set" and after.args == "TIMEOUT(absolute)=0"


@pytest.mark.parametrize("queue_id", sorted(TABLE.queues))
def test_escalation_moves_a_caller_into_the_queue_context(queue_id: str) -> None:
    variables = {"HOTLINE_DIALED": "12320", "HOTLINE_LINE": "12320", "HOTLINE_TAGS": "health"}
    result = run(PLAN, "hotline-escalate", queue_id, variables, {"Queue": answered})
    assert result.queues == [queue_id] and result.variables["HOTLINE_TAGS"] == "health"


def test_escalation_to_an_unknown_queue_fails_open() -> None:
    result = run(PLAN, "hotline-escalate", "nope", {"HOTLINE_DIALED": "12320"}, {"Queue": answered})
    assert result.queues == [GENERAL] and result.variables["HOTLINE_FAILOPEN"] == "unknown-escalation"


def test_a_stale_dialplan_is_reported_but_the_call_still_goes_through() -> None:
    same = call("12345", engine(AGISTATUS="SUCCESS", HOTLINE_ACTION="queue", HOTLINE_TARGET="expert-12320",
                                HOTLINE_TABLE=TABLE.version))
    other = call("12345", engine(AGISTATUS="SUCCESS", HOTLINE_ACTION="queue", HOTLINE_TARGET="expert-12320",
                                 HOTLINE_TABLE="0123abc"))
    assert "Log" not in same.apps() and same.queues == ["expert-12320"]
    warning = next(s for s in other.trace if s.app == "Log")
    assert warning.args.startswith("WARNING,") and other.queues == ["expert-12320"]


@pytest.mark.parametrize("did", EMERGENCY_DIDS)
def test_emergency_hand_over_by_redirect_to_the_warm_transfer_context(did: str) -> None:
    result = run(PLAN, "hotline-warm-transfer", did, {"HOTLINE_DIALED": "12345"},
                 {"Dial": dial("CHANUNAVAIL"), "Queue": answered})
    assert result.queues == [] and len(result.dials) == 3 and result.ended == "hangup"


def test_unknown_transfer_digits_never_strand_a_caller() -> None:
    caller = run(PLAN, "hotline-warm-transfer", "99999", {"HOTLINE_DIALED": "12348"}, {"Queue": answered})
    assert caller.queues == [GENERAL] and caller.variables["HOTLINE_FAILOPEN"] == "unknown-transfer-target"
    agent_leg = run(PLAN, "hotline-warm-transfer", "99999", {}, {"Queue": answered})
    assert agent_leg.queues == [] and agent_leg.ended == "hangup"
