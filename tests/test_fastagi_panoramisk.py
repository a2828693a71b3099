"""panoramisk 1.4's rough edges on Python 3.11, each shown raw (bounded) and then fixed by ivr.fastagi_compat."""
from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import textwrap
import time

import pytest
from panoramisk.fast_agi import Application

from ivr.agi.commands import GetData, GetVariable, SetVariable
from ivr.emulator import asterisk_env, env_block, place_call
from ivr.fastagi_compat import AgiApplication, SessionClosed


# ------------------------------------------------------------------ 1. asyncio.coroutine is gone

async def test_raw_add_route_with_a_plain_function_fails_on_311():
    with pytest.raises(AttributeError, match="coroutine"):
        Application(loop=asyncio.get_running_loop()).add_route("route", lambda request: None)


async def test_compat_add_route_accepts_a_plain_function():
    seen = []
    app = AgiApplication(env_timeout=2, reply_timeout=2)
    app.add_route("route", lambda request: seen.append(request.env["extension"]))
    srv = await asyncio.start_server(app.handler, "127.0.0.1", 0)
    async with srv:
        t = await place_call("127.0.0.1", srv.sockets[0].getsockname()[1], dialed="12345", timeout=5)
    assert seen == ["12345"] and t.closed_by == "server"


# ------------------------------------------------------------------ 2. EOF inside the env block

RAW_SERVER = textwrap.dedent("""
    import asyncio, sys
    from panoramisk.fast_agi import Application
    async def main():
        app = Application(loop=asyncio.get_running_loop())
        async def route(request):
            await request.send_command('SET VARIABLE SERVED yes')
        app.add_route('route', route)
        srv = await asyncio.start_server(app.handler, '127.0.0.1', 0)
        print(srv.sockets[0].getsockname()[1], flush=True)
        await asyncio.sleep(30)
    asyncio.run(main())
""")


def _full_call_answered(port: int, timeout: float) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(env_block(asterisk_env(dialed="12345")))
        try:
            return s.recv(100).startswith(b"SET VARIABLE")
        except socket.timeout:
            return False


def test_raw_panoramisk_freezes_every_call_after_an_early_eof():
    """A peer closing mid-env makes panoramisk spin on read() == b'': the loop never runs again."""
    proc = subprocess.Popen([sys.executable, "-c", RAW_SERVER], stdout=subprocess.PIPE, text=True)
    try:
        port = int(proc.stdout.readline())
        assert _full_call_answered(port, 2.0)                 # healthy before
        with socket.create_connection(("127.0.0.1", port)) as s:
            s.sendall(b"agi_network: yes\nagi_network_script: route\n")   # no blank line, then EOF
        time.sleep(0.1)
        assert not _full_call_answered(port, 1.0)             # every later call: silence
    finally:
        proc.kill()
        proc.wait(timeout=5)


async def test_compat_survives_an_early_eof_and_serves_the_next_call():
    app = AgiApplication(env_timeout=2, reply_timeout=2)

    async def route(request):
        await request.send(SetVariable("SERVED", "yes"))
    app.add_route("route", route)
    errors = []

    async def handler(reader, writer):
        try:
            await app.handler(reader, writer)
        except SessionClosed as exc:
            errors.append(exc)
    srv = await asyncio.start_server(handler, "127.0.0.1", 0)
    port = srv.sockets[0].getsockname()[1]
    async with srv:
        _, w = await asyncio.open_connection("127.0.0.1", port)
        w.write(b"agi_network: yes\nagi_network_script: route\n")
        w.close()
        t = await place_call("127.0.0.1", port, dialed="12345", timeout=5)
    assert t.variables["SERVED"] == "yes"
    assert len(errors) == 1 and "EOF before the end" in str(errors[0])


