"""The supervisors' audit trail in SQL (SQLite and PostgreSQL): actions land in `supervisor_actions`, every view
sharing the database sees them, and with the database down they wait in the spool and arrive later. Without a
configured database the JSON-lines file stays the trail."""
from __future__ import annotations

import asyncio
import sqlite3
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import pytest
from sqlalchemy import make_url, select

from records.actions import ActionRecorder
from records.db import make_engine, upgrade
from records.schema import supervisor_actions
from scripts.settings import Settings
from supervisor.audit import SPOOL_SUBDIR, AuditLog
from tests.db_fixtures import TcpProxy, db_url, pg_url  # noqa: F401

T0 = 1_764_151_200.0     # 2026-11-26 10:00 UTC


def sql_rows(url: str) -> list[dict[str, Any]]:
    engine = make_engine(url)
    try:
        upgrade(engine)
        with engine.connect() as conn:
            return [dict(r) for r in conn.execute(select(supervisor_actions).order_by(
                supervisor_actions.c.at, supervisor_actions.c.record_id)).mappings()]
    finally:
        engine.dispose()


async def eventually(check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = await asyncio.to_thread(check)
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.02)


def audit_for(url: str, spool: Path, **kw: Any) -> AuditLog:
    options = {"flush_interval": 0.05, "max_backoff": 0.2, "op_timeout": 0.5, "read_timeout": 0.5, **kw}
    return AuditLog(spool / "unused.jsonl", ActionRecorder(url, spool, auto_upgrade=True, **options).start())


def pause(audit: AuditLog, at: float, user: str = "wang", result: str = "ok", message: str = "Success") -> dict:
    return audit.record(at=at, user=user, role="supervisor", action="pause",
                        params={"server": "haikou", "queue": "general-12345", "interface": "PJSIP/7001",
                                "reason": "meeting"}, result=result, message=message)


async def test_actions_land_in_sql_and_every_view_sees_them(db_url, tmp_path):  # noqa: F811
    first, second = audit_for(db_url, tmp_path / "a"), audit_for(db_url, tmp_path / "b")
    try:
        entry = pause(first, T0)
        pause(first, T0 + 1, result="error", message="Interface not found")
        second.record(at=T0 + 1, user="li", role="admin", action="remove", params={"queue": "expert-12320"},
                      result="ok")
        # At once (still spooled or already written), newest first, in the file's shape.
        tail = first.tail(10)
        assert tail[-1] == entry
        assert [(e["action"], e["result"]) for e in tail][-2:] == [("pause", "error"), ("pause", "ok")]
        await eventually(lambda: len(sql_rows(db_url)) == 3, 5, "three rows in SQL")
        rows = sql_rows(db_url)
        assert rows[0]["at"] == datetime.fromtimestamp(T0, timezone.utc)
        assert (rows[0]["user"], rows[0]["role"], rows[0]["action"], rows[0]["result"]) == (
            "wang", "supervisor", "pause", "ok")
        assert rows[0]["params"] == {"server": "haikou", "queue": "general-12345", "interface": "PJSIP/7001",
                                     "reason": "meeting"}
        # Another view on the same database sees both views' actions, newest first; ties keep recording order.
        shared = second.tail(10)
        assert [(e["user"], e["action"], e["result"]) for e in shared] == [
            ("li", "remove", "ok"), ("wang", "pause", "error"), ("wang", "pause", "ok")]
        assert shared[-1] == entry and second.tail(1) == shared[:1]
    finally:
        first.close()
        second.close()
    assert not list((tmp_path / "a").glob("seg-*.jsonl"))       # trimmed once written


