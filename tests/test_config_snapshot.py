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