async def test_compat_routes_on_the_script_name_without_its_query_string():
    raw = Application(loop=asyncio.get_running_loop())
    compat = AgiApplication()

    async def route(request):
        pass
    raw.add_route("route", route)
    compat.add_route("route", route)
    env = {"network_script": "route?line=12320"}
    assert raw._route.get(env["network_script"]) is None      # what panoramisk's handler looks up
    assert compat.endpoint_for(env) is route


# ------------------------------------------------------------------ 3. replies shift after HANGUP / 520

async def _run_against_emulator(app_handler, **call_kw):
    srv = await asyncio.start_server(app_handler, "127.0.0.1", 0)
    async with srv:
        return await place_call("127.0.0.1", srv.sockets[0].getsockname()[1], dialed="12345", timeout=5,
                                **call_kw)


async def test_raw_panoramisk_replies_shift_by_one_after_the_hangup_line():
    got = {}
    app = Application(loop=asyncio.get_running_loop())

    async def route(request):
        got["get_data"] = await request.send_command("GET DATA beep 20000 4")
        await asyncio.sleep(0.1)                          # the lone HANGUP arrives meanwhile
        got["set"] = await request.send_command("SET VARIABLE AFTER_HANGUP yes")
        got["get"] = await request.send_command("GET VARIABLE AFTER_HANGUP")
    app.add_route("route", route)
    await asyncio.wait_for(_run_against_emulator(app.handler, dtmf=["hangup"]), 5)
    assert got["get_data"]["error"] == "AGIAppError"
    assert got["set"]["error"] == "AGIResultHangup"       # the HANGUP line taken as SET's reply
    assert got["get"]["result"] == ("1", "")              # SET's reply taken as GET's: the value is lost


async def test_compat_replies_stay_in_step_after_the_hangup_line():
    got = {}
    app = AgiApplication(env_timeout=2, reply_timeout=2)

    async def route(request):
        got["get_data"] = await request.send(GetData("beep", 20000, 4))
        await asyncio.sleep(0.1)
        got["set"] = await request.send(SetVariable("AFTER_HANGUP", "yes"))
        got["get"] = await request.send(GetVariable("AFTER_HANGUP"))
        got["hangup_seen"] = request.hangup_seen
    app.add_route("route", route)
    await asyncio.wait_for(_run_against_emulator(app.handler, dtmf=["hangup"]), 5)
    assert got["get_data"].hungup and got["get_data"].result == -1
    assert got["set"].code == 200 and got["set"].result == 1
    assert got["get"].data == "yes" and got["hangup_seen"]


async def test_raw_panoramisk_misreads_the_usage_block_then_compat_does_not():
    raw_got, ours_got = {}, {}
    raw = Application(loop=asyncio.get_running_loop())

    async def raw_route(request):
        raw_got["usage"] = await request.send_command("GET DATA")
        try:
            raw_got["next"] = await request.send_command("GET VARIABLE CALLERID(num)")
        except ValueError as exc:              # the usage block's 3rd line read as the next reply
            raw_got["next"] = exc
    raw.add_route("route", raw_route)
    await asyncio.wait_for(_run_against_emulator(raw.handler), 5)
    assert isinstance(raw_got["next"], ValueError)

    ours = AgiApplication(env_timeout=2, reply_timeout=2)

    async def our_route(request):
        ours_got["usage"] = await request.send("GET DATA")
        ours_got["next"] = await request.send(GetVariable("CALLERID(num)"))
    ours.add_route("route", our_route)
    await asyncio.wait_for(_run_against_emulator(ours.handler), 5)
    assert ours_got["usage"].code == 520 and "DTMF" in ours_got["usage"].usage
    assert ours_got["next"].data == "4951234567"


async def test_compat_refuses_a_raw_command_with_a_newline():
    app = AgiApplication()
    from ivr.fastagi_compat import AgiRequest
    r = AgiRequest(app, {}, asyncio.StreamReader(), None, reply_timeout=1)     # type: ignore[arg-type]
    with pytest.raises(ValueError):
        await r.send("SET VARIABLE X 1\nHANGUP")
