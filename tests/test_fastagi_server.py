"""The FastAGI server under misbehaving peers, over-cap load, shutdown and reload; real TCP, bounded waits."""
from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess

import pytest

from ivr.emulator import asterisk_env, env_block
from ivr.engine import ConfigHolder
from ivr.fastagi import ServerLimits
from tests.test_fastagi_support import MENUS, TABLE, WORKDAY_10H, call, events, running_engine  # noqa: F401

FAST = ServerLimits(env_timeout=0.3, reply_timeout=0.3, drain_timeout=2, max_sessions=50)


async def _open(port):
    return await asyncio.open_connection("127.0.0.1", port)


async def _read_until_closed(reader, timeout=3.0) -> bytes:
    data = b""
    async with asyncio.timeout(timeout):
        while chunk := await reader.read(4096):
            data += chunk
    return data


async def test_backlog_must_be_at_least_128():
    with pytest.raises(ValueError):
        ServerLimits(backlog=64)


async def test_misbehaving_peers_cost_only_their_own_session(events):
    async with running_engine(limits=FAST) as (server, _):
        port = server.port
        # junk instead of an env block
        jr, jw = await _open(port)
        jw.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        # early close inside the env block
        er, ew = await _open(port)
        ew.write(b"agi_network: yes\nagi_network_script: route\n")
        ew.close()
        # env never finished: stalls
        sr, sw = await _open(port)
        sw.write(b"agi_network: yes\n")
        # env sent, then the peer never answers the first command
        mr, mw = await _open(port)
        mw.write(env_block(asterisk_env(dialed="12345", uniqueid="stall.1")))
        # meanwhile a real call is served correctly
        good = await call(server, "12320", ["1"], at=WORKDAY_10H)
        assert good.destination == "queue expert-12320" and not good.error
        for reader in (jr, sr, mr):
            await _read_until_closed(reader)          # each bad session is closed by the server, in bounds
        await asyncio.sleep(0.05)
        # the three that never sent a complete env block never were calls; the fourth was, and was dropped
        assert server.stats["dropped"] == 1 and server.stats["errors"] == 0 and server.stats["not_a_call"] == 3
        assert server.not_a_call == {"junk": 1, "closed_before_env": 1, "env_timeout": 1}
        after = await call(server, "12345", ["2"], at=WORKDAY_10H)
        assert after.destination == "queue general-12345"
        for w in (jw, sw, mw):
            w.close()
    reasons = sorted(e["reason"] for e in events if e["event"] == "fastagi.session_dropped")
    assert reasons == ["SessionStalled"]
    refused = sorted(e["reason"] for e in events if e["event"] == "fastagi.not_a_call")
    assert refused == ["closed_before_env", "env_timeout", "junk"]
    assert all(e["count"] == 1 and e["peer"] == "127.0.0.1" for e in events if e["event"] == "fastagi.not_a_call")
    stalled = [e for e in events if e["event"] == "fastagi.session_dropped" and e.get("uniqueid") == "stall.1"]
    assert stalled, "the drop of a session with an env block is logged with its uniqueid"


async def test_over_the_cap_answers_with_fail_open_variables(events):
    limits = ServerLimits(max_sessions=1, env_timeout=2, reply_timeout=5, drain_timeout=2)
    async with running_engine(limits=limits) as (server, _):
        holding = asyncio.create_task(call(server, "12345", ["2"], at=WORKDAY_10H,
                                           reply_delay=lambda line: 0.5 if line.startswith("GET OPTION") else 0))
        for _ in range(100):
            if server.active == 1:
                break
            await asyncio.sleep(0.01)
        assert server.active == 1
        over = await call(server, "12320", ["1"], at=WORKDAY_10H)
        emergency = await call(server, "110", at=WORKDAY_10H)
        held = await asyncio.wait_for(holding, 5)
    assert over.closed_by == "server"
    # an emergency line over the cap goes to its trunk, never to the general queue
    assert emergency.destination == "dial trunk emergency-110" and emergency.variables["HOTLINE_LINE"] == "110"
    assert over.variables["HOTLINE_ACTION"] == "queue" and over.variables["HOTLINE_TARGET"] == "general-12345"
    assert over.variables["HOTLINE_LINE"] == "12320"
    assert held.destination == "queue general-12345" and "complaint" in held.variables["HOTLINE_TAGS"]
    cap = [e for e in events if e["event"] == "fastagi.over_capacity"]
    assert len(cap) == 2 and cap[0]["max_sessions"] == 1 and cap[0]["level"] == "warning"
    assert server.stats["refused"] == 2


