"""Engines listed in the dialplan and sounds on the box, on the real Asterisk.

- Two engines listed, the first one down (nothing listening): AGI() to it ends FAILURE at once, the dialplan
  tries the second, which serves the call as if it were the only one (no fail-open), 110 included.
- No sound files at all (a PBX installed without our prompts): Asterisk cannot play a prompt, the engine probes
  the channel, logs `ivr.prompt_unplayable` and hands over the decision it had; the dialplan carries it out
  (README, "Generated Asterisk configuration": FAILURE after the engine decided). The caller still reaches the
  line's queue with its line and tags, and 110 is dialed as always.
"""
from __future__ import annotations

import asyncio
import json
import re

import pytest

from tests.asterisk.harness import Ami
from tests.asterisk.scenario import Script, hang_up, run_all

NOW = "2026-12-02T10:00"


def agi_attempts(ami: Ami, tag: str) -> list[str]:
    return [e["AppData"] for e in ami.find("Newexten", Uniqueid=re.escape(tag), Application="AGI")]


def agi_statuses(ami: Ami, tag: str) -> list[str]:
    return [e["Value"] for e in ami.find("VarSet", Uniqueid=re.escape(tag), Variable="AGISTATUS")]


def engine_events(engine, uniqueid: str) -> list[dict]:
    out = []
    for line in engine.log().splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if entry.get("uniqueid") == uniqueid:
            out.append(entry)
    return out


TWO_ENGINE_CASES = {
    "12345-key-1": (Script("12345", at=NOW, keys=("1",), caller="13600000001"), "queue", "general-12345"),
    "12396": (Script("12396", at=NOW, caller="13600000002"), "queue", "general-12345"),
    "110": (Script("110", at=NOW, caller="13600000003"), "dial", "emergency-110"),
}


@pytest.fixture(scope="module")
def two_engines(make_rig):
    rig = make_rig("cov-twoengines", dead_engines=1)

    async def go():
        async with rig.ami() as ami:
            results = await run_all(ami, {k: s for k, (s, _, _) in TWO_ENGINE_CASES.items()}, "te")
            attempts = {k: agi_attempts(ami, r.tag) for k, r in results.items()}
            statuses = {k: agi_statuses(ami, r.tag) for k, r in results.items()}
            await hang_up(ami, results)
            return results, attempts, statuses

    return rig, *asyncio.run(go())


@pytest.mark.parametrize("name", list(TWO_ENGINE_CASES))
def test_second_engine_serves_when_the_first_is_down(name, two_engines):
    rig, results, attempts, statuses = two_engines
    _, action, target = TWO_ENGINE_CASES[name]
    got = results[name]
    assert not got.error, got.error
    live = rig.engine.url
    # the dead engine first (its port is the other one in the list), then the live one
    assert len(attempts[name]) == 2 and not attempts[name][0].startswith(live)
    assert attempts[name][1].startswith(live)
    assert statuses[name] == ["FAILURE", "SUCCESS"]
    assert "HOTLINE_FAILOPEN" not in got.vars
    assert (got.vars.get("HOTLINE_ACTION"), got.vars.get("HOTLINE_TARGET")) == (action, target)
    if action == "dial":
        assert got.dials and got.dials[0]["DestChannel"].startswith(f"PJSIP/{target}-")
    else:
        assert got.joins[0]["Queue"] == target
    # and it was the live engine that ran the session
    assert any(e.get("event") == "ivr.destination" for e in engine_events(rig.engine, got.tag))


NO_SOUND_CASES = {
    # an announcement that cannot play: the caller still goes where the cancelled line leads, as that line
    "12396": (Script("12396", at=NOW, caller="13500000001"), "general-12345", "12396", "science-technology"),
    # the main menu's prompt cannot play: the route (an agent), no key waited for
    "12345": (Script("12345", at=NOW, caller="13500000002"), "general-12345", "12345", "general"),
    # the expert line's menu cannot play: its own queue, the expert seat
    "12320": (Script("12320", at=NOW, caller="13500000003"), "expert-12320", "12320", "health"),
    "110": (Script("110", at=NOW, caller="13500000004"), "emergency-110", "110", "emergency"),
}


@pytest.fixture(scope="module")
def no_sounds(make_rig):
    rig = make_rig("cov-nosounds", sounds=False)

    async def go():
        async with rig.ami() as ami:
            results = await run_all(ami, {k: s for k, (s, *_) in NO_SOUND_CASES.items()}, "ns")
            statuses = {k: agi_statuses(ami, r.tag) for k, r in results.items()}
            await hang_up(ami, results)
            return results, statuses

    return rig, *asyncio.run(go())


@pytest.mark.parametrize("name", list(NO_SOUND_CASES))
def test_missing_sounds_still_give_the_caller_the_decision(name, no_sounds):
    rig, results, statuses = no_sounds
    _, target, line, tags = NO_SOUND_CASES[name]
    got = results[name]
    assert not got.error, got.error
    assert "HOTLINE_FAILOPEN" not in got.vars
    assert (got.vars.get("HOTLINE_TARGET"), got.vars.get("HOTLINE_LINE"), got.vars.get("HOTLINE_TAGS")) == (
        target, line, tags)
    if name == "110":
        assert got.dials and got.dials[0]["DestChannel"].startswith(f"PJSIP/{target}-")
        assert statuses[name] == ["SUCCESS"]
        return
    assert got.joins and got.joins[0]["Queue"] == target
    # one prompt tried, then the channel probed; nothing else was played or waited for
    assert [c for c in got.commands if c.startswith(("STREAM FILE", "GET OPTION", "GET DATA"))] == got.commands[2:3]
    assert "CHANNEL STATUS" in got.commands
    unplayable = [e for e in engine_events(rig.engine, got.tag) if e.get("event") == "ivr.prompt_unplayable"]
    assert len(unplayable) == 1 and unplayable[0]["sound"] == got.sounds()[0]
    # res_agi keeps FAILURE for the failed playback; the dialplan still carries the decision out, and says why
    assert statuses[name] == ["FAILURE"]
    assert "AGI ended FAILURE after the engine decided" in rig.pbx.log_text()
