"""`hotline serve` as deployed: engine + records + AMI link + supervisors' view in one process, real sockets.

An emulated Asterisk (AMI) sends a queue call that an agent answers; the call's outcome must reach the SQL
records, the web view must be up beside the engine, and every table load must be in the audit trail with
who loaded it.
"""
from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import sys
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from ivr.ami.emulator import AmiEmulator
from ivr.emulator import place_call
from tests.test_engine_cli import free_port

ROOT = Path(__file__).resolve().parents[1]


async def wait_for(predicate, timeout: float = 15.0, interval: float = 0.1):
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(interval)


async def stop_serve(proc: asyncio.subprocess.Process, timeout: float = 15.0) -> None:
    """SIGTERM a `hotline serve` subprocess and wait for its drain; killed if it takes over `timeout` seconds."""
    proc.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(proc.wait(), timeout)
    except asyncio.TimeoutError:
        proc.kill()
        await proc.wait()


def rows(db_url: str, sql: str) -> list[tuple]:
    engine = sa.create_engine(db_url)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(sa.text(sql))]
    except sa.exc.OperationalError:
        return []  # tables not created yet: the recorder creates them on its first flush
    finally:
        engine.dispose()


async def test_serve_runs_engine_records_ami_and_web_together(tmp_path):
    pbx = AmiEmulator(secret="s3cret")
    ami_port = await pbx.start()
    pbx.add_queue("general-12345")
    pbx.add_member("general-12345", "PJSIP/agent1", "agent1")
    table = tmp_path / "routing.yaml"
    shutil.copy(ROOT / "conf" / "routing.yaml", table)
    db_url = f"sqlite:///{tmp_path / 'records.sqlite3'}"
    agi_port, pid_file = free_port(), tmp_path / "hotline.pid"
    env = dict(os.environ, PYTHONPATH=str(ROOT), HOTLINE_ROUTING_TABLE=str(table), HOTLINE_DB_URL=db_url,
               HOTLINE_SPOOL_DIR=str(tmp_path / "spool"), HOTLINE_CALLER_HASH_KEY="test-key",
               HOTLINE_AMI_PORT=str(ami_port), HOTLINE_AMI_SECRET="s3cret", HOTLINE_WEB_PORT="0",
               HOTLINE_WEB_ADMIN_PASSWORD="admin-pw", HOTLINE_WEB_SUPERVISOR_PASSWORD="super-pw",
               HOTLINE_SUPERVISOR_AUDIT=str(tmp_path / "audit.jsonl"), SUDO_USER="admin-li")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "scripts.hotline", "--log-format", "json", "serve", "--port", str(agi_port),
        "--pid-file", str(pid_file), "--drain-timeout", "2", cwd=ROOT, env=env, stderr=asyncio.subprocess.PIPE)
    log_lines: list[str] = []

    async def read_log():
        async for raw in proc.stderr:
            log_lines.append(raw.decode("utf-8", "replace"))

    reader = asyncio.create_task(read_log())
    try:
        web_url = await wait_for(lambda: next((json.loads(l)["url"] for l in log_lines
                                               if '"supervisor.web_started"' in l), None))
        await wait_for(lambda: pid_file.exists())
        await wait_for(lambda: pbx.count("QueueStatus") >= 1)  # the view resynchronised after login

        # a call routed by the engine, then answered in the queue (as Asterisk reports it over AMI)
        transcript = await place_call("127.0.0.1", agi_port, dialed="12345", dtmf=["1"], timeout=10)
        assert transcript.variables["HOTLINE_ACTION"] == "queue"
        caller, _agent = pbx.answered_call("general-12345", "PJSIP/agent1", caller_num="13800138000",
                                           dialed="12345")
        pbx.hangup(caller.name)  # the outcome record is written when the call ends

        answered = await wait_for(lambda: rows(db_url, "select outcome, answered_by, caller_masked from calls "
                                                       "where outcome = 'answered'"))
        assert answered[0][1] and answered[0][2] == "138****8000"
        assert await wait_for(lambda: rows(db_url, "select uniqueid from calls where rule_id = '12345-unified'"))
        loads = await wait_for(lambda: rows(db_url, "select loaded_by, source from table_versions"))
        assert {source.rsplit("/", 1)[-1] for _, source in loads} == {"routing.yaml", "ivr.yaml"}
        assert all(by == "admin-li (serve start)" for by, _ in loads)

        # the supervisors' view is served beside the engine and refuses anonymous access
        async with httpx.AsyncClient() as web:
            anonymous = await web.get(web_url + "api/state")
            assert anonymous.status_code in (401, 303, 302)

        # an admin's reload is attributed to them
        table.write_text(table.read_text(encoding="utf-8") + "\n# edited by admin-li\n", encoding="utf-8")
        reload = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "scripts.hotline", "reload", "--pid-file", str(pid_file), cwd=ROOT, env=env)
        assert await reload.wait() == 0
        assert await wait_for(lambda: rows(db_url, "select 1 from table_versions where loaded_by = 'admin-li'"))

        # ... and the trail says what changed: the text of each version, diffed on demand
        versions = rows(db_url, "select version, loaded_by from table_versions where source like '%routing.yaml' "
                                "order by loaded_at")
        (first, _), (second, by) = versions
        assert by == "admin-li"
        diff = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "scripts.hotline", "records", "versions", "--diff", first[:8], second[:8],
            cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE)
        out, _ = await diff.communicate()
        assert diff.returncode == 0 and b"+# edited by admin-li" in out and b"(admin-li," in out
    finally:
        if proc.returncode is None:
            await stop_serve(proc)
        reader.cancel()
        await pbx.stop()
    assert proc.returncode == 0, "".join(log_lines[-20:])


async def test_a_first_run_view_never_meets_the_records_database_without_its_tables(tmp_path):
    """`make run` on a fresh clone: the web view's first queries (pending callbacks, overdue work orders) ran
    before the recorder's first flush had created the SQLite tables, and logged `no such table`."""
    pid_file = tmp_path / "hotline.pid"
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOTLINE_")}
    env.update(PYTHONPATH=str(ROOT), HOTLINE_DB_URL=f"sqlite:///{tmp_path / 'records.sqlite3'}",
               HOTLINE_SPOOL_DIR=str(tmp_path / "spool"), HOTLINE_CALLER_HASH_KEY="test-key", HOTLINE_WEB_PORT="0",
               HOTLINE_WEB_ADMIN_PASSWORD="admin-pw", HOTLINE_WEB_SUPERVISOR_PASSWORD="super-pw",
               HOTLINE_SUPERVISOR_AUDIT=str(tmp_path / "audit.jsonl"))
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "scripts.hotline", "--log-format", "json", "serve", "--port", str(free_port()),
        "--pid-file", str(pid_file), "--drain-timeout", "1", cwd=ROOT, env=env, stderr=asyncio.subprocess.PIPE)
    try:
        await wait_for(lambda: pid_file.exists())
        await asyncio.sleep(2)                 # the view's first polls have run
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(proc.communicate(), 30)
    log = err.decode("utf-8", "replace")
    assert '"supervisor.web_started"' in log and "no such table" not in log
