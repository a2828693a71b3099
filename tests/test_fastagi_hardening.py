"""Issue 10, "Calls": hostile connections never take a call slot; every call Asterisk handed us is recorded
exactly once (over the cap and failing open included), a connection that never was a call never is; a session
cut mid-IVR keeps the route and path known at the cut. Real TCP on loopback, real CallRecorder on SQLite."""
from __future__ import annotations

import asyncio
import socket
import struct
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select

from ivr.emulator import asterisk_env, env_block
from ivr.engine import ConfigHolder, Engine
from ivr.fastagi import ServerLimits, build_server, parse_allow
from records.recorder import CallRecorder
from records.schema import calls
from tests.test_fastagi_support import (MENUS, TABLE, WORKDAY_10H, call, events,  # noqa: F401 (fixture)
                                       running_engine, shipped_config)

KEY = b"test-caller-hash-key"




@pytest.fixture
def recorder(tmp_path: Path):
    rec = CallRecorder(f"sqlite:///{tmp_path / 'calls.sqlite3'}", tmp_path / "spool", KEY, auto_upgrade=True,
                       callback_key=None)
    yield rec
    rec.close()


def rows(recorder: CallRecorder, db: Path) -> list[dict]:
    recorder.flush()
    engine = create_engine(f"sqlite:///{db}")
    try:
        with engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(select(calls).order_by(calls.c.uniqueid))]
    finally:
        engine.dispose()


async def _read_until_closed(reader: asyncio.StreamReader, timeout: float) -> bytes:
    """What the server sent before it closed (a reset counts as closed: refused peers are aborted)."""
    data = b""
    async with asyncio.timeout(timeout):
        try:
            while chunk := await reader.read(4096):
                data += chunk
        except ConnectionResetError:
            pass
    return data


async def _silent(port: int, n: int, local: str = "127.0.0.1") -> list[asyncio.StreamWriter]:
    """n connections that send nothing (opened 100 at a time); their writers, `.reader` set on each."""
    writers = []
    for start in range(0, n, 100):
        opened = await asyncio.gather(*(asyncio.open_connection("127.0.0.1", port, local_addr=(local, 0))
                                        for _ in range(min(100, n - start))))
        for r, w in opened:
            w.reader = r
            writers.append(w)
    return writers


async def _wait_for(predicate, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.01)


# ------------------------------------------------------------------ 1. half-open connections

async def test_two_thousand_silent_connections_leave_the_call_slots_to_real_calls():
    limits = ServerLimits(max_sessions=20, env_timeout=10, reply_timeout=5, drain_timeout=1)
    async with running_engine(limits=limits) as (server, _):
        writers = await _silent(server.port, 2000)
        try:
            # every one reached the server: held as pending (at most max_pending) or refused/evicted
            await _wait_for(lambda: server.pending + server.stats["not_a_call"] >= 2000, 10)
            assert server.active == 0 and server.pending <= limits.max_pending
            await asyncio.sleep(limits.pending_grace)       # the flood is older than the grace now
            t = await call(server, "12320", ["1"], at=WORKDAY_10H)
            assert t.destination == "queue expert-12320" and not t.error   # its IVR, not the fail-open
            assert "hotline/zh/expert-12320-menu" in t.heard
            assert server.stats["refused"] == 0 and server.stats["served"] == 1
        finally:
            for w in writers:
                w.close()


@pytest.mark.parametrize("block, reason", [(b"\n", "empty_env"), (b"\r\n", "empty_env"),
                                           (b"agi_network: yes\n\n", "implausible_env"),
                                           (b"agi_network: yes\nagi_network_script: route\n"
                                            b"agi_request: agi://127.0.0.1/route\nagi_channel: x\n\n",
                                            "implausible_env")])
