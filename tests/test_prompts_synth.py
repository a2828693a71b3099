"""Prompt sounds (ivr/prompts.py, `hotline menus prompts --sounds-dir DIR [--generate]`): which files are missing,
generated or recorded, the synthesizer's command lines, and one real espeak-ng + sox run per language."""
from __future__ import annotations

import shutil
import subprocess
import wave
from pathlib import Path

import pytest
from click.testing import CliRunner

from ivr import prompts as p
from scripts.hotline import cli

ROOT = Path(__file__).resolve().parents[1]
TEXTS = p.load_prompt_texts(ROOT / "conf" / "prompts.txt")
TOOLS = p.missing_tools()
needs_tools = pytest.mark.skipif(bool(TOOLS),
                                 reason=f"{' and '.join(TOOLS)} not installed (apt-get install espeak-ng sox)")


def fake_synth(calls: list):
    """A runner standing for espeak-ng/sox: writes a file where the real ones would, records the command."""
    def run(cmd, **kw):
        calls.append(cmd)
        out = Path(cmd[cmd.index("-w") + 1]) if cmd[0] == "espeak-ng" else Path(cmd[cmd.index("-t") + 2])
        out.write_bytes(b"RIFF" + " ".join(cmd).encode())
        return subprocess.CompletedProcess(cmd, 0, "", "")
    return run


# ---------------------------------------------------------------------------------------------- texts, speech


def test_every_line_of_the_shipped_prompts_txt_parses_and_bad_lines_are_all_reported():
    assert "hotline/zh/main-menu" in TEXTS and len(TEXTS) >= 30
    with pytest.raises(p.PromptTextError) as exc:
        p.parse_prompt_texts("# c\na/b | 中 | en\nbad line\na/b | x | y\n../x | 中 | en\n", "t.txt")
    assert exc.value.problems == ["t.txt:3: want 'name | 中文 | English'", "t.txt:4: a/b listed twice (first on line 2)",
                                  "t.txt:5: '../x' is not a sound name (letters, digits, _ / . -)"]


def test_the_language_of_a_prompt_follows_its_name():
    assert p.spoken_languages("hotline/zh/main-menu") == ("zh",)
    assert p.spoken_languages("hotline/en/main-menu") == ("en",)
    assert p.spoken_languages("hotline/welcome-12345") == ("zh", "en")


def test_mandarin_prompts_say_the_chinese_text_and_their_english_words_in_the_english_voice():
    segs = p.segments(TEXTS["hotline/zh/main-menu"])
    assert [s.voice for s in segs] == [p.MANDARIN_VOICE, p.ENGLISH_VOICE]
    assert segs[0].text.startswith("您好，欢迎致电海南1 2 3 4 5政务")
    assert "(Mandarin)" not in "".join(s.text for s in segs)
    assert segs[1].text == "For English, press 9."


def test_english_prompts_say_the_english_text_and_the_chinese_offer_in_mandarin():
    segs = p.segments(TEXTS["hotline/en/main-menu"])
    assert [(s.voice, s.text) for s in segs][-1] == (p.MANDARIN_VOICE, "中文服务请按8.")
    assert segs[0].voice == p.ENGLISH_VOICE and segs[0].text.startswith("Welcome to the Hainan 1 2 3 4 5 citizen")


def test_bilingual_prompts_are_mandarin_then_a_pause_then_english():
    segs = p.segments(TEXTS["hotline/emergency-unreachable"])
    assert [(s.voice, s.pause_ms) for s in segs] == [(p.MANDARIN_VOICE, p.LANGUAGE_PAUSE_MS), (p.ENGLISH_VOICE, 0)]
    assert "1 1 0、1 1 9、1 2 0或1 2 2" in segs[0].text and "dial 1 1 0, 1 1 9" in segs[1].text


def test_the_command_lines():
    cmd, stdin = p.espeak_command(p.Segment("en", "press <1> & wait", 600), Path("/t/0.wav"))
    assert cmd == ["espeak-ng", "-m", "-v", "en", "-s", str(p.WORDS_PER_MINUTE), "-w", "/t/0.wav", "--stdin"]
    assert stdin == 'press &lt;1&gt; &amp; wait<break time="600ms"/>'
    assert p.sox_command([Path("/t/0.wav"), Path("/t/1.wav")], Path("/t/o.wav")) == [
        "sox", "/t/0.wav", "/t/1.wav", "-r", "8000", "-c", "1", "-b", "16", "-e", "signed-integer", "-t", "wav",
        "/t/o.wav", "gain", "-n", "-3"]


