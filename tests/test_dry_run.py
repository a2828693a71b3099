"""A dry-run engine beside a "production" one (issue 11, item 5): real processes, real TCP, real SQLite.

The production engine records calls and holds the web port; the dry run must leave its pid file, records and
abuse counts untouched, refuse what it cannot have with a clear message, and `hotline reload` must answer
from the engine it signalled.
"""
from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from datetime import date, datetime
from zoneinfo import ZoneInfo
from pathlib import Path

import pytest

from tests.asterisk.harness import free_port
from tests.test_fastagi_support import MENUS, TABLE

ROOT = Path(__file__).resolve().parents[1]
HOTLINE = [sys.executable, "-m", "scripts.hotline"]



def run(args, env, timeout=60):
    return subprocess.run(HOTLINE + args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


def start(args, env, pid_file: Path) -> subprocess.Popen:
    proc = subprocess.Popen(HOTLINE + ["--log-format", "json", *args], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while not (pid_file.exists() and pid_file.read_text().strip() == str(proc.pid)):
        assert proc.poll() is None, proc.stderr.read()
        assert time.monotonic() < deadline, "engine did not start"
        time.sleep(0.05)
    return proc


def stop(proc: subprocess.Popen) -> str:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    return proc.stderr.read()


def calls_in(db: Path) -> int:
    if not db.exists():
        return 0
    with sqlite3.connect(db) as conn:
        try:
            return conn.execute("select count(*) from calls").fetchone()[0]
        except sqlite3.OperationalError:   # not migrated yet: no call could be there
            return 0


@pytest.fixture
def site(tmp_path):
    """A 'production' host in tmp_path: table with a low abuse limit, records, pid file, web port."""
    table, menus = tmp_path / "routing.yaml", tmp_path / "ivr.yaml"
    text = TABLE.read_text(encoding="utf-8")
    assert "max_calls: 20" in text
    table.write_text(text.replace("max_calls: 20", "max_calls: 2"), encoding="utf-8")
    shutil.copy(MENUS, menus)
    prod = tmp_path / "prod"
    env = dict(os.environ, PYTHONPATH=str(ROOT), HOTLINE_ROUTING_TABLE=str(table), HOTLINE_IVR_MENUS=str(menus),
               HOTLINE_DB_URL=f"sqlite:///{prod / 'hotline.sqlite3'}", HOTLINE_SPOOL_DIR=str(prod / "spool"),
               HOTLINE_PID_FILE=str(prod / "hotline.pid"), HOTLINE_DRY_RUN_DIR=str(tmp_path / "dry"),
               HOTLINE_DRY_RUN_PORT=str(free_port()), HOTLINE_WEB_PORT=str(free_port()),
               HOTLINE_CALLER_HASH_KEY="test-key", HOTLINE_CALLBACK_KEY="",
               HOTLINE_WEB_ADMIN_PASSWORD="admin-password-1", HOTLINE_WEB_SUPERVISOR_PASSWORD="super-password-1")
    env.pop("HOTLINE_CALLBACK_KEY")
    env.pop("HOTLINE_AMI_SECRET", None)
    return tmp_path, env


def test_a_dry_run_beside_production_touches_nothing_of_it(site):
    tmp_path, env = site
    prod_pid, prod_db = tmp_path / "prod" / "hotline.pid", tmp_path / "prod" / "hotline.sqlite3"
    dry_pid = tmp_path / "dry" / "hotline.pid"
    prod_port = free_port()
    prod = start(["serve", "--port", str(prod_port), "--no-ami", "--drain-timeout", "2"], env, prod_pid)
    dry = None
    try:
        # the old README recipe on the production pid file: refused, clearly, nothing overwritten
        old_style = run(["serve", "--port", str(free_port()), "--allow-test-clock", "--no-records"], env)
        assert old_style.returncode == 2 and "Traceback" not in old_style.stderr
        assert "belongs to the running engine" in old_style.stderr and "--dry-run" in old_style.stderr
        assert prod_pid.read_text().strip() == str(prod.pid)

        # a dry run that asks for the web view on production's port: a clear error, no traceback
        taken = run(["serve", "--dry-run", "--web", "--web-port", env["HOTLINE_WEB_PORT"]], env)
        assert taken.returncode == 2 and "Traceback" not in taken.stderr, taken.stderr[-2000:]
        assert re.search(rf"web view address 127\.0\.0\.1:{env['HOTLINE_WEB_PORT']} cannot be used: "
                         rf".*in use \(held by pid {prod.pid}", taken.stderr), taken.stderr
        # the same for the FastAGI port
        agi_taken = run(["serve", "--dry-run", "--port", str(prod_port)], env)
        assert agi_taken.returncode == 2 and "Traceback" not in agi_taken.stderr
        assert f"FastAGI address 127.0.0.1:{prod_port} cannot be used" in agi_taken.stderr

        # the running engine's metric: days of holiday data left per calendar in use (issue 11, item 6)
        today = datetime.now(ZoneInfo("Asia/Shanghai")).date()
        scraped = urllib.request.urlopen(f"http://127.0.0.1:{env['HOTLINE_WEB_PORT']}/metrics", timeout=10).read()
        assert f'hotline_calendar_days_left{{calendar="cn-mainland"}} {float((date(2026, 12, 31) - today).days)}' \
            in scraped.decode()

        dry = start(["serve", "--dry-run", "--drain-timeout", "2"], env, dry_pid)
        assert prod_pid.read_text().strip() == str(prod.pid)          # production's pid file untouched

        # more dry runs than the abuse limit (2) from the default test caller: never abuse review
        for _ in range(4):
            out = run(["call", "12345", "--dtmf", "2", "--at", "2026-12-01T10:00"], env)
            assert out.returncode == 0, out.stderr
            assert "result:  queue general-12345" in out.stdout and "abuse" not in out.stdout
        assert not (tmp_path / "dry" / "hotline.sqlite3").exists()    # no records unless asked

        # each `reload` answers from the engine its pid file names
        mine = run(["reload", "--dry-run"], env)
        assert mine.returncode == 0 and f"reloaded by pid {dry.pid}: table " in mine.stdout, mine.stderr
        theirs = run(["reload"], env)
        assert theirs.returncode == 0 and f"reloaded by pid {prod.pid}: table " in theirs.stdout, theirs.stderr

        # asked explicitly (--port), production records the call; the abuse rule counts production's calls only
        for n in range(1, 4):
            out = run(["call", "12345", "--dtmf", "2", "--port", str(prod_port)], env)
            assert "result:  queue general-12345" in out.stdout, out.stdout
            deadline = time.monotonic() + 20
            while calls_in(prod_db) < n:
                assert time.monotonic() < deadline, f"production did not record call {n}"
                time.sleep(0.1)
        assert calls_in(prod_db) == 3          # the four dry runs are not there
        over = run(["call", "12345", "--port", str(prod_port)], env)
        assert "result:  queue abuse-review" in over.stdout, over.stdout   # the limit is live in production
    finally:
        if dry is not None:
            stop(dry)
        assert prod_pid.read_text().strip() == str(prod.pid)          # still production's after the dry run
        stop(prod)
    assert not prod_pid.exists() and not dry_pid.exists()


def test_a_dry_run_with_records_keeps_them_apart_and_never_counts_them(site):
    tmp_path, env = site
    dry_pid, dry_db = tmp_path / "dry" / "hotline.pid", tmp_path / "dry" / "hotline.sqlite3"
    dry = start(["serve", "--dry-run", "--records", "--drain-timeout", "2"], env, dry_pid)
    try:
        for n in range(1, 5):
            out = run(["call", "12345", "--dtmf", "2"], env)
            assert "result:  queue general-12345" in out.stdout, out.stdout
            deadline = time.monotonic() + 20
            while calls_in(dry_db) < n:
                assert time.monotonic() < deadline, f"dry run did not record call {n}"
                time.sleep(0.1)
    finally:
        stop(dry)
    assert not (tmp_path / "prod").exists()      # production's records, spool and pid file: never created


def test_reload_with_no_engine_and_with_a_stale_pid_file(site, tmp_path):
    _, env = site
    none = run(["reload"], env)
    assert none.returncode == 2 and "no running engine" in none.stderr and "missing" in none.stderr
    stale = Path(env["HOTLINE_PID_FILE"])
    stale.parent.mkdir(parents=True, exist_ok=True)
    sleeper = subprocess.Popen(["sleep", "30"])         # a live process that is not an engine
    try:
        stale.write_text(f"{sleeper.pid}\n")
        wrong = run(["reload"], env)
        assert wrong.returncode == 2 and f"pid {sleeper.pid}, which is not a hotline serve" in wrong.stderr
    finally:
        sleeper.kill()
        sleeper.wait()
    gone = run(["reload"], env)
    assert gone.returncode == 2 and "which is gone (stale pid file)" in gone.stderr


def test_reload_prints_the_engines_refusal_with_file_and_line(site):
    """The engine's own check refuses (its file is broken, the one checked here is fine): the CLI says so from
    the engine's answer, with the problems, and exit 1."""
    tmp_path, env = site
    pid_file = Path(env["HOTLINE_PID_FILE"])
    engine = start(["serve", "--port", str(free_port()), "--no-records", "--no-ami", "--no-web",
                    "--drain-timeout", "2"], env, pid_file)
    try:
        table = Path(env["HOTLINE_ROUTING_TABLE"])
        good = table.read_text(encoding="utf-8")
        table.write_text(good.replace("general_queue: general-12345", "general_queue: general-12346"),
                         encoding="utf-8")
        elsewhere = tmp_path / "checked-here.yaml"
        elsewhere.write_text(good, encoding="utf-8")
        refused = run(["reload"], dict(env, HOTLINE_ROUTING_TABLE=str(elsewhere)))
        assert refused.returncode == 1, refused.stdout + refused.stderr
        assert re.search(rf"{re.escape(str(table))}:\d+:\d+: queue 'general-12346' is not defined; did you mean "
                         r"'general-12345'\?", refused.stderr), refused.stderr
        assert f"refused by pid {engine.pid}: it keeps table " in refused.stderr
        table.write_text(good + "\n# edited\n", encoding="utf-8")
        ok = run(["reload"], env)
        assert ok.returncode == 0 and re.search(rf"reloaded by pid {engine.pid}: table \w+ \(was \w+\)", ok.stdout)
    finally:
        stop(engine)


def test_hotline_web_on_a_taken_port_says_so_without_a_traceback(site):
    _, env = site
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        out = run(["web", "--port", str(port)], dict(env, HOTLINE_AMI_SECRET="s"))
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert f"web view address 127.0.0.1:{port} cannot be used: Address already in use (held by pid {os.getpid()}" \
        in out.stderr