async def test_an_empty_or_agi_less_block_is_refused_at_once(events, recorder, tmp_path, block, reason):
    limits = ServerLimits(max_sessions=1, env_timeout=10, reply_timeout=30, drain_timeout=1)
    async with running_engine(limits=limits, recorder=recorder) as (server, _):
        r, w = await asyncio.open_connection("127.0.0.1", server.port)
        started = time.monotonic()
        w.write(block)
        assert await _read_until_closed(r, 2) == b""        # not one command sent to it
        assert time.monotonic() - started < 0.5             # at once, not after a timeout
        w.close()
        assert server.active == 0 and server.not_a_call == {reason: 1}
        t = await call(server, "12345", ["2"], at=WORKDAY_10H)   # the one call slot was never taken
        assert t.destination == "queue general-12345" and "hotline/zh/main-menu" in t.heard
    assert [r["uniqueid"] for r in rows(recorder, tmp_path / "calls.sqlite3")] == [t.env["uniqueid"]]
    (note,) = [e for e in events if e["event"] == "fastagi.not_a_call"]
    assert note["reason"] == reason and note["count"] == 1 and note["total"] == 1


async def test_a_pending_flood_from_one_address_cannot_touch_another_address():
    """Per-address cap: one address holding its share of pending connections makes room among its own (oldest
    first); a call from another address is never dropped by it."""
    limits = ServerLimits(max_sessions=5, max_pending=64, max_pending_per_address=16, pending_grace=0.05,
                          env_timeout=10, reply_timeout=5, drain_timeout=1)
    async with running_engine(limits=limits) as (server, _):
        other_r, other_w = await asyncio.open_connection("127.0.0.1", server.port, local_addr=("127.0.0.2", 0))
        first = await _silent(server.port, 16)
        await _wait_for(lambda: server.pending == 17)
        await asyncio.sleep(0.06)
        flood = await _silent(server.port, 40)
        try:
            await _wait_for(lambda: server.pending + server.stats["not_a_call"] == 17 + 40)
            assert server.not_a_call["evicted"] >= 16          # 127.0.0.1's oldest made room, never 127.0.0.2
            assert server.pending <= 17
            assert await _read_until_closed(first[0].reader, 2) == b""   # the oldest was closed
            # 127.0.0.2's connection is still pending: it now sends its block and is served as a call
            other_w.write(env_block(asterisk_env(dialed="12345", uniqueid="other.1")))
            line = await asyncio.wait_for(other_r.readline(), 2)
            assert line.startswith(b"GET VARIABLE HOTLINE_AT")
        finally:
            for w in first + flood + [other_w]:
                w.close()


async def test_a_full_pending_pool_of_young_connections_refuses_the_newcomer_not_them():
    limits = ServerLimits(max_sessions=5, max_pending=8, max_pending_per_address=8, pending_grace=30,
                          env_timeout=10, reply_timeout=5, drain_timeout=1)
    async with running_engine(limits=limits) as (server, _):
        held = await _silent(server.port, 8)
        await _wait_for(lambda: server.pending == 8)
        r, w = await asyncio.open_connection("127.0.0.1", server.port)
        assert await _read_until_closed(r, 2) == b""
        assert server.not_a_call == {"pending_full": 1} and server.pending == 8
        for x in held + [w]:
            x.close()


async def test_a_burst_of_calls_from_one_address_is_served_not_refused_as_a_flood():
    """Asterisk reconnecting after an outage: hundreds of calls at once from one address, each block sent at
    connect. Far more than the pending pools hold arrive in one accept batch; none is refused (pending_full)."""
    limits = ServerLimits(max_sessions=500, max_pending=16, max_pending_per_address=8, env_timeout=10,
                          reply_timeout=10, drain_timeout=2)
    async with running_engine(limits=limits) as (server, _):
        calls = await asyncio.gather(*(call(server, "12345", ["2"], at=WORKDAY_10H, timeout=30)
                                       for _ in range(300)))
        assert [t.destination for t in calls] == ["queue general-12345"] * 300
        assert server.not_a_call == {} and server.stats["served"] == 300


