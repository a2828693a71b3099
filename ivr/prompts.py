"""Sound files for the prompts of conf/prompts.txt: which are missing, generated or recorded, and speech for the
missing ones from Debian's offline synthesizer (espeak-ng), converted by sox to what Asterisk's format_wav plays
(8 kHz, mono, 16-bit PCM .wav).

Generated files are listed in a manifest beside them (`<sounds dir>/.hotline-generated.json`: path -> sha256 of
the file and of the speech it says). A sound file that is not in it, or whose bytes changed since, is the
admin's recording: never overwritten, and it shadows (removes) the generated files of the same prompt.

The planning is pure (texts, segments, command lines, states, actions); `generate` is the thin subprocess edge.
"""
from __future__ import annotations

import enum
import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Mapping
from xml.sax.saxutils import escape

MANIFEST = ".hotline-generated.json"
GENERATED_SUFFIX = ".wav"
# Debian's espeak-ng 1.51 `cmn` voice speaks the pinyin of each character with its tone number in English
# ("ni three hao three"); `cmn-latn-pinyin` speaks the same dictionary as Mandarin. Its Latin text is read as
# pinyin, so Latin words go to the English voice (see segments()).
MANDARIN_VOICE = "cmn-latn-pinyin"
ENGLISH_VOICE = "en"
WORDS_PER_MINUTE = 150             # a little slower than espeak's 175: heard over a phone line
LANGUAGE_PAUSE_MS = 600            # between the Mandarin and the English half of a bilingual prompt
SYNTH_VERSION = 1                  # bump when the commands below change: every generated file is redone
# every extension an Asterisk 22 format module opens (format_wav, _wav_gsm, _gsm, _sln, _pcm, _g7xx, ...)
SOUND_EXTENSIONS = frozenset(
    "wav WAV wav49 gsm sln raw slin sln12 sln16 sln24 sln32 sln44 sln48 sln96 sln192 ulaw ul mu ulw pcm alaw "
    "al alw au g722 g719 g723 g723sf g726-40 g726-32 g726-24 g726-16 g729 ilbc vox siren7 siren14 ogg".split())

_CJK = re.compile(r"[\u2e80-\u9fff\u3000-\u303f\uff00-\uffef]")
_LATIN = re.compile(r"[A-Za-z]")
_LONG_NUMBER = re.compile(r"\d{3,}")


class PromptTextError(ValueError):
    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class PromptText:
    """One line of prompts.txt: what the sound says in Chinese and in English."""
    name: str
    zh: str
    en: str
    line: int = 0


def parse_prompt_texts(text: str, source: str = "prompts.txt") -> dict[str, PromptText]:
    """`name | 中文 | English` per line, # comments; every bad line is reported, none is half-read."""
    texts: dict[str, PromptText] = {}
    problems = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        parts = [p.strip() for p in line.split("|")]
        if len(parts) != 3 or not all(parts):
            problems.append(f"{source}:{number}: want 'name | 中文 | English'")
        elif not re.fullmatch(r"[A-Za-z0-9_/.-]+", parts[0]) or ".." in parts[0] or parts[0].startswith("/"):
            problems.append(f"{source}:{number}: '{parts[0]}' is not a sound name (letters, digits, _ / . -)")
        elif parts[0] in texts:
            problems.append(f"{source}:{number}: {parts[0]} listed twice (first on line {texts[parts[0]].line})")
        else:
            texts[parts[0]] = PromptText(parts[0], parts[1], parts[2], number)
    if problems:
        raise PromptTextError(problems)
    return texts


def load_prompt_texts(path: Path) -> dict[str, PromptText]:
    return parse_prompt_texts(path.read_text(encoding="utf-8"), str(path))


# ---------------------------------------------------------------------------------------------- speech


@dataclass(frozen=True)
class Segment:
    """A run of text for one espeak-ng voice, and the silence after it."""
    voice: str
    text: str
    pause_ms: int = 0


def spoken_languages(name: str) -> tuple[str, ...]:
    """hotline/zh/* are Mandarin, hotline/en/* English, the rest bilingual: Mandarin, then English."""
    parts = name.split("/")
    if "zh" in parts[:-1]:
        return ("zh",)
    if "en" in parts[:-1]:
        return ("en",)
    return ("zh", "en")