def test_the_speech_id_changes_with_the_text_only():
    prompt = TEXTS["hotline/zh/no-input"]
    same = p.PromptText(prompt.name, prompt.zh, prompt.en, line=99)
    changed = p.PromptText(prompt.name, prompt.zh + "谢谢。", prompt.en)
    assert p.speech_id(same) == p.speech_id(prompt) != p.speech_id(changed)


# ---------------------------------------------------------------------------------------------- states, plan


def test_classify():
    manifest = p.Manifest({"a/x.wav": {"sha256": "h1", "speech": "s1"}})
    assert p.classify("a/x", {}, manifest, "s1").state is p.State.MISSING
    assert p.classify("a/x", {"a/x.wav": "h1"}, manifest, "s1").state is p.State.GENERATED
    assert p.classify("a/x", {"a/x.wav": "h1"}, manifest, "s2").state is p.State.STALE
    # the admin overwrote our file, or put another format beside it: a recording, ours listed to remove
    assert p.classify("a/x", {"a/x.wav": "h9"}, manifest, "s1") == p.SoundState("a/x", p.State.RECORDED, ("a/x.wav",))
    both = p.classify("a/x", {"a/x.wav": "h1", "a/x.gsm": "h2"}, manifest, "s1")
    assert (both.state, both.recorded, both.generated) == (p.State.RECORDED, ("a/x.gsm",), ("a/x.wav",))
    assert not p.classify("a/x", {}, manifest, None).has_text


def test_plan_writes_missing_and_stale_removes_shadowed_and_never_touches_recordings():
    states = [p.SoundState("m", p.State.MISSING), p.SoundState("s", p.State.STALE, generated=("s.wav",)),
              p.SoundState("g", p.State.GENERATED, generated=("g.wav",)),
              p.SoundState("r", p.State.RECORDED, ("r.wav",)),
              p.SoundState("rg", p.State.RECORDED, ("rg.gsm",), ("rg.wav",)),
              p.SoundState("n", p.State.MISSING, has_text=False)]
    assert p.plan(states) == p.Plan(write=("m", "s"), remove=("rg.wav",), untextable=("n",))


def test_survey_and_generate_on_a_directory(tmp_path):
    names = ["hotline/zh/no-input", "hotline/en/no-input", "hotline/zh/invalid-choice"]
    rec = tmp_path / "hotline" / "en" / "no-input.gsm"
    rec.parent.mkdir(parents=True)
    rec.write_bytes(b"the admin's recording")
    (tmp_path / "hotline" / "zh").mkdir()
    (tmp_path / "hotline" / "zh" / "no-input.txt").write_text("not a sound")
    states = {s.name: s.state for s in p.survey(tmp_path, names, TEXTS)}
    assert states == {"hotline/zh/no-input": p.State.MISSING, "hotline/en/no-input": p.State.RECORDED,
                      "hotline/zh/invalid-choice": p.State.MISSING}
    calls: list = []
    p.generate(tmp_path, p.plan(p.survey(tmp_path, names, TEXTS)), TEXTS, run=fake_synth(calls))
    assert [c[0] for c in calls] == ["espeak-ng", "sox", "espeak-ng", "sox"]
    assert rec.read_bytes() == b"the admin's recording"
    assert {s.name: s.state for s in p.survey(tmp_path, names, TEXTS)}["hotline/zh/no-input"] is p.State.GENERATED
    assert sorted(p.read_manifest(tmp_path).files) == ["hotline/zh/invalid-choice.wav", "hotline/zh/no-input.wav"]
    # a recording dropped beside a generated file: ours is removed, theirs plays
    (tmp_path / "hotline" / "zh" / "no-input.sln").write_bytes(b"\0\0" * 800)
    calls.clear()
    p.generate(tmp_path, p.plan(p.survey(tmp_path, names, TEXTS)), TEXTS, run=fake_synth(calls))
    assert calls == [] and not (tmp_path / "hotline" / "zh" / "no-input.wav").exists()
    assert (tmp_path / "hotline" / "zh" / "no-input.sln").exists()
    # a recording written over a generated file: a recording from then on, never regenerated
    over = tmp_path / "hotline" / "zh" / "invalid-choice.wav"
    over.write_bytes(b"recorded over ours")
    p.generate(tmp_path, p.plan(p.survey(tmp_path, names, TEXTS)), TEXTS, run=fake_synth(calls))
    assert over.read_bytes() == b"recorded over ours" and calls == []