async def test_the_allow_list_closes_other_addresses_at_accept(events):
    holder = ConfigHolder(shipped_config(), TABLE, MENUS)
    engine = Engine(holder, allow_test_clock=True)
    server = build_server(engine, port=0, limits=ServerLimits(env_timeout=2, reply_timeout=5, drain_timeout=1),
                          allow=parse_allow("127.0.0.1, 10.0.0.0/8"))
    await server.start()
    try:
        r, w = await asyncio.open_connection("127.0.0.1", server.port, local_addr=("127.0.0.2", 0))
        w.write(env_block(asterisk_env(dialed="12345")))
        assert await _read_until_closed(r, 2) == b""
        w.close()
        assert server.not_a_call == {"address_not_allowed": 1}
        t = await call(server, "12345", ["2"], at=WORKDAY_10H)         # from 127.0.0.1: let in
        assert t.destination == "queue general-12345"
    finally:
        await server.shutdown(drain_timeout=1)
    (note,) = [e for e in events if e["event"] == "fastagi.not_a_call"]
    assert note["peer"] == "127.0.0.2" and note["reason"] == "address_not_allowed"


def test_parse_allow():
    assert [str(n) for n in parse_allow("127.0.0.0/8,::1, 10.1.2.3")] == ["127.0.0.0/8", "::1/128", "10.1.2.3/32"]
    for bad in ("", " , ", "10.0.0.300", "asterisk.example"):
        with pytest.raises(ValueError):
            parse_allow(bad)


# ------------------------------------------------------------------ 2. every call recorded exactly once

async def test_calls_over_the_cap_are_answered_and_recorded_once_with_the_fail_open_decision(recorder, tmp_path):
    limits = ServerLimits(max_sessions=1, env_timeout=2, reply_timeout=5, drain_timeout=2)
    async with running_engine(limits=limits, recorder=recorder) as (server, _):
        holding = asyncio.create_task(call(server, "12345", ["2"], at=WORKDAY_10H, uniqueid="held.1",
                                           reply_delay=lambda line: 0.5 if line.startswith("GET OPTION") else 0))
        await _wait_for(lambda: server.active == 1)
        over = await call(server, "12320", ["1"], at=WORKDAY_10H, uniqueid="over.1")
        emergency = await call(server, "110", at=WORKDAY_10H, uniqueid="over.110")
        await asyncio.wait_for(holding, 5)
        assert server.stats["refused"] == 2
    assert over.variables["HOTLINE_ACTION"] == "queue" and emergency.destination == "dial trunk emergency-110"
    got = {r["uniqueid"]: r for r in rows(recorder, tmp_path / "calls.sqlite3")}
    assert sorted(got) == ["held.1", "over.1", "over.110"]
    assert (got["over.1"]["action"], got["over.1"]["target"], got["over.1"]["line"]) == ("queue", "general-12345",
                                                                                         "12320")
    assert "failopen" in got["over.1"]["tags"].split("+")
    assert (got["over.110"]["action"], got["over.110"]["target"]) == ("dial", "emergency-110")
    assert got["held.1"]["action"] == "queue" and "failopen" not in (got["held.1"]["tags"] or "")


async def test_a_session_without_a_uniqueid_writes_no_call_record(events):
    """Classic AGI run by hand (or any adapter handing the engine a block without agi_uniqueid): no record under
    a made-up `nouniqueid-<id()>` key, a counted log line instead."""
    from ivr.agi.commands import Response

    class Rec:
        def __init__(self):
            self.calls = []

        def record_call(self, rec):
            self.calls.append(rec)
    rec = Rec()
    engine = Engine(ConfigHolder(shipped_config(), TABLE, MENUS), recorder=rec)
    env = {k: v for k, v in asterisk_env(dialed="110").items() if k != "uniqueid"}
    engine.handle_sync(env, lambda cmd: Response(code=200, result=1))
    engine.handle_sync(env, lambda cmd: Response(code=200, result=1))
    assert rec.calls == [] and engine.not_recorded == 2
    counted = [e["count"] for e in events if e["event"] == "engine.not_a_call"]
    assert counted == [1, 2]