def _spell_numbers(text: str) -> str:
    # hotline numbers (12345, 110, 12320) are said digit by digit in both languages, never as amounts
    return _LONG_NUMBER.sub(lambda m: " ".join(m.group()), text)


def split_by_script(text: str, home_voice: str) -> list[Segment]:
    """Chinese characters for the Mandarin voice, Latin words for the English one; digits, spaces and
    punctuation stay with the run they are in (a text of only those: the home voice)."""
    runs: list[list] = []
    for char in text:
        voice = MANDARIN_VOICE if _CJK.match(char) else ENGLISH_VOICE if _LATIN.match(char) else None
        if runs and (voice is None or runs[-1][0] in (voice, None)):
            runs[-1][1] += char
            if runs[-1][0] is None:
                runs[-1][0] = voice
        else:
            runs.append([voice, char])
    return [Segment(voice or home_voice, _spell_numbers(chunk.strip()))
            for voice, chunk in runs if chunk.strip(" ,.;:，。；：、")]


def segments(prompt: PromptText) -> tuple[Segment, ...]:
    out: list[Segment] = []
    for language in spoken_languages(prompt.name):
        if out:
            out[-1] = Segment(out[-1].voice, out[-1].text, LANGUAGE_PAUSE_MS)
        if language == "zh":
            out += split_by_script(prompt.zh, MANDARIN_VOICE)
        else:
            out += split_by_script(prompt.en, ENGLISH_VOICE)
    return tuple(out)


def speech_id(prompt: PromptText) -> str:
    """Changes when what the file says, or how it is made, changes: then a generated file is redone."""
    spec = json.dumps([SYNTH_VERSION, WORDS_PER_MINUTE, [[s.voice, s.text, s.pause_ms] for s in segments(prompt)]],
                      ensure_ascii=False)
    return hashlib.sha256(spec.encode()).hexdigest()[:16]


def espeak_command(segment: Segment, wav: Path) -> tuple[list[str], str]:
    """The command line and its stdin (SSML: the text escaped, the pause as a <break>)."""
    text = escape(segment.text) + (f'<break time="{segment.pause_ms}ms"/>' if segment.pause_ms else "")
    return ["espeak-ng", "-m", "-v", segment.voice, "-s", str(WORDS_PER_MINUTE), "-w", str(wav), "--stdin"], text


def sox_command(parts: Iterable[Path], out: Path) -> list[str]:
    """Concatenate the parts into what format_wav plays; normalised to -3 dBFS (the resampling has headroom)."""
    return ["sox", *map(str, parts), "-r", "8000", "-c", "1", "-b", "16", "-e", "signed-integer", "-t", "wav",
            str(out), "gain", "-n", "-3"]


# ---------------------------------------------------------------------------------------------- states


class State(enum.Enum):
    MISSING = "missing"
    GENERATED = "generated"
    STALE = "stale"              # generated from an older text (or by an older synthesizer set-up)
    RECORDED = "recorded"


@dataclass(frozen=True)
class Manifest:
    """Files we generated: relative path -> {"sha256": of the bytes, "speech": speech_id}."""
    files: Mapping[str, Mapping[str, str]]

    @classmethod
    def parse(cls, text: str) -> "Manifest":
        data = json.loads(text) if text.strip() else {}
        files = data.get("files", {}) if isinstance(data, dict) else {}
        return cls({k: v for k, v in files.items() if isinstance(v, dict)})

    def dump(self) -> str:
        return json.dumps({"format": 1, "generator": "hotline menus prompts --generate",
                           "files": dict(sorted(self.files.items()))}, ensure_ascii=False, indent=1) + "\n"


@dataclass(frozen=True)
class SoundState:
    name: str
    state: State
    recorded: tuple[str, ...] = ()        # relative paths of the admin's files
    generated: tuple[str, ...] = ()       # relative paths of ours (still as we wrote them)
    has_text: bool = True


def classify(name: str, present: Mapping[str, str], manifest: Manifest, expected_speech: str | None) -> SoundState:
    """The state of one prompt from the sound files there are for it (relative path -> sha256)."""
    ours = tuple(sorted(p for p, digest in present.items() if manifest.files.get(p, {}).get("sha256") == digest))
    theirs = tuple(sorted(p for p in present if p not in ours))
    has_text = expected_speech is not None
    if theirs:
        state = State.RECORDED
    elif not ours:
        state = State.MISSING
    elif all(manifest.files[p].get("speech") == expected_speech for p in ours):
        state = State.GENERATED
    else:
        state = State.STALE
    return SoundState(name, state, theirs, ours, has_text)