async def test_shutdown_drains_sessions_in_flight_and_stops_accepting():
    async with running_engine(limits=ServerLimits(drain_timeout=3, reply_timeout=5)) as (server, _):
        slow = asyncio.create_task(call(server, "12345", ["2"], at=WORKDAY_10H,
                                        reply_delay=lambda line: 0.3 if line.startswith("GET OPTION") else 0))
        while server.active == 0:
            await asyncio.sleep(0.01)
        await server.shutdown(drain_timeout=3)
        t = await asyncio.wait_for(slow, 5)
        assert t.destination == "queue general-12345"          # finished normally during the drain
        with pytest.raises(OSError):
            await asyncio.wait_for(_open(server.port), 2)


async def test_shutdown_cuts_what_does_not_finish_within_the_drain_bound():
    async with running_engine(limits=ServerLimits(drain_timeout=0.2, reply_timeout=30)) as (server, _):
        r, w = await _open(server.port)
        w.write(env_block(asterisk_env(dialed="12345")))
        assert (await asyncio.wait_for(r.readline(), 2)).startswith(b"GET VARIABLE HOTLINE_AT")
        await server.shutdown()
        assert server.active == 0
        await _read_until_closed(r)
        w.close()


async def test_sigterm_drains_and_sighup_reloads(tmp_path, events):
    table, menus = tmp_path / "routing.yaml", tmp_path / "ivr.yaml"
    shutil.copy(TABLE, table)
    shutil.copy(MENUS, menus)
    holder = ConfigHolder.from_files(table, menus)
    async with running_engine(holder=holder) as (server, _):
        serving = asyncio.create_task(server.serve_until_signalled(on_reload=holder.reload))
        await asyncio.sleep(0.05)
        first = holder.current
        table.write_text(table.read_text(encoding="utf-8") + "\n# touched\n", encoding="utf-8")
        os.kill(os.getpid(), signal.SIGHUP)
        for _ in range(200):
            if holder.current is not first:
                break
            await asyncio.sleep(0.01)
        assert holder.current is not first and holder.current.table.version != first.table.version
        t = await call(server, "12345", ["2"], at=WORKDAY_10H)
        assert t.variables["HOTLINE_TABLE"] == holder.current.table.version
        os.kill(os.getpid(), signal.SIGTERM)
        await asyncio.wait_for(serving, 5)
    assert any(e["event"] == "config.reloaded" for e in events)


async def test_reload_with_a_broken_file_keeps_the_running_table(tmp_path, events):
    table, menus = tmp_path / "routing.yaml", tmp_path / "ivr.yaml"
    shutil.copy(TABLE, table)
    shutil.copy(MENUS, menus)
    holder = ConfigHolder.from_files(table, menus)
    running = holder.current
    async with running_engine(holder=holder) as (server, _):
        text = table.read_text(encoding="utf-8")
        table.write_text(text.replace("general_queue: general-12345", "general_queue: no-such-queue"),
                         encoding="utf-8")
        assert holder.reload() is False
        assert holder.current is running
        t = await call(server, "12320", ["1"], at=WORKDAY_10H)
        assert t.destination == "queue expert-12320"
        assert t.variables["HOTLINE_TABLE"] == running.table.version
        menus.write_text(menus.read_text(encoding="utf-8").replace("menu: cities", "menu: nowhere"),
                         encoding="utf-8")
        table.write_text(text, encoding="utf-8")
        assert holder.reload() is False                      # a broken menu file is refused as well
        assert holder.current is running
    problems = [e["problem"] for e in events if e["event"] == "config.problem"]
    assert any("routing.yaml:" in p and "no-such-queue" in p for p in problems)
    assert any("ivr.yaml:" in p and "nowhere" in p for p in problems)
    assert all(p.split(":")[1].isdigit() for p in problems)  # file:line:column: message


async def test_a_call_in_flight_finishes_on_the_table_it_started_with(tmp_path):
    table, menus = tmp_path / "routing.yaml", tmp_path / "ivr.yaml"
    shutil.copy(TABLE, table)
    shutil.copy(MENUS, menus)
    holder = ConfigHolder.from_files(table, menus)
    old_version = holder.current.table.version
    async with running_engine(holder=holder) as (server, _):
        started = asyncio.Event()

        def delay(line):
            if line.startswith("GET OPTION"):
                started.set()
                return 0.3
            return 0
        in_flight = asyncio.create_task(call(server, "12345", ["2"], at=WORKDAY_10H, reply_delay=delay))
        await asyncio.wait_for(started.wait(), 5)
        table.write_text(table.read_text(encoding="utf-8") + "\n# new version\n", encoding="utf-8")
        assert holder.reload() is True
        t = await asyncio.wait_for(in_flight, 5)
        new = await call(server, "12345", ["2"], at=WORKDAY_10H)
    assert t.variables["HOTLINE_TABLE"] == old_version
    assert new.variables["HOTLINE_TABLE"] == holder.current.table.version != old_version


