"""Reloading a hostile or broken table (issue 10, defect 4): validated in a bounded child before the engine
parses it; the engine's memory stays where it was, the old table keeps serving, `hotline reload` answers
at once and signals nothing."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import tracemalloc
from pathlib import Path

import pytest
import structlog

from ivr.configcheck import ChildLimits, validate_in_child
from ivr.engine import ConfigHolder
from tests.test_engine_cli import free_port
from tests.test_hostile_files import alias_bomb, run_limited

ROOT = Path(__file__).resolve().parents[1]
TABLE, MENUS = ROOT / "conf" / "routing.yaml", ROOT / "conf" / "ivr.yaml"


@pytest.fixture
def files(tmp_path):
    table, menus = tmp_path / "routing.yaml", tmp_path / "ivr.yaml"
    shutil.copy(TABLE, table)
    shutil.copy(MENUS, menus)
    return table, menus


def refused(holder: ConfigHolder) -> list[dict]:
    with structlog.testing.capture_logs() as logs:
        assert holder.reload() is False
    return logs


def test_a_bomb_reloaded_costs_the_engine_nothing_and_the_old_table_stays(files):
    table, menus = files
    holder = ConfigHolder.from_files(table, menus)
    running = holder.current
    table.write_text(alias_bomb(6), encoding="utf-8")
    tracemalloc.start()
    try:
        logs = refused(holder)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20, f"{peak / 1e6:.0f} MB"       # the file's text and the child's answer, no more
    assert holder.current is running
    problems = [e["problem"] for e in logs if e["event"] == "config.problem"]
    assert len(problems) == 1 and problems[0].startswith(f"{table}:") and "aliases here expand" in problems[0]


def test_a_broken_file_is_refused_with_the_childs_file_line_problems(files):
    table, menus = files
    holder = ConfigHolder.from_files(table, menus)
    table.write_text(TABLE.read_text(encoding="utf-8").replace("general_queue: general-12345",
                                                               "general_queue: nowhere"), encoding="utf-8")
    menus.write_text(MENUS.read_text(encoding="utf-8").replace('"#": repeat', "#: repeat", 1), encoding="utf-8")
    problems = [e["problem"] for e in refused(holder) if e["event"] == "config.problem"]
    assert any(p.startswith(f"{table}:") and "nowhere" in p for p in problems), problems
    table.write_text(TABLE.read_text(encoding="utf-8"), encoding="utf-8")
    problems = [e["problem"] for e in refused(holder) if e["event"] == "config.problem"]
    assert any(p.startswith(f"{menus}:") and "quote it: '#'" in p for p in problems), problems


def test_the_child_runs_under_its_memory_and_time_limits(files):
    table, menus = files
    pair = ((table, table.read_text(encoding="utf-8")), (menus, menus.read_text(encoding="utf-8")))
    assert validate_in_child(*pair) == []
    (starved,) = validate_in_child(*pair, limits=ChildLimits(memory_bytes=16 << 20))
    assert starved.file == str(table) and "validation failed within its limits (16 MB" in starved.message
    (slow,) = validate_in_child(*pair, limits=ChildLimits(timeout=0.01))
    assert slow.message == "validation took longer than 0.01 s: refused"
    # a reload whose child fails is refused and keeps the running pair
    holder = ConfigHolder.from_files(table, menus)
    holder.child_limits = ChildLimits(memory_bytes=16 << 20)
    running = holder.current
    assert any(e["event"] == "config.reload_refused" for e in refused(holder)) and holder.current is running
    holder.child_limits = ChildLimits()
    assert holder.reload() is True


def peak_rss_kb(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(status.split("VmHWM:")[1].split()[0])


def test_a_running_engine_survives_a_bomb_by_sighup_and_by_hotline_reload(files):
    table, menus = files
    env = dict(os.environ, PYTHONPATH=str(ROOT), HOTLINE_ROUTING_TABLE=str(table), HOTLINE_IVR_MENUS=str(menus))
    port, pid_file = free_port(), table.parent / "hotline.pid"
    proc = subprocess.Popen([sys.executable, "-m", "scripts.hotline", "--log-format", "json", "serve", "--port",
                             str(port), "--no-records", "--no-web", "--no-ami", "--pid-file", str(pid_file),
                             "--drain-timeout", "2"], cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True)
    events: list[dict] = []
    reader = threading.Thread(target=lambda: events.extend(json.loads(line) for line in proc.stderr
                                                           if line.startswith("{")), daemon=True)
    reader.start()

    def wait_for(event: str, count: int = 1) -> None:
        deadline = time.monotonic() + 30
        while sum(e.get("event") == event for e in events) < count:
            assert proc.poll() is None and time.monotonic() < deadline, f"no {event}: {events[-5:]}"
            time.sleep(0.05)

    def call() -> str:
        done = subprocess.run([sys.executable, "-m", "scripts.hotline", "call", "12345", "--dtmf", "2", "--port",
                               str(port)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=30)
        return done.stdout

    try:
        deadline = time.monotonic() + 30
        while not pid_file.exists():
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        assert "result:  queue general-12345" in call()
        before = peak_rss_kb(proc.pid)

        table.write_text(alias_bomb(6), encoding="utf-8")      # expanded: 531,441 values, about 100 MB
        proc.send_signal(signal.SIGHUP)
        wait_for("config.reload_refused")
        assert peak_rss_kb(proc.pid) - before < 30_000, (before, peak_rss_kb(proc.pid))
        assert any("aliases here expand" in e.get("problem", "") for e in events)
        assert "result:  queue general-12345" in call()         # the old table keeps serving

        table.write_text(alias_bomb(9), encoding="utf-8")      # the reported one: `reload` hung 35 s
        asked = run_limited(["reload", "--pid-file", str(pid_file)], env=env)
        assert asked.returncode == 1 and "Traceback" not in asked.stderr, asked.stderr[-2000:]
        assert f"{table}:" in asked.stderr and "not reloaded" in asked.stderr
        assert sum(e.get("event") == "fastagi.reload_requested" for e in events) == 1   # nothing was sent

        table.write_text(TABLE.read_text(encoding="utf-8") + "\n# fixed\n", encoding="utf-8")
        assert run_limited(["reload", "--pid-file", str(pid_file)], env=env).returncode == 0
        wait_for("config.reloaded")
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0
