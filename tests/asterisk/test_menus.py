"""The IVR menus (conf/ivr.yaml) driven by DTMF on the real Asterisk: a valid key, a submenu and back, repeat, an
invalid key then a valid one, invalid keys and silence until the retries run out, the language switch and the
callback request (number entered, or the caller's own), each checked in what the caller heard (the AGI
commands), the variables the dialplan read, where the call went and what the engine recorded.

The menus are the shipped ones with shorter waits (2 s for a key, 3 s in the callback), so the retries run out
in seconds; everything else is as shipped. All calls run at once on one rig, with distinct callers.
"""
from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass

import pytest

from records.schema import callback_requests, calls
from routing.privacy import mask_number
from tests.asterisk.harness import ROOT
from tests.asterisk.scenario import Script, hang_up, records, run_all

NOW = "2026-12-02T10:00"    # a working day inside every seat's hours
ZH, EN = "hotline/zh/", "hotline/en/"


@dataclass(frozen=True)
class Case:
    keys: tuple[str, ...]
    queue: str | None              # None: no queue (callback)
    tags: str
    path: str
    heard: tuple[str, ...]         # every sound the caller heard, in order (prompts of GET OPTION / DATA too)
    did: str = "12345"
    lang: str = "zh"
    action: str = "queue"
    at: str = NOW


MAIN = ZH + "main-menu"
CASES = {
    "valid-key": Case(("1",), "general-12345", "general", "main>1", (MAIN,)),
    "valid-key-other-queue": Case(("4",), "minors-protection", "general+minors", "main>4", (MAIN,)),
    "submenu": Case(("5", "2"), "city-sanya", "general+sanya", "main>5>cities>2", (MAIN, ZH + "cities-menu")),
    "previous": Case(("5", "*", "2"), "general-12345", "general+complaint", "main>5>cities>*>main>2",
                     (MAIN, ZH + "cities-menu", MAIN)),
    "repeat": Case(("#", "1"), "general-12345", "general", "main>#>1", (MAIN, MAIN)),
    "invalid-then-valid": Case(("7", "1"), "general-12345", "general", "main>7>1",
                               (MAIN, ZH + "invalid-choice", MAIN)),
    "invalid-until-retries-run-out": Case(("7", "7", "7"), "general-12345", "general", "main>7>7>7",
                                          (MAIN, ZH + "invalid-choice", MAIN, ZH + "invalid-choice", MAIN,
                                           ZH + "invalid-choice")),
    # no key at all: the timeout prompt after each of the first two silences, then an agent
    "timeout": Case((), "general-12345", "general", "main>t>t>t",
                    (MAIN, ZH + "no-input", MAIN, ZH + "no-input", MAIN)),
    "language-en": Case(("9", "1"), "general-12345", "general", "main>9>1", (MAIN, EN + "main-menu"), lang="en"),
    # a menu's own after_retries (12320: one retry, then 12345 tagged health)
    "expert-menu-retries": Case(("7", "7"), "general-12345", "health", "expert-12320>7>7",
                                (ZH + "expert-12320-menu", ZH + "invalid-choice", ZH + "expert-12320-menu",
                                 ZH + "invalid-choice"), did="12320"),
    "subcenter-in-english": Case(("9", "2"), "general-12345", "tax+specialist", "subcenter>9>2",
                                 (ZH + "subcenter-menu", EN + "subcenter-menu"), did="12366", lang="en"),
    # key 6, digits ended by #, confirmed with 1
    "callback-entered-number": Case(("6", "6677889#", "1"), None, "general", "main>6",
                                    (MAIN, ZH + "callback-enter-number", ZH + "callback-number-is",
                                     ZH + "callback-confirm", ZH + "callback-accepted"), action="callback"),
    # # alone: the caller's own number
    "callback-own-number": Case(("6", "#", "1"), None, "general", "main>6",
                                (MAIN, ZH + "callback-enter-number", ZH + "callback-number-is",
                                 ZH + "callback-confirm", ZH + "callback-accepted"), action="callback"),
    # too short a number: said so, asked again
    "callback-too-short-then-valid": Case(("6", "12#", "6677889#", "1"), None, "general", "main>6",
                                          (MAIN, ZH + "callback-enter-number", ZH + "callback-invalid",
                                           ZH + "callback-enter-number", ZH + "callback-number-is",
                                           ZH + "callback-confirm", ZH + "callback-accepted"), action="callback"),
    # a menu choice of a closed seat follows that seat's when_closed: the business seat offers a callback
    "closed-seat-offers-callback": Case(("3", "#", "1"), None, "general+business-environment", "main>3",
                                        (MAIN, "hotline/business-seat-closed", ZH + "callback-enter-number",
                                         ZH + "callback-number-is", ZH + "callback-confirm",
                                         ZH + "callback-accepted"), action="callback", at="2026-12-02T23:00"),
}
# the number each callback request is for (None: the caller's own) and the queue that is to call back
CALLBACK_NUMBERS = {"callback-entered-number": ("6677889", "general-12345"),
                    "callback-own-number": (None, "general-12345"),
                    "callback-too-short-then-valid": ("6677889", "general-12345"),
                    "closed-seat-offers-callback": (None, "business-environment")}


