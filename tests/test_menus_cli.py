"""`hotline menus check|show|prompts` as the admin runs them."""
from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from scripts.hotline import cli

ROOT = Path(__file__).resolve().parents[1]
IVR_YAML = ROOT / "conf" / "ivr.yaml"
ROUTING_YAML = ROOT / "conf" / "routing.yaml"


def run(*args: str):
    return CliRunner().invoke(cli, ["--log-format", "json", "menus", *args])


def test_check_passes_on_the_shipped_files():
    result = run("check", str(IVR_YAML), "--table", str(ROUTING_YAML))
    assert result.exit_code == 0, result.output
    assert "OK, 4 menus (main, cities, subcenter, expert-12320)" in result.output


def test_check_lists_every_error_with_its_line_and_exits_1(tmp_path):
    broken = IVR_YAML.read_text(encoding="utf-8")
    broken = broken.replace('"4": {queue: minors-protection,', '"4": {queue: minors-protektion,')
    broken = broken.replace('"5": {menu: cities,', '"5": {menu: city,')
    path = tmp_path / "ivr.yaml"
    path.write_text(broken, encoding="utf-8")
    lines = broken.splitlines()
    line_4 = next(i for i, text in enumerate(lines, 1) if "minors-protektion" in text)
    line_5 = next(i for i, text in enumerate(lines, 1) if "{menu: city," in text)
    result = run("check", str(path), "--table", str(ROUTING_YAML))
    assert result.exit_code == 1
    assert f"{path}:{line_4}:" in result.output and "queue 'minors-protektion' is not in the routing table" in result.output
    assert f"{path}:{line_5}:" in result.output and "menu 'city' is not defined under menus" in result.output
    assert "2 error(s); nothing was loaded" in result.output


def test_show_prints_a_menu_with_its_keys():
    result = run("show", "main", "--file", str(IVR_YAML), "--table", str(ROUTING_YAML))
    assert result.exit_code == 0, result.output
    assert "3 -> queue business-environment +tags business-environment" in result.output
    assert "9 -> language en" in result.output


def test_prompts_lists_menu_and_table_sounds_and_finds_missing_recordings(tmp_path):
    listed = run("prompts", "--file", str(IVR_YAML), "--table", str(ROUTING_YAML))
    assert listed.exit_code == 0
    names = listed.output.split()
    assert "hotline/zh/main-menu" in names and "hotline/number-merged-into-12345" in names
    for name in names:
        if name != "hotline/en/main-menu":
            (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / (name + ".wav")).write_bytes(b"RIFF")
    missing = run("prompts", "--file", str(IVR_YAML), "--table", str(ROUTING_YAML), "--sounds-dir", str(tmp_path))
    assert missing.exit_code == 1
    states = dict(line.split("  ")[:2] for line in missing.stdout.splitlines())
    assert [name for name, state in states.items() if state == "missing"] == ["hotline/en/main-menu"]
    assert states["hotline/zh/main-menu"] == "recorded"
