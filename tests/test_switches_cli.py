"""`hotline switch`: flips are stored with who/when/why (SQL), refused without a reason or for an unknown name;
a running `hotline serve` routes the next call with the switch before the command returns (SIGUSR1 + ack), and
a flip written by another process is seen by the engine's background refresh without any signal."""
from __future__ import annotations

import asyncio
import os
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner

from ivr.emulator import place_call
from records.switches import SwitchStore
from scripts.hotline import cli
from tests.test_engine_cli import free_port
from tests.test_serve_integration import stop_serve, wait_for

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def env(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'records.sqlite3'}"
    monkeypatch.setenv("HOTLINE_DB_URL", url)
    monkeypatch.setenv("SUDO_USER", "admin-wang")
    return url


def run(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_on_list_off_history_keep_who_when_why(env, tmp_path):
    pid = str(tmp_path / "none.pid")
    on = run("switch", "on", "typhoon", "--why", "台风“摩羯”", "--until", "+2h", "--pid-file", pid)
    assert on.exit_code == 0, on.output
    assert "typhoon (台风停工公告 / Typhoon closure announcement) is ON" in on.output
    assert "by admin-wang" in on.output and "Asia/Shanghai" in on.output and "no engine runs on this host" in on.output
    listed = run("switch", "list")
    assert "ON      typhoon" in listed.output and "on by admin-wang (cli)" in listed.output
    assert "台风“摩羯”; until" in listed.output and "OFF     force-night" in listed.output
    state = SwitchStore.for_url(env).snapshot().states["typhoon"]
    assert state.until - state.changed_at == timedelta(hours=2)
    off = run("switch", "off", "typhoon", "--why", "过境", "--pid-file", pid)
    assert off.exit_code == 0 and "is OFF" in off.output
    history = run("switch", "history").output.splitlines()
    assert "typhoon" in history[0] and "off admin-wang (cli): 过境" in history[0]
    assert "on  admin-wang (cli): 台风“摩羯”; until" in history[1]


def test_refused_flips_write_nothing(env):
    unknown = run("switch", "on", "typoon", "--why", "x")
    assert unknown.exit_code == 1 and "no switch 'typoon' in the routing table (known: force-night" in unknown.output
    blank = run("switch", "on", "typhoon", "--why", "  ")
    assert blank.exit_code == 1 and "say why" in blank.output
    past = run("switch", "on", "typhoon", "--why", "x", "--until", "2020-01-01T00:00")
    assert past.exit_code == 1 and "is not in the future" in past.output
    missing = run("switch", "on", "typhoon")
    assert missing.exit_code == 2 and "--why" in missing.output
    assert SwitchStore.for_url(env).snapshot().revision == 0


def test_an_expired_switch_is_off_without_a_flip(env):
    store = SwitchStore.for_url(env)
    now = datetime.now(timezone.utc)
    state, _ = store.flip("force-night", True, by="t", via="cli", why="x", at=now, until=now + timedelta(minutes=5))
    assert state.on_at(now) and not state.on_at(now + timedelta(minutes=5))
    assert "EXPIRED" not in run("switch", "list").output
    assert store.snapshot().active_names(now + timedelta(minutes=6)) == frozenset()


async def test_the_local_engine_routes_the_next_call_with_the_switch(env, tmp_path):
    agi_port, pid_file = free_port(), tmp_path / "hotline.pid"
    proc_env = dict(os.environ, PYTHONPATH=str(ROOT), HOTLINE_DB_URL=env, HOTLINE_SPOOL_DIR=str(tmp_path / "spool"),
                    HOTLINE_CALLER_HASH_KEY="k")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "scripts.hotline", "serve", "--port", str(agi_port), "--pid-file", str(pid_file),
        "--no-ami", "--no-web", "--drain-timeout", "1", cwd=ROOT, env=proc_env, stderr=asyncio.subprocess.DEVNULL)
    try:
        await wait_for(lambda: pid_file.exists())
        before = await place_call("127.0.0.1", agi_port, dialed="12345", dtmf=["1"], timeout=10)
        assert "hotline/typhoon-notice" not in before.heard

        flip = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "scripts.hotline", "switch", "on", "typhoon", "--why", "台风", "--pid-file",
            str(pid_file), cwd=ROOT, env=proc_env, stdout=asyncio.subprocess.PIPE)
        out, _ = await flip.communicate()
        assert flip.returncode == 0 and b"in force on the local engine" in out, out
        after = await place_call("127.0.0.1", agi_port, dialed="12345", timeout=10)   # no wait: already in force
        assert after.heard[:1] == ["hotline/typhoon-notice"] and after.variables["HOTLINE_TARGET"] == "general-12345"
        emergency = await place_call("127.0.0.1", agi_port, dialed="110", timeout=10)
        assert "hotline/typhoon-notice" not in emergency.heard and emergency.variables["HOTLINE_ACTION"] == "dial"

        # another process flips it off without signalling: the background refresh picks it up (bound: 2 s)
        SwitchStore.for_url(env).flip("typhoon", False, by="other-engine-host", via="cli", why="x",
                                      at=datetime.now(timezone.utc))

        async def typhoon_heard() -> bool:
            t = await place_call("127.0.0.1", agi_port, dialed="12345", dtmf=["1"], timeout=10)
            return "hotline/typhoon-notice" in t.heard
        for _ in range(100):
            if not await typhoon_heard():
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError("the engine never saw the flip written by another process")
    finally:
        await stop_serve(proc)
    assert proc.returncode == 0


