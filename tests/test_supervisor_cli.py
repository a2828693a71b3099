"""`hotline queues watch --once` and `hotline web` as real processes against the AMI emulator."""
from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from pathlib import Path

import httpx

from tests.test_supervisor_web import FULL, SECRET, make_emulator

ROOT = Path(__file__).resolve().parents[1]


def _env(port: int, tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOTLINE_")}
    env.update({"HOTLINE_AMI_SERVERS": f"haikou=127.0.0.1:{port}", "HOTLINE_AMI_SECRET": SECRET,
                "HOTLINE_SUPERVISOR_AUDIT": str(tmp_path / "audit.jsonl"), "PYTHONPATH": str(ROOT),
                "HOTLINE_DB_URL": f"sqlite:///{tmp_path / 'records.sqlite3'}", **extra})
    return env


async def test_queues_watch_once_prints_one_masked_frame(tmp_path):
    emu = make_emulator()
    await emu.start()
    try:
        caller = emu.new_call(FULL, "12320", caller_name="[12320] Zhang San")
        emu.caller_joins_queue(caller.name, "expert-12320")
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "scripts.hotline", "--log-level", "warning", "queues", "watch", "--once",
            "--lang", "en", cwd=ROOT, env=_env(emu.port, tmp_path), stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(proc.communicate(), 30)
    finally:
        await emu.stop()
    text = out.decode()
    assert proc.returncode == 0, err.decode()
    assert "== haikou (connected)" in text
    assert re.search(r"expert-12320\]\s+1\s", text) and re.search(r"general-12345\]\s+0\s", text)
    assert "12320 卫生健康专家座席 (health expert seat) [expert-12320]" in text  # the table's name, id beside
    assert text.index("general-12345") < text.index("expert-12320")
    assert "line 12320" in text and "138****5678" in text and "Zhang San" in text
    assert FULL not in text + err.decode()


async def test_queues_watch_once_fails_clearly_without_asterisk(tmp_path):
    emu = make_emulator()
    await emu.start()
    port = emu.port
    await emu.stop()  # nothing listens there now
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "scripts.hotline", "--log-level", "error", "queues", "watch", "--once",
        "--timeout", "1", cwd=ROOT, env=_env(port, tmp_path, HOTLINE_LANG="en"), stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 1
    assert "NOT CONNECTED yet (retrying since" in out.decode() and "not every Asterisk server answered" in err.decode()


async def test_hotline_web_serves_and_prints_generated_passwords_once(tmp_path):
    emu = make_emulator()
    await emu.start()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "scripts.hotline", "--log-format", "json", "web", "--host", "127.0.0.1",
        "--port", "0", cwd=ROOT, env=_env(emu.port, tmp_path), stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT)
    seen: list[str] = []
    try:
        async def until_started() -> str:
            while True:
                line = (await proc.stdout.readline()).decode()
                assert line, "hotline web exited: " + "".join(seen)
                seen.append(line)
                m = re.search(r'"url": ?"http://127\.0\.0\.1:(\d+)/".*supervisor\.web_started', line)
                if m:
                    return m[1]
        port = await asyncio.wait_for(until_started(), 30)
        passwords = dict(re.findall(r"generated password for '(\w+)': (\S+)", "".join(seen)))
        assert set(passwords) == {"admin", "supervisor"}
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
            page = await client.get("/login")
            token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)[1]
            r = await client.post("/login", data={"csrf_token": token, "username": "admin",
                                                  "password": passwords["admin"]})
            assert r.status_code == 303
            state = (await client.get("/api/state")).json()
            # the table's order: the general 12345 queue first
            assert [q["name"] for q in state["servers"][0]["queues"]] == ["general-12345", "expert-12320"]
    finally:
        proc.send_signal(signal.SIGINT)
        rest, _ = await asyncio.wait_for(proc.communicate(), 30)
        await emu.stop()
    assert proc.returncode == 0
    assert "".join(seen).count("generated password for 'admin'") == 1
    assert "generated password" not in rest.decode()


async def test_queues_watch_redraws_when_a_caller_joins(tmp_path):
    emu = make_emulator()
    await emu.start()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "scripts.hotline", "--log-level", "error", "queues", "watch", "--interval", "0.5",
        cwd=ROOT, env=_env(emu.port, tmp_path, HOTLINE_LANG="en"), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    frames: list[str] = []
    try:
        async def next_frame() -> str:
            lines = []
            while True:
                line = (await proc.stdout.readline()).decode()
                assert line, "queues watch exited"
                if line.startswith("12345 queues") and lines:
                    frames.append("".join(lines))
                    lines = [line]
                    return frames[-1]
                lines.append(line)

        async def until_connected() -> None:
            while "(connected)" not in await next_frame():
                pass
        await asyncio.wait_for(until_connected(), 15)
        caller = emu.new_call(FULL, "12320", caller_name="[12320] Zhang San")
        emu.caller_joins_queue(caller.name, "expert-12320")

        async def until_caller() -> str:
            while True:
                frame = await next_frame()
                if "line 12320" in frame:
                    return frame
        frame = await asyncio.wait_for(until_caller(), 15)
    finally:
        proc.send_signal(signal.SIGINT)
        await asyncio.wait_for(proc.communicate(), 15)
        await emu.stop()
    assert "138****5678" in frame and FULL not in "".join(frames)
    assert proc.returncode == 0


async def test_queues_watch_in_chinese_by_default_and_a_first_run_hint_without_ami(tmp_path):
    emu = make_emulator()
    await emu.start()
    try:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "scripts.hotline", "--log-level", "warning", "queues", "watch", "--once",
            cwd=ROOT, env=_env(emu.port, tmp_path), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(proc.communicate(), 30)
    finally:
        await emu.stop()
    assert proc.returncode == 0, err.decode()
    assert "== haikou (已连接)" in out.decode() and "12345 综合受理 [general-12345]" in out.decode()
    env = _env(1, tmp_path)
    del env["HOTLINE_AMI_SECRET"], env["HOTLINE_AMI_SERVERS"]
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "scripts.hotline", "--log-level", "error", "queues", "watch", "--once", "--lang", "en",
        cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 1
    assert "No Asterisk (AMI) configured" in out.decode() and "HOTLINE_AMI_SECRET" in out.decode()