def short_menus(text: str) -> str:
    text = text.replace("timeout_seconds: 5 ", "timeout_seconds: 2 ", 1)
    return re.sub(r"(callback:\n(?:  .*\n)*?  timeout_seconds:) 8", r"\1 3", text)


@pytest.fixture(scope="module")
def rig(make_rig, workdir):
    menus = workdir / "cov-menus-ivr.yaml"
    shipped = (ROOT / "conf" / "ivr.yaml").read_text(encoding="utf-8")
    menus.write_text(short_menus(shipped), encoding="utf-8")
    assert menus.read_text(encoding="utf-8").count("timeout_seconds: ") == 2
    assert "timeout_seconds: 5" not in menus.read_text() and "timeout_seconds: 8" not in menus.read_text()
    return make_rig("cov-menus", engine_env={"HOTLINE_IVR_MENUS": str(menus)})


def caller_of(index: int) -> str:
    return f"1370000{index:04d}"


@pytest.fixture(scope="module")
def placed(rig):
    """Every case at once; the language each queued caller's channel has, read while it waits."""
    async def go():
        async with rig.ami() as ami:
            scripts = {name: Script(c.did, at=c.at, keys=c.keys, caller=caller_of(i))
                       for i, (name, c) in enumerate(CASES.items())}
            results = await run_all(ami, scripts, "mn")
            languages = {name: await ami.getvar(r.tag, "CHANNEL(language)")
                         for name, r in results.items() if r.joins}
            callback_playbacks = {name: [e.get("AppData", "") for e in ami.find(
                "Newexten", Uniqueid=re.escape(r.tag), Application="Playback")]
                for name, r in results.items()}
            await hang_up(ami, results)
            return results, languages, callback_playbacks

    return asyncio.run(go())


@pytest.mark.parametrize("name", list(CASES))
def test_menu(name, placed):
    results, languages, _ = placed
    case, got = CASES[name], results[name]
    assert not got.error, got.error
    v = got.vars
    assert "HOTLINE_FAILOPEN" not in v
    assert v.get("HOTLINE_IVR_PATH") == case.path
    assert v.get("HOTLINE_TAGS") == case.tags
    assert v.get("HOTLINE_LANG") == case.lang
    assert v.get("HOTLINE_ACTION") == case.action
    assert tuple(got.sounds()) == case.heard
    if case.queue:
        assert v.get("HOTLINE_TARGET") == case.queue
        assert got.joins and got.joins[0]["Queue"] == case.queue
        # Asterisk's own language on the channel follows the caller's choice (SAY DIGITS, the queue's sounds)
        assert languages[name] == case.lang
    else:
        assert got.joins == []


@pytest.mark.parametrize("name", list(CALLBACK_NUMBERS))
def test_callback_is_captured_and_recorded(name, rig, placed):
    results, _, _ = placed
    got = results[name]
    index = list(CASES).index(name)
    number, queue = CALLBACK_NUMBERS[name]
    number = number or caller_of(index)
    # the number read back to the caller, and only a masked one on the channel
    assert f"SAY DIGITS {number} \"\"" in got.commands
    assert got.vars.get("HOTLINE_TARGET") == queue
    callback_var = got.vars.get("HOTLINE_CALLBACK", "")
    assert callback_var == mask_number(number) and number not in callback_var
    request = records(rig.engine.db_url, callback_requests, [got.tag])[got.tag]
    assert (request["queue"], request["line"], request["status"]) == (queue, "12345", "pending")
    assert request["number_masked"] == callback_var and request["number_encrypted"]
    call = records(rig.engine.db_url, calls, [got.tag])[got.tag]
    assert (call["outcome"], call["action"], call["ivr_path"]) == ("callback", "callback", CASES[name].path)


def test_callback_caller_hears_one_goodbye(placed):
    results, _, playbacks = placed
    got = results["callback-entered-number"]
    goodbyes = [s for s in got.sounds() if s.endswith("callback-accepted")] + [
        p for p in playbacks["callback-entered-number"] if "callback" in p]
    assert len(goodbyes) == 1, goodbyes
