"""`hotline queues watch --once` and the web view, as fresh processes, show today's figures from the SQL records
(a restart keeps them), the same as `hotline report daily` for today."""
from __future__ import annotations

import asyncio
import json
import re
import sys
import time
from datetime import datetime, timedelta, timezone

from click.testing import CliRunner

from records.figures import leg
from records.recorder import CallRecorder
from records.types import CallRecord
from scripts.hotline import cli
from supervisor.state import HOTLINE_TZ, local_day
from tests.test_supervisor_cli import ROOT, _env
from tests.test_supervisor_web import make_emulator


def _record_today(url: str, tmp_path) -> None:
    now = datetime.now(timezone.utc)
    midnight = datetime.combine(local_day(time.time()), datetime.min.time(), tzinfo=HOTLINE_TZ)
    at = max(now - timedelta(minutes=5), midnight)
    rec = CallRecorder(url, tmp_path / "spool", b"k", auto_upgrade=True)
    try:
        for i, (queue, outcome, wait) in enumerate([("general-12345", "answered", 4), ("general-12345", "answered", 30),
                                                    ("general-12345", "abandoned", 20), ("expert-12320", "answered", 2)]):
            rec.record_call(CallRecord(
                uniqueid=f"t{i}", dialed="12345", line="12345" if queue == "general-12345" else "12320", caller=None,
                arrived_at=at, action="queue", target=queue, outcome=outcome, wait_seconds=wait, ended_at=at,
                queue_legs=(leg(queue, at, at + timedelta(seconds=wait), wait, outcome, "haikou"),)))
        rec.flush()
    finally:
        rec.close()


async def test_watch_once_shows_todays_figures_from_the_records(tmp_path):
    env = None
    emu = make_emulator()
    await emu.start()
    try:
        env = {**_env(emu.port, tmp_path), "HOTLINE_LANG": "en"}
        _record_today(env["HOTLINE_DB_URL"], tmp_path)
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "scripts.hotline", "--log-level", "warning", "queues", "watch", "--once",
            cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(proc.communicate(), 30)
    finally:
        await emu.stop()
    text = out.decode()
    assert proc.returncode == 0, err.decode()
    general = next(line for line in text.splitlines() if "[general-12345]" in line)
    expert = next(line for line in text.splitlines() if "[expert-12320]" in line)
    assert general.split()[-4:] == ["2", "1", "0", "33%"]      # answered, abandoned, overflowed, 1 of 3 in 15 s
    assert expert.split()[-4:] == ["1", "0", "0", "100%"]
    assert re.search(r"12345\b[^:\n]*: 0 waiting, 2 answered, 1 abandoned, 0 overflowed", text)

    # the report for today says the same
    result = CliRunner().invoke(cli, ["report", "daily", "--db-url", env["HOTLINE_DB_URL"], "--json",
                                      "--date", local_day(time.time()).isoformat()], catch_exceptions=False)
    doc = json.loads(result.stdout)
    queues = {r["key"]: (r["answered"], r["abandoned"], r["overflowed"], r["service_level"]) for r in doc["queues"]}
    assert queues == {"general-12345": (2, 1, 0, 0.3333), "expert-12320": (1, 0, 0, 1.0)}


async def test_the_web_view_starts_with_todays_figures_and_adds_live_calls(tmp_path):
    from supervisor.service import build_service
    from scripts.settings import Settings
    from ivr.ami.client import AmiClient
    from tests.test_supervisor_web import PASSWORDS, SECRET, http, login, queue_of

    url = f"sqlite:///{tmp_path / 'records.sqlite3'}"
    _record_today(url, tmp_path)
    emu = make_emulator()
    await emu.start()
    env = {"HOTLINE_WEB_ADMIN_PASSWORD": PASSWORDS["admin"], "HOTLINE_WEB_SUPERVISOR_PASSWORD":
           PASSWORDS["supervisor"], "HOTLINE_SUPERVISOR_AUDIT": str(tmp_path / "audit.jsonl")}
    client = AmiClient("127.0.0.1", emu.port, "hotline", SECRET, reconnect_first_delay=0.05)
    service = build_service(Settings(db_url=url, spool_dir=tmp_path / "spool"), host="127.0.0.1", port=0,
                            environ=env, clients={"haikou": client})
    await service.start()
    try:
        async with http(service) as web:
            await login(web, "supervisor")
            state = (await web.get("/api/state")).json()
            general = queue_of(state, "general-12345")
            assert (general["answered"], general["abandoned"], general["answered_in_sl"]) == (2, 1, 1)
            assert state["figures"]["seeded_at"] is not None and state["figures"]["seed_error"] is None
            emu.answered_call("general-12345", "Local/agent2@queue-agents/n", caller_num="13812340000",
                              dialed="12345")
            for _ in range(100):
                state = (await web.get("/api/state")).json()
                if queue_of(state, "general-12345")["answered"] == 3:
                    break
                await asyncio.sleep(0.05)
            assert queue_of(state, "general-12345")["answered"] == 3
            metrics = (await web.get("/metrics")).text
            assert 'hotline_queue_answered_today{queue="general-12345",server="haikou"} 3.0' in metrics
            assert 'hotline_queue_answered_total{queue="general-12345",server="haikou"} 1.0' in metrics
    finally:
        await service.stop()
        await emu.stop()