@dataclass(frozen=True)
class Plan:
    write: tuple[str, ...]        # prompt names to synthesize (missing or stale)
    remove: tuple[str, ...]       # generated files shadowed by a recording
    untextable: tuple[str, ...]   # missing, with no text in prompts.txt to say


def plan(states: Iterable[SoundState]) -> Plan:
    write, remove, untextable = [], [], []
    for s in states:
        if s.state is State.RECORDED:
            remove += s.generated
        elif s.state in (State.MISSING, State.STALE) and s.has_text:
            write.append(s.name)
        elif s.state is State.MISSING:
            untextable.append(s.name)
    return Plan(tuple(write), tuple(remove), tuple(untextable))


# ---------------------------------------------------------------------------------------------- the edge


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def read_manifest(sounds_dir: Path) -> Manifest:
    path = sounds_dir / MANIFEST
    try:
        return Manifest.parse(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return Manifest({})
    except (ValueError, AttributeError) as exc:
        raise PromptTextError([f"{path}: not a manifest of generated prompts ({exc}); move it away"]) from exc


def sound_files(sounds_dir: Path, name: str) -> dict[str, str]:
    """Every file Asterisk could play for the name (any format it opens): relative path -> sha256."""
    base = sounds_dir / name
    if not base.parent.is_dir():
        return {}
    found = {}
    for path in base.parent.iterdir():
        stem, dot, ext = path.name.partition(".")
        if dot and stem == base.name and ext in SOUND_EXTENSIONS and path.is_file():
            found[path.relative_to(sounds_dir).as_posix()] = _sha256(path)
    return found


def survey(sounds_dir: Path, names: Iterable[str], texts: Mapping[str, PromptText]) -> list[SoundState]:
    manifest = read_manifest(sounds_dir)
    return [classify(name, sound_files(sounds_dir, name), manifest,
                     speech_id(texts[name]) if name in texts else None) for name in sorted(set(names))]


def missing_tools() -> list[str]:
    return [tool for tool in ("espeak-ng", "sox") if shutil.which(tool) is None]


Runner = Callable[..., subprocess.CompletedProcess]


def synthesize(prompt: PromptText, out: Path, run: Runner = subprocess.run) -> None:
    """espeak-ng per segment, sox to one 8 kHz mono 16-bit .wav; written beside `out` and renamed over it."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=".synth-") as tmp:
        parts = []
        for index, segment in enumerate(segments(prompt)):
            part = Path(tmp) / f"{index}.wav"
            cmd, text = espeak_command(segment, part)
            run(cmd, input=text, capture_output=True, text=True, check=True)
            parts.append(part)
        converted = Path(tmp) / "out.wav"
        run(sox_command(parts, converted), capture_output=True, text=True, check=True)
        os.replace(converted, out)


def generate(sounds_dir: Path, todo: Plan, texts: Mapping[str, PromptText], run: Runner = subprocess.run,
             progress: Callable[[str, str], None] = lambda action, path: None) -> None:
    """Carry out the plan; the manifest is rewritten after each file, so an interrupted run loses nothing."""
    manifest = dict(read_manifest(sounds_dir).files)

    def save() -> None:
        path = sounds_dir / MANIFEST
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(Manifest(manifest).dump(), encoding="utf-8")
        os.replace(tmp, path)

    sounds_dir.mkdir(parents=True, exist_ok=True)
    for rel in todo.remove:
        (sounds_dir / rel).unlink(missing_ok=True)
        manifest.pop(rel, None)
        save()
        progress("removed", rel)
    for name in todo.write:
        rel = name + GENERATED_SUFFIX
        target = sounds_dir / rel
        ours = manifest.get(rel, {}).get("sha256")
        if target.exists() and _sha256(target) != ours:   # the admin's file appeared since the survey: keep it
            continue
        synthesize(texts[name], target, run)
        manifest[rel] = {"sha256": _sha256(target), "speech": speech_id(texts[name])}
        save()
        progress("generated", rel)
