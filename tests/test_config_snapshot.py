"""The compiled snapshot classic AGI loads instead of validating the YAML files in every process: it gives back
exactly the validated values, it is used only for the very files it was made from, and a corrupt or foreign
file is ignored (the files are validated again) and never executed."""
from __future__ import annotations

import json
import os
import pickle
import shutil
from pathlib import Path

import pytest

import ivr.engine
from ivr.classic import ClassicPaths, classic_paths, load_validated
from ivr.engine import ConfigError, load_config
from routing import config_snapshot
from scripts.settings import load_settings

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def paths(tmp_path) -> ClassicPaths:
    shutil.copy(ROOT / "conf" / "routing.yaml", tmp_path / "routing.yaml")
    shutil.copy(ROOT / "conf" / "ivr.yaml", tmp_path / "ivr.yaml")
    return ClassicPaths(tmp_path / "routing.yaml", tmp_path / "ivr.yaml", "sqlite:///" + str(tmp_path / "r.sqlite3"),
                        tmp_path / "cache" / "snapshot.json")


def no_validation(monkeypatch):
    """From here on, validating the files fails the test: what loads must come from the snapshot."""
    def refuse(*args, **kwargs):
        raise AssertionError("validated the files although a fresh snapshot was there")
    monkeypatch.setattr(ivr.engine, "load_config", refuse)


def test_the_snapshot_gives_back_the_validated_values_and_is_used(paths, monkeypatch):
    validated = load_config(paths.routing_table, paths.ivr_menus)
    first = load_validated(paths)                      # validates, writes the snapshot
    assert paths.config_snapshot.exists()
    assert (first.table, first.menus) == (validated.table, validated.menus)
    no_validation(monkeypatch)
    again = load_validated(paths)
    assert (again.table, again.menus) == (validated.table, validated.menus)
    assert repr(again.table.timezone) == repr(validated.table.timezone)
    assert type(again.table.lines) is type(validated.table.lines)          # a read-only mapping, as validated
    json.loads(paths.config_snapshot.read_text(encoding="utf-8"))         # plain JSON data


def test_an_edited_table_invalidates_the_snapshot(paths):
    load_validated(paths)
    before = paths.config_snapshot.read_bytes()
    text = paths.routing_table.read_text(encoding="utf-8")
    edited = text.replace("service: ", "service: EDITED ", 1)
    assert edited != text
    paths.routing_table.write_text(edited, encoding="utf-8")
    config = load_validated(paths)
    assert config.table.version == load_config(paths.routing_table, paths.ivr_menus).table.version
    assert any(line.service.startswith("EDITED ") for line in config.table.lines.values())
    assert paths.config_snapshot.read_bytes() != before                  # rewritten for the new files


def test_an_edited_menus_file_invalidates_the_snapshot(paths):
    before = load_validated(paths).menus.version
    paths.ivr_menus.write_text(paths.ivr_menus.read_text(encoding="utf-8") + "\n# edited\n", encoding="utf-8")
    after = load_validated(paths).menus.version
    assert after != before and after == load_config(paths.routing_table, paths.ivr_menus).menus.version


def test_a_broken_table_never_falls_back_to_an_old_snapshot(paths):
    load_validated(paths)
    paths.routing_table.write_text("version: 1\nlines: [\n", encoding="utf-8")
    with pytest.raises(ConfigError) as err:                              # classic then fails open
        load_validated(paths)
    assert "routing.yaml:" in str(err.value)


def _key(paths: ClassicPaths) -> str:
    return config_snapshot.source_key(paths.routing_table, paths.routing_table.read_text(encoding="utf-8"),
                                      paths.ivr_menus, paths.ivr_menus.read_text(encoding="utf-8"))


def _executes_if_unpickled(marker: Path) -> bytes:
    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))
    return pickle.dumps(Payload())


@pytest.mark.parametrize("kind", ["truncated", "garbage", "pickle", "foreign class", "unknown field",
                                  "other format", "stale key", "empty", "a directory"])