def test_a_changed_text_regenerates_only_generated_files(tmp_path):
    names = ["hotline/zh/no-input"]
    calls: list = []
    p.generate(tmp_path, p.plan(p.survey(tmp_path, names, TEXTS)), TEXTS, run=fake_synth(calls))
    edited = dict(TEXTS)
    edited["hotline/zh/no-input"] = p.PromptText("hotline/zh/no-input", "请按键。", "(Mandarin) Press a key.")
    assert p.survey(tmp_path, names, edited)[0].state is p.State.STALE
    calls.clear()
    p.generate(tmp_path, p.plan(p.survey(tmp_path, names, edited)), edited, run=fake_synth(calls))
    assert len(calls) == 2 and p.survey(tmp_path, names, edited)[0].state is p.State.GENERATED


# ---------------------------------------------------------------------------------------------- the command


def menus(*args: str):
    return CliRunner().invoke(cli, ["--log-format", "json", "menus", "prompts", *args])


def test_the_report_says_missing_generated_or_recorded_and_exits_1_while_any_is_missing(tmp_path):
    rec = tmp_path / "hotline" / "zh" / "main-menu.wav"
    rec.parent.mkdir(parents=True)
    rec.write_bytes(b"RIFF")
    result = menus("--sounds-dir", str(tmp_path))
    assert result.exit_code == 1
    lines = dict(line.split("  ", 1) for line in result.stdout.splitlines())
    assert lines["hotline/zh/main-menu"] == "recorded  hotline/zh/main-menu.wav"
    assert lines["hotline/en/main-menu"] == "missing"
    assert lines["hotline/emergency-unreachable"] == "missing"      # the dialplan's prompts too (prompts.txt)
    assert f"1 recorded of {len(TEXTS)} prompts under {tmp_path}" in result.stderr


def test_generate_needs_a_sounds_dir():
    result = menus("--generate")
    assert result.exit_code == 2 and "--generate needs --sounds-dir" in result.stderr


# ---------------------------------------------------------------------------------------------- the real tools


@needs_tools
def test_espeak_ng_and_sox_make_8khz_mono_speech_in_both_languages(tmp_path):
    names = ["hotline/zh/invalid-choice", "hotline/en/invalid-choice"]
    p.generate(tmp_path, p.plan(p.survey(tmp_path, names, TEXTS)), TEXTS)
    for name in names:
        with wave.open(str(tmp_path / (name + ".wav"))) as w:
            assert (w.getframerate(), w.getnchannels(), w.getsampwidth(), w.getcomptype()) == (8000, 1, 2, "NONE")
            seconds = w.getnframes() / 8000
            frames = w.readframes(w.getnframes())
        assert seconds > 0.3, (name, seconds)
        assert max(abs(int.from_bytes(frames[i:i + 2], "little", signed=True)) for i in range(0, len(frames), 2)) > 1000
    assert {s.state for s in p.survey(tmp_path, names, TEXTS)} == {p.State.GENERATED}


@needs_tools
def test_the_mandarin_voice_speaks_mandarin_not_pinyin_spelt_in_english():
    # Debian's espeak-ng 1.51 `cmn` says 你好 as "ni three hao three" (it switches to English for the tones)
    zh = p.segments(TEXTS["hotline/zh/invalid-choice"])[0]
    phonemes = subprocess.run(["espeak-ng", "-q", "-x", "-v", zh.voice, zh.text], capture_output=True, text=True,
                              check=True).stdout
    assert phonemes.strip() and "(en)" not in phonemes, phonemes


def test_the_generate_command_without_the_tools_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda tool: None)
    result = menus("--sounds-dir", str(tmp_path), "--generate")
    assert result.exit_code == 1
    assert "espeak-ng and sox not installed (Debian: apt-get install espeak-ng sox)" in result.stderr
