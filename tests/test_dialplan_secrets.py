"""Secrets: only in the 0600 files that need them, never in other files, stdout, stderr or log events; a missing
one is reported by variable name only. The CLI runs as a real process (`python -m scripts.hotline`)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import structlog

from dialplan.options import RenderOptions
from dialplan.render import render
from routing.loader import load_table
from tests.asterisk.harness import table_with_far_end

ROOT = Path(__file__).resolve().parents[1]
TABLE = ROOT / "conf" / "routing.yaml"
MARKERS = {
    "TRUNK_SEAT_12348_SECRET": "mk-12348-Zq7",
    "TRUNK_SEAT_12333_SECRET": "mk-12333;Wv4",     # ';' must be escaped in the .conf, and still never leak
    "HOTLINE_AMI_SECRET": "mk-ami-Xp9",
    "HOTLINE_SWITCH_PIN": "739152",                # the override switches' phone PIN
}
WHERE = {"TRUNK_SEAT_12348_SECRET": "pjsip_hotline.conf", "TRUNK_SEAT_12333_SECRET": "pjsip_hotline.conf",
         "HOTLINE_AMI_SECRET": "manager_hotline.conf", "HOTLINE_SWITCH_PIN": "extensions_hotline_switches.conf"}


def hotline(*args: str, env: dict[str, str] | None = None, table: Path = TABLE) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k not in MARKERS and k != "HOTLINE_SECRETS_FILE"}
    return subprocess.run([sys.executable, "-m", "scripts.hotline", "--log-format", "json", "--log-level", "debug",
                           "dialplan", *args, "--table", str(table)],
                          cwd=ROOT, env={**base, **(env or {})}, capture_output=True, text=True, timeout=60)


def leaked(text: str) -> list[str]:
    return [name for name, value in MARKERS.items() if value in text or value.replace(";", "\\;") in text]


def test_secrets_from_the_environment_land_only_in_0600_files(tmp_path: Path) -> None:
    # --strict also refuses placeholder trunk hosts: the shipped table with addresses, as an admin has it
    real = table_with_far_end(TABLE, tmp_path.parent / f"{tmp_path.name}-table" / "routing.yaml", "192.0.2.1", 5060)
    done = hotline("render", "--out", str(tmp_path), "--strict", env=MARKERS, table=real)
    assert done.returncode == 0, done.stderr
    assert leaked(done.stdout + done.stderr) == []
    for path in tmp_path.iterdir():
        text = path.read_text()
        expected = sorted(n for n, f in WHERE.items() if f == path.name)
        assert sorted(leaked(text)) == expected, path.name
        if expected:
            assert path.stat().st_mode & 0o777 == 0o600
    assert "password=mk-12333\\;Wv4" in (tmp_path / "pjsip_hotline.conf").read_text()
    assert "secret=mk-ami-Xp9" in (tmp_path / "manager_hotline.conf").read_text()

    # diff after a secret changed: it says something changed, shows no value (old or new)
    changed = {**MARKERS, "HOTLINE_AMI_SECRET": "mk-ami-NEW"}
    done = hotline("diff", "--out", str(tmp_path), env=changed, table=real)
    assert done.returncode == 1
    assert "manager_hotline.conf" in done.stdout and "secret value changed" in done.stdout
    assert leaked(done.stdout + done.stderr) == [] and "mk-ami-NEW" not in done.stdout + done.stderr
    done = hotline("diff", "--out", str(tmp_path), env=MARKERS, table=real)
    assert done.returncode == 0 and "no change" in done.stdout


def test_secrets_file_is_read_and_the_environment_wins(tmp_path: Path) -> None:
    secrets = tmp_path / "secrets.env"
    secrets.write_text("TRUNK_SEAT_12348_SECRET=from-file-1\nTRUNK_SEAT_12333_SECRET=from-file-2\n"
                       "HOTLINE_AMI_SECRET=from-file-3\n")
    out = tmp_path / "out"
    done = hotline("render", "--out", str(out), "--secrets", str(secrets),
                   env={"HOTLINE_AMI_SECRET": MARKERS["HOTLINE_AMI_SECRET"]})
    assert done.returncode == 0, done.stderr
    pjsip = (out / "pjsip_hotline.conf").read_text()
    assert "password=from-file-1" in pjsip and "password=from-file-2" in pjsip
    assert "secret=mk-ami-Xp9" in (out / "manager_hotline.conf").read_text()
    assert "from-file" not in done.stdout + done.stderr


def test_missing_secret_warns_by_name_and_strict_fails(tmp_path: Path) -> None:
    partial = {"TRUNK_SEAT_12348_SECRET": MARKERS["TRUNK_SEAT_12348_SECRET"]}
    done = hotline("render", "--out", str(tmp_path / "a"), env=partial)
    assert done.returncode == 0
    assert "TRUNK_SEAT_12333_SECRET" in done.stderr and "HOTLINE_AMI_SECRET" in done.stderr
    assert "TRUNK_SEAT_12348_SECRET" not in done.stderr.split("warning:")[-1]
    assert leaked(done.stdout + done.stderr) == []
    pjsip = (tmp_path / "a" / "pjsip_hotline.conf").read_text()
    assert "SECRET MISSING: set TRUNK_SEAT_12333_SECRET" in pjsip

    done = hotline("render", "--out", str(tmp_path / "b"), "--strict", env=partial)
    assert done.returncode == 3
    assert "TRUNK_SEAT_12333_SECRET" in done.stderr and leaked(done.stderr) == []
    assert not (tmp_path / "b").exists()                     # nothing written


def test_log_events_carry_variable_names_only() -> None:
    table = load_table(TABLE)
    options = RenderOptions(secrets={"TRUNK_SEAT_12348_SECRET": MARKERS["TRUNK_SEAT_12348_SECRET"]})
    with structlog.testing.capture_logs() as events:
        render(table, options)
    missing = [e for e in events if e["event"] == "dialplan.secret_missing"]
    assert sorted(e["variable"] for e in missing) == ["HOTLINE_AMI_SECRET", "TRUNK_SEAT_12333_SECRET"]
    # optional: without it the switches' phone codes refuse; a warning, never a --strict failure
    assert [e["variable"] for e in events if e["event"] == "dialplan.switch_pin_missing"] == ["HOTLINE_SWITCH_PIN"]
    assert leaked(repr(events)) == []


def test_bad_input_is_refused_with_a_clear_message(tmp_path: Path) -> None:
    done = hotline("render", "--out", str(tmp_path), "--agi", "agi://bad host:1")
    assert done.returncode == 2 and "engine endpoint" in done.stderr
    broken = tmp_path / "secrets.env"
    broken.write_text("no-equals-sign-hunter2\n")
    done = hotline("render", "--out", str(tmp_path / "x"), "--secrets", str(broken))
    assert done.returncode == 2 and "secrets.env:1" in done.stderr and "hunter2" not in done.stderr
    bad_table = tmp_path / "routing.yaml"
    bad_table.write_text("version: 1\nqueues: [\n")
    done = subprocess.run([sys.executable, "-m", "scripts.hotline", "dialplan", "render", "--out",
                           str(tmp_path / "y"), "--table", str(bad_table)], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 2 and "routing.yaml" in done.stderr
    assert not (tmp_path / "y").exists()


def test_diff_masks_a_short_secret_where_it_stands_not_every_letter(tmp_path: Path) -> None:
    """`hotline dialplan diff` with a one-letter AMI secret: the secret= line is masked; every other line keeps
    its letters (search-and-replace of the secret's text masked every `a` and so showed what the secret was)."""
    done = hotline("render", "--out", str(tmp_path), env={"HOTLINE_AMI_SECRET": "a"})
    assert done.returncode == 0, done.stderr
    done = hotline("diff", "--out", str(tmp_path), "--engine-timeout", "301",
                   env={"HOTLINE_AMI_SECRET": "e", "TRUNK_SEAT_12348_SECRET": "1"})
    assert done.returncode == 1, done.stderr
    lines = done.stdout.splitlines()
    masked = [line for line in lines if "*" * 8 in line]
    assert masked == ["+password=********"], masked               # the one changed secret line, nothing else
    assert "# a secret value changed (not shown)" in done.stdout   # manager: only its secret changed
    changed = [line for line in lines if line[:1] in "+-" and not line.startswith(("---", "+++"))]
    assert any("HOTLINE_ENGINE_TIMEOUT=301)" in line for line in changed)
    assert sum(line.count("a") for line in changed) > 20          # the letter a shown as it stands