# ------------------------------------------------------------------ 3. cut mid-IVR: route and path kept

async def test_a_session_stalled_mid_ivr_is_recorded_with_its_route_and_path(recorder, tmp_path):
    """The caller chose the callback (6); Asterisk then stops answering (the number prompt never returns): the
    session is dropped after --reply-timeout, and the record keeps callback / general-12345 / main>6."""
    limits = ServerLimits(env_timeout=2, reply_timeout=0.3, drain_timeout=1)
    async with running_engine(limits=limits, recorder=recorder) as (server, _):
        t = await call(server, "12345", ["6"], at=WORKDAY_10H, uniqueid="stall.6", timeout=3,
                       reply_delay=lambda line: 2.0 if line.startswith("GET DATA") else 0)
        await _wait_for(lambda: server.stats["dropped"] == 1)
    assert t.closed_by in ("error", "server", "timeout")
    (row,) = rows(recorder, tmp_path / "calls.sqlite3")
    assert (row["uniqueid"], row["action"], row["target"], row["ivr_path"]) == ("stall.6", "callback",
                                                                                 "general-12345", "main>6")
    assert row["outcome"] is None          # cut on our side: the dialplan failed open, AMI tells the end


async def test_a_session_reset_mid_ivr_is_recorded_with_its_route_and_path(recorder, tmp_path):
    """A peer that resets the connection (RST) inside the cities menu: recorded with the route so far and
    main>5>cities, not with an empty action and path."""
    async with running_engine(recorder=recorder, allow_test_clock=False) as (server, _):
        r, w = await asyncio.open_connection("127.0.0.1", server.port)
        w.write(env_block(asterisk_env(dialed="12345", uniqueid="rst.5", language="zh")))
        options = 0
        while True:
            line = (await asyncio.wait_for(r.readline(), 3)).decode()
            assert line, "the engine closed first"
            if line.startswith("GET OPTION"):
                options += 1
                if options == 2:          # the cities menu is listening: the peer resets the connection
                    w.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                                          struct.pack("ii", 1, 0))
                    w.transport.abort()
                    break
                w.write(b"200 result=53 endpos=0\n")      # key 5: cities
            elif line.startswith("CHANNEL STATUS"):
                w.write(b"200 result=6\n")
            else:
                w.write(b"200 result=0\n" if line.startswith(("STREAM", "ANSWER")) else b"200 result=1\n")
        await _wait_for(lambda: server.stats["dropped"] == 1)
    (row,) = rows(recorder, tmp_path / "calls.sqlite3")
    assert (row["uniqueid"], row["action"], row["target"]) == ("rst.5", "queue", "general-12345")
    assert row["ivr_path"] == "main>5>cities" and row["outcome"] is None


async def test_asterisk_leaving_agi_mid_ivr_records_the_route_chosen_so_far(recorder, tmp_path):
    """AGIEXITONHANGUP (issue 9): the caller hangs up in the callback number prompt after choosing 6 —
    HANGUP, HANGUP, EOF. Recorded once, with callback / general-12345 / main>6, as an IVR hang-up."""
    async with running_engine(recorder=recorder) as (server, _):
        t = await call(server, "12345", ["6", "hangup"], at=WORKDAY_10H, uniqueid="exit.6", exit_on_hangup=True)
        await _wait_for(lambda: server.stats["served"] == 1)
    assert t.closed_by == "asterisk"
    (row,) = rows(recorder, tmp_path / "calls.sqlite3")
    assert (row["action"], row["target"], row["ivr_path"], row["outcome"]) == ("callback", "general-12345",
                                                                               "main>6", "ivr_hangup")