def test_a_corrupt_or_foreign_snapshot_is_ignored_and_never_executed(paths, tmp_path, kind):
    good = load_validated(paths)
    text = paths.config_snapshot.read_text(encoding="utf-8")
    data = json.loads(text)
    marker = tmp_path / "executed"
    if kind == "truncated":
        content = text[: len(text) // 2]
    elif kind == "garbage":
        content = "\x00\xff not json"
    elif kind == "pickle":
        content = _executes_if_unpickled(marker)
    elif kind == "foreign class":
        data["table"] = {"$c": "Popen", "f": {"args": ["touch", str(marker)]}}
        content = json.dumps(data)
    elif kind == "unknown field":
        data["table"]["f"]["extra"] = 1
        content = json.dumps(data)
    elif kind == "other format":
        data["format"] = 99
        content = json.dumps(data)
    elif kind == "stale key":
        data["key"] = "0" * 64
        content = json.dumps(data)
    else:
        content = ""
    paths.config_snapshot.unlink()
    if kind == "a directory":
        paths.config_snapshot.mkdir()
    else:
        (paths.config_snapshot.write_bytes if isinstance(content, bytes) else
         lambda c: paths.config_snapshot.write_text(c, encoding="utf-8", errors="surrogateescape"))(content)
    with pytest.raises(config_snapshot.SnapshotUnusable):
        config_snapshot.read(paths.config_snapshot, _key(paths))
    config = load_validated(paths)                                       # validated again, as before
    assert (config.table, config.menus) == (good.table, good.menus)
    assert not marker.exists()
    if kind != "a directory":                                            # replaced by a good one
        config_snapshot.read(paths.config_snapshot, _key(paths))


def test_a_snapshot_is_not_written_unless_it_decodes_back_exactly(paths, monkeypatch):
    config = load_config(paths.routing_table, paths.ivr_menus)
    real = config_snapshot._decode
    monkeypatch.setattr(config_snapshot, "_decode", lambda node: real(json.loads(
        json.dumps(node).replace('"expert-12320"', '"general-12345"', 1))))
    with pytest.raises(ValueError):
        config_snapshot.write(paths.config_snapshot, _key(paths), config.table, config.menus)
    assert not paths.config_snapshot.exists()


def test_an_unwritable_snapshot_place_only_costs_speed(paths, tmp_path):
    blocker = tmp_path / "file-not-dir"
    blocker.write_text("x", encoding="utf-8")
    config = load_validated(paths._replace(config_snapshot=blocker / "snapshot.json"))
    assert config.table.version == load_config(paths.routing_table, paths.ivr_menus).table.version


@pytest.mark.parametrize("env", [{}, {"HOTLINE_ROUTING_TABLE": "/x/t.yaml", "HOTLINE_IVR_MENUS": "m.yaml",
                                      "HOTLINE_DB_URL": "sqlite:////x/r.sqlite3", "HOTLINE_CONFIG_SNAPSHOT": "/x/s"},
                                 {"hotline_db_url": "postgresql+psycopg://u@h/db"}])
def test_classic_reads_its_settings_as_the_settings_do(monkeypatch, env):
    for key in [k for k in os.environ if k.upper().startswith("HOTLINE_")]:
        monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    s = load_settings()
    assert tuple(classic_paths()) == (s.routing_table, s.ivr_menus, s.db_url, s.config_snapshot)


# ------------------------------------------------------------------ every feature, value for value

def _every_feature(tmp_path: Path) -> ClassicPaths:
    """The shipped files with what they leave at its default set too (they set the rest): listed callers (one until a date-time),
    an abuse hang-up, emergency retries per trunk with a next trunk, queue members, an always-open schedule, a
    trunk port, a hang-up destination with its prompt."""
    table = (ROOT / "conf" / "routing.yaml").read_text(encoding="utf-8")
    edits = [
        ("  listed: []\n", '  listed:\n    - {number: "13800138000", until: "2027-01-01T00:00:00+08:00", reason: test}\n'
                           '    - {number: "13900139000", reason: test}\n'),
        ("  per_minutes: 60\n  queue: abuse-review\n", "  per_minutes: 30\n  hangup: true\n"),
        ("    attempts: 3 ", "    attempts: 2 "), ("    ring_seconds: 15 ", "    ring_seconds: 20 "),
        ("    pause_seconds: 5 ", "    pause_seconds: 3 "), ("    within_seconds: 60 ", "    within_seconds: 50 "),
        ("    announce: hotline/emergency-unreachable\n", "    announce: hotline/emergency-unreachable-2\n"),
        ("  trunks: {} ", "  trunks: {emergency-110: {attempts: 4, announce: hotline/x, next: emergency-119}} "),
        ("schedules:\n", "schedules:\n  always-on: {always: true}\n"),
        ("    kind: general\n    strategy: rrmemory\n    member_timeout: 15\n",
         "    kind: general\n    schedule: always-on\n    strategy: rrmemory\n    member_timeout: 20\n"
         "    service_level_seconds: 25\n    announce_holdtime: false\n    members: [PJSIP/agent-1, Local/1001@agents]\n"),
        ("    host: carrier-sbc.hainan.invalid\n", "    host: carrier-sbc.hainan.invalid\n    port: 5080\n"),
    ]
    for old, new in edits:
        assert table.count(old) == 1, old
        table = table.replace(old, new)
    menus = (ROOT / "conf" / "ivr.yaml").read_text(encoding="utf-8")
    old = '      "#": repeat\n    after_retries: {queue: general-12345, tags: [health]}'
    assert menus.count(old) == 1
    menus = menus.replace(old, '      "7": {hangup: {zh: hotline/zh/bye, en: hotline/en/bye}}\n' + old)
    tmp_path.mkdir(exist_ok=True)
    (tmp_path / "routing.yaml").write_text(table, encoding="utf-8")
    (tmp_path / "ivr.yaml").write_text(menus, encoding="utf-8")
    return ClassicPaths(tmp_path / "routing.yaml", tmp_path / "ivr.yaml", "sqlite:///" + str(tmp_path / "r.sqlite3"),
                        tmp_path / "cache" / "snapshot.json")


def _fields_set(value, seen: dict) -> dict:
    """(class, field) -> whether some instance in `value` holds a value other than the default (and not empty)."""
    import dataclasses
    from types import MappingProxyType

    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            v = getattr(value, f.name)
            default = (f.default if f.default is not dataclasses.MISSING else f.default_factory()
                       if f.default_factory is not dataclasses.MISSING else object())
            empty = v is None or (isinstance(v, (str, tuple, list, dict, frozenset, MappingProxyType)) and not v)
            set_here = v != default and not empty
            seen[type(value).__name__, f.name] = seen.get((type(value).__name__, f.name), False) or set_here
            _fields_set(v, seen)
    elif isinstance(value, (dict, MappingProxyType)):
        for k, v in value.items():
            _fields_set(k, seen)
            _fields_set(v, seen)
    elif isinstance(value, (tuple, list, frozenset)):
        for v in value:
            _fields_set(v, seen)
    return seen


@pytest.mark.parametrize("files", ["shipped", "every feature"])
def test_the_snapshot_loads_the_values_the_yaml_loads(paths, tmp_path, monkeypatch, files):
    if files == "every feature":
        paths = _every_feature(tmp_path / "features")
    validated = load_config(paths.routing_table, paths.ivr_menus)
    load_validated(paths)                                                # writes the snapshot
    no_validation(monkeypatch)
    loaded = load_validated(paths)
    assert (loaded.table, loaded.menus) == (validated.table, validated.menus)
    # the same objects field for field, types included (an enum, a read-only mapping, a zone), not only equal
    assert config_snapshot._encode(loaded.table) == config_snapshot._encode(validated.table)
    assert config_snapshot._encode(loaded.menus) == config_snapshot._encode(validated.menus)
    assert repr(loaded.table) == repr(validated.table) and repr(loaded.menus) == repr(validated.menus)
    assert hash(loaded.table.lines["12320"]) == hash(validated.table.lines["12320"])
    if files == "every feature":             # with the shipped files, every field of every value class is set
        seen: dict = {}
        for config in (validated, load_config(ROOT / "conf" / "routing.yaml", ROOT / "conf" / "ivr.yaml")):
            _fields_set(config.menus, _fields_set(config.table, seen))
        in_tables = set(config_snapshot._CLASSES) - {"Route", "CallerHistory"}   # decisions, never in a table
        assert {cls for cls, _ in seen} == in_tables
        assert sorted(key for key, was_set in seen.items() if not was_set) == []
