"""AmiClient against the emulator over real TCP: login, actions, events, reconnects, timeouts, secrets."""
from __future__ import annotations

import asyncio

import pytest
from pydantic import SecretStr
from structlog.testing import capture_logs

from ivr.ami.client import (AmiClient, AmiError, AmiNotConnected, AmiTimeout, backoff_delay)
from ivr.ami.emulator import AmiEmulator

SECRET = "s3cret-Value"


@pytest.fixture
async def emulator():
    emu = AmiEmulator(secret=SECRET, bad_login_delay=0.01)
    emu.add_queue("expert-12320")
    emu.add_member("expert-12320", "Local/agent1@queue-agents/n", "Agent One")
    await emu.start()
    yield emu
    await emu.stop()


@pytest.fixture
async def client(emulator):
    c = AmiClient("127.0.0.1", emulator.port, "hotline", SECRET, reconnect_first_delay=0.01,
                  reconnect_max_delay=0.05, action_timeout=2)
    await c.start()
    yield c
    await c.close()


async def eventually(predicate, timeout: float = 3.0) -> None:
    async def poll():
        while not predicate():
            await asyncio.sleep(0.01)
    await asyncio.wait_for(poll(), timeout)


async def test_login_and_simple_action(client):
    assert client.connected and client.logins == 1
    reply = await client.action({"Action": "Ping"})
    assert len(reply) == 1 and reply[0]["Ping"] == "Pong"


async def test_list_action_returns_response_items_and_complete(client):
    reply = await client.action({"Action": "QueueStatus", "Queue": "expert-12320"})
    assert [m.get("Event", m.get("Response")) for m in reply] == [
        "Success", "QueueParams", "QueueMember", "QueueStatusComplete"]
    missing = await client.action({"Action": "QueueStatus", "Queue": "no-such-queue"})
    assert missing[-1]["ListItems"] == "0"


async def test_error_response_raises_with_the_reply(client):
    with pytest.raises(AmiError, match="Channel does not exist: Local/none") as info:
        await client.action({"Action": "Redirect", "Channel": "Local/none", "Context": "x", "Exten": "s",
                             "Priority": "1"})
    assert info.value.response["Response"] == "Error"


async def test_command_output_lines(client):
    reply = await client.action({"Action": "Command", "Command": "queue show expert-12320"})
    assert reply[0]["Output"].split("\n")[0].startswith("expert-12320 has 0 calls")


async def test_events_reach_subscribers_by_name_and_unsubscribe_works(client, emulator):
    joins, everything = [], []
    stop = client.on_event(joins.append, {"QueueCallerJoin"})
    client.on_event(everything.append)
    caller = emulator.new_call("4951234567", "12320")
    emulator.caller_joins_queue(caller.name, "expert-12320")
    await eventually(lambda: joins)
    assert joins[0]["Queue"] == "expert-12320"
    assert {"Newchannel", "QueueCallerJoin"} <= {e["Event"] for e in everything}
    stop()
    emulator.hangup(caller.name)
    await eventually(lambda: any(e["Event"] == "Hangup" for e in everything))
    assert len(joins) == 1


async def test_event_stream(client, emulator):
    async with client.events({"Hangup"}) as stream:
        caller = emulator.new_call("4951234567", "12320")
        emulator.hangup(caller.name)
        event = await stream.get(timeout=2)
    assert event["Channel"] == caller.name and event["Cause"] == "16"


async def test_async_callbacks_run_in_order(client, emulator):
    seen = []

    async def slow(event):
        await asyncio.sleep(0.001)
        seen.append(event["Channel"])
    client.on_event(slow, {"Newchannel"})
    names = [emulator.new_call("1", "12345").name for _ in range(5)]
    await eventually(lambda: len(seen) == 5)
    assert seen == names


async def test_action_timeout(client, emulator):
    emulator.freeze_connections()
    with pytest.raises(AmiTimeout, match="no reply to QueueSummary"):
        await client.action({"Action": "QueueSummary"}, timeout=0.1)


async def test_action_while_down_fails_at_once(emulator):
    c = AmiClient("127.0.0.1", emulator.port, "hotline", SECRET)
    with pytest.raises(AmiNotConnected):
        await c.action({"Action": "Ping"})


async def test_reconnect_after_drop_and_on_connected_every_login(client, emulator):
    resyncs = []

    async def resync():
        resyncs.append((await client.action({"Action": "QueueSummary"}))[-1]["ListItems"])
    client.on_connected(resync)
    emulator.drop_connections()
    await eventually(lambda: client.logins == 2 and resyncs)
    emulator.drop_connections()
    await eventually(lambda: client.logins == 3 and len(resyncs) == 2)
    assert resyncs == ["1", "1"]


async def test_wrong_secret_is_refused_retried_with_backoff_and_never_logged(emulator):
    emulator.secret = "the-real-one"
    c = AmiClient("127.0.0.1", emulator.port, "hotline", SECRET, reconnect_first_delay=0.01,
                  reconnect_max_delay=0.02)
    with capture_logs() as logs:
        await c.start()
        assert not c.connected
        await eventually(lambda: emulator.count("Login") >= 3)
        emulator.secret = SECRET
        await c.wait_connected(timeout=3)
        await c.close()
    assert any(e["event"] == "ami.login_refused" for e in logs)
    assert SECRET not in repr(logs) and SECRET not in repr(c)


async def test_server_down_at_start_then_up(emulator):
    port = emulator.port
    await emulator.stop()
    c = AmiClient("127.0.0.1", port, "hotline", SECRET, reconnect_first_delay=0.01, reconnect_max_delay=0.05)
    await c.start()
    assert not c.connected
    later = AmiEmulator(secret=SECRET)
    later._server = await asyncio.start_server(later._serve, "127.0.0.1", port)   # same port, as a restart
    try:
        await c.wait_connected(timeout=3)
    finally:
        await c.close()
        await later.stop()


def test_backoff_doubles_and_is_capped():
    assert [backoff_delay(n, 0.5, 30) for n in range(1, 9)] == [0.5, 1, 2, 4, 8, 16, 30, 30]


def test_from_settings_reads_the_secret_and_refuses_none():
    class FakeSettings:       # only the attributes the client reads; real Settings is pydantic (SecretStr)
        ami_host, ami_port, ami_user, ami_secret = "127.0.0.1", 5038, "hotline", SecretStr("x")
    c = AmiClient.from_settings(FakeSettings())
    assert "x" not in repr(c)
    FakeSettings.ami_secret = None
    with pytest.raises(AmiError, match="HOTLINE_AMI_SECRET"):
        AmiClient.from_settings(FakeSettings())


async def test_refuses_header_injection(client):
    with pytest.raises(ValueError):
        await client.action({"Action": "Setvar", "Variable": "X", "Value": "1\r\n\r\nAction: Hangup"})


async def test_close_then_start_again_keeps_subscribers(emulator):
    c = AmiClient("127.0.0.1", emulator.port, "hotline", SECRET)
    seen = []

    async def on_new(event):
        seen.append(event["Channel"])
    c.on_event(on_new, {"Newchannel"})
    await c.start()
    first = emulator.new_call("1", "12345").name
    await eventually(lambda: seen == [first])
    await c.close()
    await c.start()
    second = emulator.new_call("2", "12345").name
    await eventually(lambda: seen == [first, second])
    await c.close()