async def test_a_session_cut_by_the_shutdown_drain_keeps_its_route_and_path(recorder, tmp_path):
    """SIGTERM with a caller still in the cities menu past --drain-timeout: the session is cut, and the record
    still says queue general-12345 / main>5>cities."""
    limits = ServerLimits(env_timeout=2, reply_timeout=30, drain_timeout=0.3)
    async with running_engine(limits=limits, recorder=recorder) as (server, _):
        in_menu = asyncio.Event()

        def delay(line: str) -> float:
            if line.startswith("GET OPTION hotline/zh/cities-menu"):
                in_menu.set()
                return 5.0
            return 0
        caller = asyncio.create_task(call(server, "12345", ["5", "1"], at=WORKDAY_10H, uniqueid="drain.5",
                                          timeout=6, reply_delay=delay))
        await asyncio.wait_for(in_menu.wait(), 5)
        await server.shutdown(drain_timeout=0.3)
        caller.cancel()
        await asyncio.gather(caller, return_exceptions=True)
    (row,) = rows(recorder, tmp_path / "calls.sqlite3")
    assert (row["uniqueid"], row["action"], row["target"]) == ("drain.5", "queue", "general-12345")
    assert row["ivr_path"] == "main>5>cities" and row["outcome"] is None


# ------------------------------------------------------------------ `hotline serve` as deployed

def test_serve_takes_its_allow_list_from_hotline_agi_allow(tmp_path):
    """HOTLINE_AGI_ALLOW reaches the server: a peer outside it is closed unanswered (and logged by address); a
    malformed list stops serve before it takes calls, with the entry named."""
    import os
    import subprocess
    import sys

    from tests.test_engine_cli import free_port

    root = Path(__file__).resolve().parents[1]
    env = dict(os.environ, PYTHONPATH=str(root), HOTLINE_AGI_ALLOW="10.0.0.0/8")
    port, pid_file = free_port(), tmp_path / "hotline.pid"
    command = [sys.executable, "-m", "scripts.hotline", "--log-format", "json", "serve", "--port", str(port),
               "--no-records", "--no-web", "--no-ami", "--pid-file", str(pid_file), "--drain-timeout", "1"]
    proc = subprocess.Popen(command, cwd=root, env=env, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 20
        while not pid_file.exists():
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        with socket.create_connection(("127.0.0.1", port), timeout=3) as s:
            s.sendall(env_block(asterisk_env(dialed="12345")))
            try:
                assert s.recv(100) == b""                       # closed, not one command sent
            except ConnectionResetError:
                pass
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=15)
    assert '"reason":"address_not_allowed"' in err and '"peer":"127.0.0.1"' in err
    assert '"event":"fastagi.loopback_only"' not in err
    bad = subprocess.run(command, cwd=root, env=dict(env, HOTLINE_AGI_ALLOW="10.0.0.0/8,asterisk-1"),
                         capture_output=True, text=True, timeout=30)
    assert bad.returncode == 1 and "'asterisk-1' is not an address or network" in bad.stderr


async def test_not_a_call_lines_are_rate_limited_and_carry_the_count(events):
    """A flood is a few log lines with counts, not one per connection; what a window held is logged at its end."""
    from ivr import fastagi

    async with running_engine(limits=ServerLimits(env_timeout=2, reply_timeout=5, drain_timeout=1)) as (server, _):
        server._tally.every = 0.3
        for _ in range(25):
            r, w = await asyncio.open_connection("127.0.0.1", server.port)
            w.write(b"\n")
            await _read_until_closed(r, 2)
            w.close()
        await asyncio.sleep(0.4)
    lines = [e for e in events if e["event"] == "fastagi.not_a_call"]
    assert 2 <= len(lines) <= 4 and sum(e["count"] for e in lines) == 25 and lines[-1]["total"] == 25
    assert fastagi.TALLY_EVERY == 10.0