async def test_sqlite_locked_actions_wait_in_the_spool_and_arrive_later(tmp_path):
    url = f"sqlite:///{tmp_path / 'records.sqlite3'}"
    sql_rows(url)                                                # the schema exists
    blocker = sqlite3.connect(tmp_path / "records.sqlite3", timeout=0.1, isolation_level=None)
    audit = audit_for(url, tmp_path / "spool", op_timeout=0.2)
    try:
        blocker.execute("BEGIN EXCLUSIVE")                       # the database refuses every other writer
        pause(audit, T0)
        await eventually(lambda: not audit.store.healthy, 5, "the writer to notice the lock")
        assert list((tmp_path / "spool").glob("seg-*.jsonl"))   # kept, durable
        assert [e["action"] for e in audit.tail(5)] == ["pause"]  # shown from the spool meanwhile
        blocker.execute("ROLLBACK")
        await eventually(lambda: len(sql_rows(url)) == 1, 5, "the spooled action in SQL")
        await eventually(lambda: audit.store.healthy, 5, "health back")
    finally:
        blocker.close()
        audit.close()
    assert not list((tmp_path / "spool").glob("seg-*.jsonl"))


@pytest.mark.postgres
async def test_postgresql_down_actions_are_spooled_and_arrive_when_it_returns(pg_url, tmp_path):  # noqa: F811
    target = make_url(pg_url)
    proxy = TcpProxy(target.host or "127.0.0.1", target.port or 5432)
    port = await proxy.start()
    proxied = target.set(port=port).render_as_string(hide_password=False)
    audit = audit_for(proxied, tmp_path / "spool")
    try:
        pause(audit, T0)
        await eventually(lambda: len(sql_rows(pg_url)) == 1, 5, "the first action in SQL")
        proxy.cut()
        for i in range(1, 4):
            pause(audit, T0 + i, user=f"user-{i}")
        await eventually(lambda: not audit.store.healthy, 5, "the writer to notice the cut")
        assert len(sql_rows(pg_url)) == 1
        # (read in a thread: the proxy runs on this event loop)
        assert [e["user"] for e in await asyncio.to_thread(audit.tail, 10)] == ["user-3", "user-2", "user-1"]
        proxy.restore()
        await eventually(lambda: len(sql_rows(pg_url)) == 4, 10, "the spooled actions after the outage")
        # (the writer knows the database is back as soon as its commit returns: before it trims the spool)
        await eventually(lambda: audit.store.healthy, 5, "health back")
        assert [e["user"] for e in await asyncio.to_thread(audit.tail, 10)] == ["user-3", "user-2", "user-1", "wang"]
    finally:
        await asyncio.to_thread(audit.close)
        await proxy.stop()
    assert sorted(r["user"] for r in sql_rows(pg_url)) == ["user-1", "user-2", "user-3", "wang"]   # once each


async def test_actions_recorded_while_down_survive_a_restart(db_url, tmp_path):  # noqa: F811
    """The view stops during the outage: the next start (same spool) writes what was left."""
    down = audit_for("postgresql+psycopg://postgres@127.0.0.1:1/down", tmp_path / "spool")
    pause(down, T0)
    down.close()
    assert list((tmp_path / "spool").glob("seg-*.jsonl"))
    back = audit_for(db_url, tmp_path / "spool")
    try:
        await eventually(lambda: len(sql_rows(db_url)) == 1, 5, "the action left in the spool")
    finally:
        back.close()


def test_sql_only_when_a_database_is_configured(tmp_path):
    file_only = AuditLog.for_settings(Settings(), tmp_path / "audit.jsonl")
    assert file_only.store is None
    pause(file_only, T0)
    assert (tmp_path / "audit.jsonl").exists() and file_only.tail(1)[0]["action"] == "pause"

    url = f"sqlite:///{tmp_path / 'records.sqlite3'}"
    with_db = AuditLog.for_settings(Settings(db_url=url, spool_dir=tmp_path / "spool"), tmp_path / "other.jsonl")
    try:
        assert with_db.store is not None
        pause(with_db, T0)
        assert with_db.tail(1)[0]["user"] == "wang"
    finally:
        with_db.close()
    assert not (tmp_path / "other.jsonl").exists()
    assert (tmp_path / "spool" / SPOOL_SUBDIR).is_dir()
    assert [r["action"] for r in sql_rows(url)] == ["pause"]