def test_routes_explain_shows_the_switches_on_and_those_that_would_change_the_call(env):
    plain = run("routes", "explain", "12320", "--at", "2026-12-01T10:00")
    assert "switches:  on (records): none" in plain.output
    assert "switch:    typhoon (台风停工公告 / Typhoon closure announcement) on would give: hotline/typhoon-notice, " \
           "then queue general-12345" in plain.output
    assert "switch:    force-night (强制夜间模式 / Force night mode) on would give: queue general-12345" in plain.output
    assert "subcenter-12366-down" not in plain.output
    tried = run("routes", "explain", "12366", "--at", "2026-12-01T10:00", "--switch", "subcenter-12366-down")
    assert "switches:  on (--switch): subcenter-12366-down" in tried.output
    assert "transfer:  three_way" not in tried.output and "transfer:  work_order" in tried.output
    assert "off would give: queue general-12345, transfers three_way, work_order" in tried.output
    SwitchStore.for_url(env).flip("typhoon", True, by="t", via="cli", why="x", at=datetime.now(timezone.utc))
    live = run("routes", "explain", "12345")
    assert "switches:  on (records): typhoon" in live.output and "prompts:   hotline/typhoon-notice" in live.output
    assert "switches:  on (records): typhoon" in run("routes", "explain", "110").output
    assert "switch:    " not in run("routes", "explain", "110").output      # nothing changes an emergency call
    bad = run("routes", "explain", "12345", "--switch", "nope")
    assert bad.exit_code == 2 and "no switch 'nope'" in bad.output


async def test_a_flip_in_the_engines_own_web_view_is_in_force_for_the_next_call(env, tmp_path):
    import json
    import re

    import httpx

    agi_port, pid_file = free_port(), tmp_path / "hotline.pid"
    proc_env = dict(os.environ, PYTHONPATH=str(ROOT), HOTLINE_DB_URL=env, HOTLINE_SPOOL_DIR=str(tmp_path / "spool"),
                    HOTLINE_CALLER_HASH_KEY="k", HOTLINE_WEB_PORT="0", HOTLINE_WEB_ADMIN_PASSWORD="admin-pw-12345",
                    HOTLINE_WEB_SUPERVISOR_PASSWORD="super-pw-12345",
                    HOTLINE_SUPERVISOR_AUDIT=str(tmp_path / "audit.jsonl"))
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "scripts.hotline", "--log-format", "json", "serve", "--port", str(agi_port),
        "--pid-file", str(pid_file), "--no-ami", "--drain-timeout", "1", cwd=ROOT, env=proc_env,
        stderr=asyncio.subprocess.PIPE)
    lines: list[str] = []

    async def read_log():
        async for raw in proc.stderr:
            lines.append(raw.decode("utf-8", "replace"))

    reader = asyncio.create_task(read_log())
    try:
        url = await wait_for(lambda: next((json.loads(l)["url"] for l in lines if '"supervisor.web_started"' in l),
                                          None))
        await wait_for(lambda: pid_file.exists())
        async with httpx.AsyncClient(base_url=url, timeout=5) as web:
            page = await web.get("login")
            token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)[1]
            await web.post("login", data={"csrf_token": token, "username": "admin", "password": "admin-pw-12345"})
            csrf = re.search(r'name="csrf-token" content="([^"]+)"', (await web.get("")).text)[1]
            done = await web.post("api/switches/typhoon/on", data={"why": "台风"}, headers={"X-CSRF-Token": csrf})
            assert done.status_code == 200, done.text
        after = await place_call("127.0.0.1", agi_port, dialed="12345", timeout=10)   # at once: no refresh awaited
        assert after.heard[:1] == ["hotline/typhoon-notice"]
    finally:
        await stop_serve(proc)
        reader.cancel()
    assert proc.returncode == 0, "".join(lines[-20:])