async def test_logs_carry_the_uniqueid_and_mask_the_caller(events):
    async with running_engine() as (server, _):
        await call(server, "12345", ["2"], at=WORKDAY_10H, uniqueid="1795698999.42", caller="13812345678")
    mine = [e for e in events if e.get("uniqueid") == "1795698999.42"]
    names = {e["event"] for e in mine}
    assert {"engine.route", "engine.call_end"} <= names
    assert all(e.get("caller") in (None, "138****5678") for e in mine)
    assert not any("13812345678" in repr(e) for e in events)


async def test_the_test_clock_is_ignored_unless_allowed():
    async with running_engine(allow_test_clock=False) as (server, _):
        t = await call(server, "12396", at="2021-09-10T10:00:00+08:00")
    assert not any(cmd.startswith("GET VARIABLE HOTLINE_AT") for cmd, _ in t.exchanges)
    assert "hotline/number-cancelled-dial-12345" in t.heard          # today, not the transition window


async def test_listen_backlog_and_a_burst_of_calls():
    """The kernel holds our backlog (capped by net.core.somaxconn), and a burst of 300 connections opened at
    once is accepted and served, every call correctly."""
    async with running_engine(limits=ServerLimits(backlog=1024, max_sessions=500, env_timeout=5,
                                                  reply_timeout=5)) as (server, _):
        listing = subprocess.run(["ss", "-ltnH", f"sport = :{server.port}"], capture_output=True, text=True)
        if listing.returncode == 0 and listing.stdout.strip():
            backlog = int(listing.stdout.split()[2])                 # Send-Q of a listening socket
            somaxconn = int(open("/proc/sys/net/core/somaxconn").read())
            assert backlog == min(1024, somaxconn) and backlog >= 128
        numbers = ["12345", "110", "12320", "12349", "12366"] * 60
        results = await asyncio.gather(*(call(server, n, ["1"], at=WORKDAY_10H, timeout=20) for n in numbers))
    assert all(not t.error and t.closed_by == "server" for t in results)
    assert [t.variables["HOTLINE_ACTION"] for t in results[:5]] == ["queue", "dial", "queue", "queue", "queue"]
    assert server.stats["served"] == 300 and server.stats["refused"] == 0


async def test_the_flow_driver_gets_what_came_with_the_env_block_and_one_reply_per_command():
    """AgiRequest.drive takes the transport over after the env block: bytes that arrived with the block (here
    Asterisk's HANGUP line) are not lost, a reply split over several writes is one reply, and every command
    gets exactly its own reply."""
    from ivr.agi.commands import Answer, GetVariable, SetVariable
    seen: dict = {}

    def flow():
        seen["answer"] = (yield Answer()).result
        seen["variable"] = (yield GetVariable("X")).data
        seen["set"] = (yield SetVariable("Y", "1")).result

    async def probe(request):
        gen = flow()
        seen["pending"] = await request.drive(gen, next(gen))
        seen["hangup_seen"], seen["commands"] = request.hangup_seen, request.commands

    async with running_engine() as (server, _):
        server.app.add_route("probe", probe)
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(env_block(asterisk_env(dialed="12345", script="probe")) + b"HANGUP\n")
        assert await reader.readline() == b"ANSWER\n"
        writer.write(b"200 res")
        await asyncio.sleep(0.05)
        writer.write(b"ult=0\n")
        assert await reader.readline() == b"GET VARIABLE X\n"
        writer.write(b"200 result=1 (abc)\n")
        assert await reader.readline() == b"SET VARIABLE Y 1\n"
        writer.write(b"200 result=1\n")
        assert await asyncio.wait_for(reader.read(), 5) == b""          # the flow ended: the session closes
        writer.close()
    assert seen == {"answer": 0, "variable": "abc", "set": 1, "pending": None, "hangup_seen": True, "commands": 3}


async def test_the_flow_driver_reports_the_pending_command_when_asterisk_closes():
    from ivr.agi.commands import Answer, StreamFile
    seen: dict = {}

    def flow():
        yield Answer()
        yield StreamFile("hotline/zh/main-menu", "")
        seen["after_close"] = True                      # never reached: nothing answers any more

    async def probe(request):
        gen = flow()
        pending = await request.drive(gen, next(gen))
        seen["pending"] = type(pending).__name__

    async with running_engine() as (server, _):
        server.app.add_route("probe", probe)
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(env_block(asterisk_env(dialed="12345", script="probe")))
        assert await reader.readline() == b"ANSWER\n"
        writer.write(b"200 result=0\n")
        assert (await reader.readline()).startswith(b"STREAM FILE")
        writer.write(b"HANGUP\n")
        writer.close()                                   # AGIEXITONHANGUP: Asterisk leaves AGI
        for _ in range(100):
            if "pending" in seen:
                break
            await asyncio.sleep(0.02)
    assert seen == {"pending": "StreamFile"}
