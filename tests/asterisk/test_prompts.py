"""Generated prompts on the real Asterisk: a sounds directory filled by the admin's one command (`hotline menus
prompts --sounds-dir DIR --generate`: espeak-ng + sox, 8 kHz mono .wav), a PBX whose hotline sounds are those
files, and one call to 12345 that hears the Mandarin main menu, a key 1 s in (barge-in), the Mandarin
invalid-choice prompt to its end, the main menu again, 9 for English and the English main menu. res_agi logs
`Playing '<file>'` only once ast_openstream found the file, and answers `endpos=` with the samples it played."""
from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import wave

import pytest

from ivr.prompts import load_prompt_texts, missing_tools
from tests.asterisk.harness import ROOT, place_call, vars_after_engine
from tests.asterisk.scenario import press

NOW = "2026-12-02T10:00"
ZH_MENU, EN_MENU, INVALID = "hotline/zh/main-menu", "hotline/en/main-menu", "hotline/zh/invalid-choice"


@pytest.fixture(scope="module")
def sounds(workdir):
    if missing_tools():
        pytest.skip(f"{' and '.join(missing_tools())} not installed (apt-get install espeak-ng sox)")
    directory = workdir / "pr-sounds"
    res = subprocess.run([sys.executable, "-m", "scripts.hotline", "menus", "prompts", "--sounds-dir",
                          str(directory), "--generate"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr
    every = len(load_prompt_texts(ROOT / "conf" / "prompts.txt"))        # every prompt the hotline plays
    assert res.stderr.splitlines()[-1].startswith(f"0 missing, {every} generated"), res.stderr
    return directory


@pytest.fixture(scope="module")
def call(make_rig, sounds):
    rig = make_rig("pr-prompts", sounds_dir=sounds)

    async def listening(ami, tag, sound, count=1):
        await ami.wait("AGIExecStart", timeout=40, count=count, Uniqueid=re.escape(tag),
                       Command=f"GET OPTION {re.escape(sound)} .*")

    async def go():
        async with rig.ami() as ami:
            tag = await place_call(ami, "12345", caller="13900139001", stay=60, variables={"HOTLINE_AT": NOW},
                                   tag=f"pr{id(rig) % 10**6}")
            await listening(ami, tag, ZH_MENU)
            await asyncio.sleep(1)              # the prompt really plays for a second before the key
            await press(ami, tag, "7")
            await listening(ami, tag, ZH_MENU, count=2)   # after invalid-choice, played to its end
            await press(ami, tag, "9")
            await listening(ami, tag, EN_MENU)
            await press(ami, tag, "1")
            variables = await vars_after_engine(ami, tag, timeout=20)
            await ami.action("Hangup", Channel=f"ph{tag}")
            return tag, variables

    tag, variables = asyncio.run(go())
    return rig, tag, variables


def agi_reply(log: str, command: str) -> str:
    """Asterisk's answer to the first AGI command that starts so (agi debug: `AGI Rx << ...`, `AGI Tx >> ...`)."""
    m = re.search(rf"AGI Rx << {re.escape(command)}[^\n]*\n(?:(?!AGI Rx <<)[^\n]*\n)*?[^\n]*AGI Tx >> ([^\n]*)", log)
    assert m, f"no reply to {command!r} in the log"
    return m.group(1)


def test_the_generated_prompts_are_played_and_the_call_goes_on(call, sounds):
    rig, tag, variables = call
    log = rig.pbx.log_text()
    for sound in (ZH_MENU, INVALID, EN_MENU):
        # STREAM FILE names the format it opened (hotline/zh/invalid-choice.slin), GET OPTION does not
        assert re.search(rf"Playing '{re.escape(sound)}(\.\w+)?'", log), sound
    assert "ivr.prompt_unplayable" not in rig.engine.log()
    assert "Unable to open hotline/" not in log and "does not exist in any format" not in log
    # the key came a second into the Mandarin menu: Asterisk had streamed about 8000 samples of the file
    key = re.fullmatch(r"200 result=(\d+) endpos=(\d+)", agi_reply(log, f"GET OPTION {ZH_MENU}"))
    assert key and chr(int(key.group(1))) == "7" and 4000 < int(key.group(2)) < 40000, key
    # invalid-choice had no escape digits: played to the end of the generated file, sample for sample
    with wave.open(str(sounds / (INVALID + ".wav"))) as w:
        frames = w.getnframes()
    assert agi_reply(log, f"STREAM FILE {INVALID}") == f"200 result=0 endpos={frames}"
    assert (variables.get("HOTLINE_LANG"), variables.get("HOTLINE_TARGET")) == ("en", "general-12345")
    assert variables.get("HOTLINE_IVR_PATH") == "main>7>9>1"
