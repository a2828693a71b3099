"""`hotline serve` / `hotline call` / `hotline reload` as an admin runs them: real processes, real TCP."""
from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.asterisk.harness import free_port
from tests.test_fastagi_support import MENUS, TABLE

ROOT = Path(__file__).resolve().parents[1]
HOTLINE = [sys.executable, "-m", "scripts.hotline"]



@pytest.fixture
def serve(tmp_path):
    table, menus = tmp_path / "routing.yaml", tmp_path / "ivr.yaml"
    shutil.copy(TABLE, table)
    shutil.copy(MENUS, menus)
    env = dict(os.environ, PYTHONPATH=str(ROOT), HOTLINE_ROUTING_TABLE=str(table), HOTLINE_IVR_MENUS=str(menus))
    port, pid_file = free_port(), tmp_path / "hotline.pid"
    proc = subprocess.Popen(HOTLINE + ["--log-format", "json", "serve", "--port", str(port), "--allow-test-clock",
                                       "--no-records", "--no-web", "--pid-file", str(pid_file), "--drain-timeout", "2"],
                            cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True)
    try:
        for _ in range(200):
            if pid_file.exists():
                break
            assert proc.poll() is None, proc.stderr.read()
            time.sleep(0.05)
        yield proc, port, pid_file, env, table
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=5)


def run(args, env, timeout=30):
    return subprocess.run(HOTLINE + args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


def test_serve_call_reload_and_sigterm(serve):
    proc, port, pid_file, env, table = serve
    assert int(pid_file.read_text()) == proc.pid
    out = run(["call", "12320", "--dtmf", "1", "--at", "2026-11-26T10:00", "--port", str(port)], env)
    assert out.returncode == 0, out.stderr
    assert "result:  queue expert-12320" in out.stdout
    assert "heard:   hotline/zh/expert-12320-menu" in out.stdout and "pressed: 1" in out.stdout
    assert "138****8000" in out.stdout and "13800138000" not in out.stdout

    night = run(["call", "110", "--at", "2026-02-17T03:00", "--port", str(port)], env)
    assert "result:  dial trunk emergency-110" in night.stdout

    gone = run(["call", "12345", "--hangup-after", "0", "--port", str(port)], env)
    # AGIEXITONHANGUP (the generated dialplan): Asterisk leaves AGI at the hang-up, nothing more is set
    assert "result:  caller hung up" in gone.stdout and "HOTLINE_ACTION" not in gone.stdout

    # a broken table: `reload` refuses to signal; the running engine is untouched
    good = table.read_text(encoding="utf-8")
    table.write_text(good.replace("general_queue: general-12345", "general_queue: nowhere"), encoding="utf-8")
    refused = run(["reload", "--pid-file", str(pid_file)], env)
    assert refused.returncode == 1 and re.search(r"routing\.yaml:\d+:\d+: .*nowhere", refused.stderr)
    # even a SIGHUP straight at it keeps the running table
    os.kill(proc.pid, signal.SIGHUP)
    still = run(["call", "12345", "--dtmf", "2", "--port", str(port)], env)
    assert "result:  queue general-12345" in still.stdout

    table.write_text(good + "\n# edited\n", encoding="utf-8")
    ok = run(["reload", "--pid-file", str(pid_file)], env)
    assert ok.returncode == 0 and f"pid {proc.pid}" in ok.stdout

    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=10) == 0
    err = proc.stderr.read()
    assert f"FastAGI listening on 127.0.0.1:{port}" in err
    assert "config.reload_refused" in err and "config.reloaded" in err and "fastagi.stopped" in err
    assert not pid_file.exists()


def test_call_warns_when_the_engine_ignores_the_test_instant(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    port, pid_file = free_port(), tmp_path / "p.pid"
    proc = subprocess.Popen(HOTLINE + ["serve", "--port", str(port), "--no-records", "--no-web", "--pid-file",
                                       str(pid_file)],
                            cwd=ROOT, env=env, stderr=subprocess.DEVNULL)
    try:
        for _ in range(200):
            if pid_file.exists():
                break
            time.sleep(0.05)
        out = run(["call", "12396", "--at", "2021-09-10T10:00", "--port", str(port)], env)
        assert "engine ignored --at" in out.stderr
        assert "hotline/number-cancelled-dial-12345" in out.stdout       # routed for today, not 2021
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)


def test_call_reports_an_unreachable_engine():
    out = run(["call", "12345", "--port", str(free_port()), "--timeout", "2"], dict(os.environ, PYTHONPATH=str(ROOT)))
    assert out.returncode == 1 and "error:" in out.stderr


def test_serve_refuses_a_malformed_callback_key_before_taking_calls(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT), HOTLINE_CALLBACK_KEY="not-a-fernet-key",
               HOTLINE_DB_URL=f"sqlite:///{tmp_path / 'r.sqlite3'}", HOTLINE_SPOOL_DIR=str(tmp_path / "spool"),
               HOTLINE_CALLER_HASH_KEY="k")
    out = run(["serve", "--port", str(free_port()), "--no-web", "--no-ami", "--pid-file",
               str(tmp_path / "p.pid")], env, timeout=30)
    assert out.returncode == 1 and "not a Fernet key" in out.stderr
    assert "not-a-fernet-key" not in out.stderr + out.stdout
