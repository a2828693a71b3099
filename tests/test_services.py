"""The shipped systemd units and the classic-AGI wrapper: systemd-analyze verify, the hardening the README
promises, the units' own command lines run against the engine (ExecReload reloads, KillSignal drains), and the
wrapper run as Asterisk runs it (from its agi-bin, another working directory, an env block on stdin)."""
from __future__ import annotations

import configparser
import os
import shlex
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from ivr.emulator import AsteriskChannel, asterisk_env
from tests.asterisk.harness import free_port
from tests.test_classic_agi import _answer
from tests.test_fastagi_support import WORKDAY_10H

ROOT = Path(__file__).resolve().parents[1]
UNITS = ROOT / "conf" / "systemd"
WRAPPER = ROOT / "conf" / "asterisk" / "agi-bin" / "hotline-agi"
UNIT_NAMES = ["hotline-engine.service", "hotline-web.service"]


def unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, strict=True)
    parser.optionxform = str                       # systemd keys are case-sensitive
    parser.read(UNITS / name, encoding="utf-8")
    return parser


def localised(name: str, tmp_path: Path) -> Path:
    """The unit with /opt/hotline -> this checkout and its EnvironmentFile in tmp (verify needs real paths)."""
    env_file = tmp_path / "hotline.env"
    env_file.write_text("HOTLINE_AGI_PORT=4573\n")
    text = (UNITS / name).read_text().replace("/etc/hotline/hotline.env", str(env_file))
    path = tmp_path / name
    path.write_text(text.replace("/opt/hotline", str(ROOT)))
    return path


@pytest.mark.parametrize("name", UNIT_NAMES)
def test_systemd_analyze_verify_is_clean(name, tmp_path):
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze not installed (Debian package systemd)")
    path = localised(name, tmp_path)
    result = subprocess.run(["systemd-analyze", "verify", str(path)], capture_output=True, text=True, timeout=60)
    # verify exits 0 on an unknown key or a bad value ("ignoring"): every line about our unit counts
    ours = [line for line in (result.stdout + result.stderr).splitlines() if name in line]
    assert result.returncode == 0 and ours == [], result.stdout + result.stderr


def test_verify_would_catch_a_typo(tmp_path):
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze not installed (Debian package systemd)")
    path = localised("hotline-engine.service", tmp_path)
    path.write_text(path.read_text().replace("NoNewPrivileges=", "NoNewPrivilege="))
    result = subprocess.run(["systemd-analyze", "verify", str(path)], capture_output=True, text=True, timeout=60)
    assert "Unknown key" in result.stderr and path.name in result.stderr


@pytest.mark.parametrize("name", UNIT_NAMES)
def test_units_are_hardened_and_write_only_to_var(name):
    service = unit(name)["Service"]
    assert service["User"] == "hotline" and service["NoNewPrivileges"] == "yes"
    assert service["ProtectSystem"] == "strict" and service["ProtectHome"] == "yes"
    assert service["ReadWritePaths"].split() == ["/opt/hotline/var"]      # keys, pid file, SQLite, spool
    assert service["EnvironmentFile"] == "/etc/hotline/hotline.env"
    assert service["Restart"] == "on-failure" and service["KillSignal"] == "SIGTERM"
    assert service["CapabilityBoundingSet"] == "" and service["UMask"] == "0077"
    assert shlex.split(service["ExecStart"])[:3] == ["/opt/hotline/.venv/bin/hotline", "--log-format", "json"]


def test_engine_unit_reloads_by_sighup_and_gives_the_drain_time_to_finish():
    service = unit("hotline-engine.service")["Service"]
    assert service["ExecReload"] == "/bin/kill -HUP $MAINPID"
    argv = shlex.split(service["ExecStart"])
    drain = float(argv[argv.index("--drain-timeout") + 1])
    assert float(service["TimeoutStopSec"]) > drain + 5      # systemd's SIGKILL never cuts a drain short



def wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_engine_unit_command_lines_run_reload_and_stop(tmp_path):
    """ExecStart as systemd runs it ($HOTLINE_SERVE_ARGS from the EnvironmentFile), then ExecReload, then
    KillSignal: the engine reloads its table and exits 0 after draining."""
    service = unit("hotline-engine.service")["Service"]
    port, log_path = free_port(), tmp_path / "engine.log"
    serve_args = f"--no-records --no-ami --no-web --port {port} --pid-file {tmp_path / 'pid'}"
    argv = []
    for word in shlex.split(service["ExecStart"].replace("/opt/hotline", str(ROOT))):
        argv += serve_args.split() if word == "$HOTLINE_SERVE_ARGS" else [word]
    with log_path.open("wb") as log:
        proc = subprocess.Popen(argv, cwd=ROOT, stdout=log, stderr=log, env=dict(os.environ))
    try:
        wait_for(lambda: (tmp_path / "pid").exists() or proc.poll() is not None, 20, "the engine to listen")
        assert proc.poll() is None, log_path.read_text()
        reload = shlex.split(service["ExecReload"].replace("$MAINPID", str(proc.pid)))
        subprocess.run(reload, check=True, timeout=10)
        wait_for(lambda: "config.reload" in log_path.read_text(), 20, "the reload (done or refused)")
        assert '"event":"config.reloaded"' in log_path.read_text()
        proc.send_signal(getattr(signal, service["KillSignal"]))
        assert proc.wait(timeout=float(service["TimeoutStopSec"])) == 0
    finally:
        proc.kill()
        proc.wait()


def test_wrapper_is_an_executable_script():
    assert os.access(WRAPPER, os.X_OK)
    assert WRAPPER.read_text().startswith("#!/bin/sh\n")
    subprocess.run(["sh", "-n", str(WRAPPER)], check=True)


def run_wrapper_as_asterisk(agi_bin: Path, cwd: Path, dialed: str, dtmf: list[str], env: dict[str, str]):
    """Asterisk runs astagidir/NAME with the dialplan's arguments and its own environment and working
    directory, writes the agi_* block on stdin and answers each command line on stdout."""
    proc = subprocess.Popen([str(agi_bin / "hotline-agi"), dialed], cwd=cwd, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    channel = AsteriskChannel(asterisk_env(dialed=dialed), dtmf, variables={"HOTLINE_AT": WORKDAY_10H})
    try:
        _answer(proc.stdin, proc.stdout, channel)
        assert proc.wait(timeout=30) == 0
    finally:
        proc.kill()
        proc.wait()
        err = proc.stderr.read().decode()
    return channel, err


ASTERISK_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOTLINE_ALLOW_TEST_CLOCK": "1"}


def test_wrapper_symlinked_into_agi_bin_routes_a_call(tmp_path):
    agi_bin, elsewhere = tmp_path / "agi-bin", tmp_path / "asterisk-cwd"
    agi_bin.mkdir()
    elsewhere.mkdir()
    (agi_bin / "hotline-agi").symlink_to(WRAPPER)      # no venv on PATH, no PYTHONPATH, another directory
    channel, err = run_wrapper_as_asterisk(agi_bin, elsewhere, "12320", ["1"], ASTERISK_ENV)
    assert channel.t.variables["HOTLINE_ACTION"] == "queue"
    assert channel.t.variables["HOTLINE_TARGET"] == "expert-12320"
    assert '"event":"engine.route"' in err and "4951234567" not in err        # JSON logs, caller masked


def test_wrapper_copied_needs_hotline_home(tmp_path):
    agi_bin = tmp_path / "agi-bin"
    agi_bin.mkdir()
    shutil.copy2(WRAPPER, agi_bin / "hotline-agi")     # a copy cannot find the project by its own path
    channel, _ = run_wrapper_as_asterisk(agi_bin, tmp_path, "12345", [],
                                         {**ASTERISK_ENV, "HOTLINE_HOME": str(ROOT)})
    assert channel.t.variables["HOTLINE_ACTION"] == "queue"
    broken = subprocess.run([str(agi_bin / "hotline-agi")], input=b"", capture_output=True, env=ASTERISK_ENV,
                            timeout=10)
    assert broken.returncode != 0 and b".venv/bin/python" in broken.stderr      # says what it could not run