async def test_the_web_view_audits_to_sql_when_configured(tmp_path):
    from ivr.ami.client import AmiClient
    from supervisor.service import build_service
    from tests.test_supervisor_web import PASSWORDS, SECRET, http, login, make_emulator

    url = f"sqlite:///{tmp_path / 'records.sqlite3'}"
    emulator = make_emulator()
    await emulator.start()
    client = AmiClient("127.0.0.1", emulator.port, "hotline", SECRET, reconnect_first_delay=0.05)
    env = {"HOTLINE_WEB_ADMIN_PASSWORD": PASSWORDS["admin"],
           "HOTLINE_WEB_SUPERVISOR_PASSWORD": PASSWORDS["supervisor"],
           "HOTLINE_SUPERVISOR_AUDIT": str(tmp_path / "audit.jsonl")}
    service = build_service(Settings(db_url=url, spool_dir=tmp_path / "spool"), host="127.0.0.1", port=0,
                            environ=env, clients={"haikou": client})
    await service.start()
    try:
        assert await service.hub.wait_synced(5)
        async with http(service) as web:
            csrf = await login(web, "admin")
            r = await web.post("/api/action/pause", headers={"X-CSRF-Token": csrf}, json={
                "server": "haikou", "queue": "general-12345", "interface": "PJSIP/7001", "reason": "meeting"})
            assert r.json()["ok"], r.text
            audit = (await web.get("/api/audit")).json()["entries"]
            assert [(e["user"], e["action"], e["result"]) for e in audit] == [("admin", "pause", "ok")]
    finally:
        await service.stop()
        await emulator.stop()
    rows = sql_rows(url)
    assert [(r["user"], r["role"], r["action"], r["params"]["interface"]) for r in rows] == [
        ("admin", "admin", "pause", "PJSIP/7001")]
    assert not (tmp_path / "audit.jsonl").exists()


def test_no_window_where_written_actions_are_invisible(db_url, tmp_path, monkeypatch):  # noqa: F811
    """Defect 16: the database returns; the flush commits the spooled actions and trims their segment. A read at
    any instant of that (here: right after the trim, the moment the spool no longer has them) shows them all."""
    store = ActionRecorder("postgresql+psycopg://postgres@127.0.0.1:1/down", tmp_path / "spool", op_timeout=0.5,
                           auto_upgrade=True)
    audit = AuditLog(tmp_path / "unused.jsonl", store)       # no flusher thread: every flush is this test's
    pause(audit, T0)
    pause(audit, T0 + 1, user="li")
    store.flush()
    assert not store.healthy
    store.close()
    back = ActionRecorder(db_url, tmp_path / "spool", op_timeout=2, read_timeout=2, auto_upgrade=True)
    back._healthy = False                          # as a recorder that started while the database was away
    seen: list[list[str]] = []
    remove = back._spool.remove

    def remove_then_read(path: Path) -> None:
        remove(path)
        seen.append([e["user"] for e in back.recent(10)])

    monkeypatch.setattr(back._spool, "remove", remove_then_read)
    try:
        assert back.flush() == 2
        assert seen == [["li", "wang"]]
    finally:
        back.close()


def test_actions_kept_in_memory_are_visible_until_committed(tmp_path, monkeypatch):
    """The spool's disk failed: the action is kept in memory; while the flush writes it to SQL, a read still
    finds it (in memory or in SQL, never in neither)."""
    url = f"sqlite:///{tmp_path / 'records.sqlite3'}"
    store = ActionRecorder(url, tmp_path / "spool", auto_upgrade=True)
    try:
        store.flush()                                            # schema ready
        monkeypatch.setattr(store._spool, "append", lambda kind, row: (_ for _ in ()).throw(OSError(28, "full")))
        pause(AuditLog(tmp_path / "unused.jsonl", store), T0)
        monkeypatch.undo()
        seen: list[list[str]] = []
        write = store._write_entries

        def write_then_read(entries):
            # Read in the middle of the flush, just before the commit and just after it.
            seen.append([e["user"] for e in store.recent(10)])
            write(entries)
            seen.append([e["user"] for e in store.recent(10)])

        monkeypatch.setattr(store, "_write_entries", write_then_read)
        store.flush()
        assert seen and all(users == ["wang"] for users in seen), seen
    finally:
        store.close()
