"""The generated AMI user (manager_hotline.conf) on the real Asterisk, and the supervisors' live view fed by it.

The user `hotline` logs in with the rendered secret and holds exactly what dialplan/manager.py grants:
Ping and QueueStatus answer; Originate of a plain application works (write=originate) but not of one that
reaches a shell (System needs the `system` class), nor the CLI (`command`) or the config files (`config`);
it receives queue and channel events, never the dialplan's (VarSet, Newexten) or AGI's. `hotline queues watch
--once`, logged in as that user, shows what Asterisk's own `queue show` says.
"""
from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys

import pytest

from tests.asterisk import harness
from tests.asterisk.harness import Ami, place_call

NOW = "2026-12-02T10:00"
PAUSED, INVALID = "Local/ag7@test-agent/n", "Local/nobody@no-such-context/n"


@pytest.fixture(scope="module")
def rig(make_rig):
    return make_rig("cov-ami")


def hotline_user(rig) -> Ami:
    return rig.ami("hotline", harness.AMI_SECRET)


async def test_login_with_the_generated_user_and_a_wrong_secret(rig):
    async with hotline_user(rig) as ami:
        assert (await ami.action("Ping")).get("Ping") == "Pong"
    with pytest.raises(RuntimeError, match="refused"):
        await rig.ami("hotline", harness.AMI_SECRET + "x").connect()


async def test_the_user_holds_the_classes_the_engine_needs_and_no_more(rig):
    async with hotline_user(rig) as ami:
        reply = await ami.action("QueueStatus", Queue="general-12345")
        assert reply["Response"] == "Success"
        await ami.wait("QueueParams", Queue="general-12345")
        await ami.wait("QueueStatusComplete")
        # write=originate: the three-way leg and the listen-in are Originates of Local channels
        reply = await ami.action("Originate", Channel="Local/ag8@test-agent/n", Application="Wait", Data="1",
                                 Async="true")
        assert reply["Response"] == "Success", reply
        await ami.wait("OriginateResponse", Response="Success", Channel="Local/ag8@test-agent.*")
        # no system class: nothing that reaches a shell, no CLI, no config files
        reply = await ami.action("Originate", Channel="Local/ag8@test-agent/n", Application="System",
                                 Data="true", Async="true")
        assert reply["Response"] == "Error" and "Forbidden" in reply.get("Message", ""), reply
        for action, fields in (("Command", {"Command": "core show version"}), ("GetConfig", {"Filename":
                                                                                              "manager.conf"})):
            reply = await ami.action(action, **fields)
            assert reply["Response"] == "Error" and "Permission denied" in reply.get("Message", ""), (action, reply)
    async with rig.ami() as tester:   # the same Originate is Asterisk's to allow with the system class (tester)
        reply = await tester.action("Originate", Channel="Local/ag8@test-agent/n", Application="System",
                                    Data="true", Async="true")
        assert reply["Response"] == "Success", reply


async def test_the_user_gets_queue_and_channel_events_but_not_the_dialplans(rig):
    async with hotline_user(rig) as watcher, rig.ami() as tester:
        tag = await place_call(tester, "12396", caller="13300000001", variables={"HOTLINE_AT": NOW})
        try:
            await watcher.wait("QueueCallerJoin", Uniqueid=re.escape(tag), Queue="general-12345")
            await tester.wait("QueueCallerJoin", Uniqueid=re.escape(tag))
            assert watcher.find("Newchannel", Uniqueid=re.escape(tag))
            assert tester.find("VarSet", Uniqueid=re.escape(tag)) and tester.find("AGIExecStart",
                                                                                Uniqueid=re.escape(tag))
            seen = {e["Event"] for e in watcher.events if e.get("Uniqueid") == tag}
            assert seen & {"VarSet", "Newexten", "AGIExecStart", "AGIExecEnd", "DTMFBegin", "DTMFEnd"} == set()
        finally:
            await tester.action("Hangup", Channel=f"ph{tag}")


def queue_show(rig) -> dict[str, dict]:
    """`queue show` parsed: per queue the number of callers and each member's state words."""
    queues: dict[str, dict] = {}
    current = None
    section = None
    for line in rig.pbx.cli("queue show").splitlines():
        m = re.match(r"^(\S+) has (\d+) calls", line)
        if m:
            current = queues.setdefault(m.group(1), {"calls": int(m.group(2)), "members": [], "callers": []})
            continue
        if current is None:
            continue
        stripped = line.strip()
        if stripped.startswith(("Members:", "No Members")):
            section = "members"
        elif stripped.startswith(("Callers:", "No Callers")):
            section = "callers"
        elif stripped and section == "members":
            current["members"].append(stripped)
        elif stripped and section == "callers":
            current["callers"].append(stripped)
    return queues


def member_state(line: str) -> str:
    """The view's four states, as app_queue's words say them."""
    if "(paused" in line:
        return "paused"
    if re.search(r"\((Invalid|Unavailable)\)", line):
        return "unavailable"
    if re.search(r"\((In use|Busy|Ringing|Ring\+Inuse|On Hold)\)", line):
        return "busy"
    return "free"


def watch_once(rig) -> str:
    env = dict(os.environ, PYTHONPATH=str(harness.ROOT), HOTLINE_AMI_HOST="127.0.0.1",
               HOTLINE_AMI_PORT=str(rig.pbx.ami_port), HOTLINE_AMI_USER="hotline",
               HOTLINE_AMI_SECRET=harness.AMI_SECRET)
    env.pop("HOTLINE_AMI_SERVERS", None)
    res = subprocess.run([sys.executable, "-m", "scripts.hotline", "queues", "watch", "--once", "--full-numbers",
                          "--timeout", "10", "--lang", "en"], cwd=harness.ROOT, env=env, capture_output=True,
                         text=True, timeout=30)
    assert res.returncode == 0, res.stdout + res.stderr
    return res.stdout


def parse_watch(text: str) -> dict[str, dict]:
    """The queue rows of the frame, by the header's column names; caller lines under their queue."""
    header, rows, current = None, {}, None
    for line in text.splitlines():
        tokens = line.split()
        if tokens[:2] == ["queue", "wait"]:
            header = tokens
        elif header and line.startswith("  ") and not line.startswith("   "):
            # "  <the table's name> [<id>]  1  0:05 ..." (or the bare id when the table does not name it)
            m = re.match(r"^  (?:.*\[(?P<id>[^\]]+)\]|(?P<plain>\S+))\s+(?P<rest>\d.*)$", line)
            if m and len(m["rest"].split()) == len(header) - 1:
                current = rows[m["id"] or m["plain"]] = dict(zip(header, [m["id"] or m["plain"]] + m["rest"].split()))
                current["callers"] = []
        elif current is not None and "waiting" in tokens and "line" in tokens:
            current["callers"].append(line)
    return rows


async def test_live_view_agrees_with_queue_show(rig):
    async with rig.ami() as ami:
        await ami.action("QueueAdd", Queue="general-12345", Interface=PAUSED, MemberName="ag7", Paused="true")
        await ami.action("QueueAdd", Queue="general-12345", Interface=INVALID, MemberName="nobody")
        tag = await place_call(ami, "12345", caller="13300000002", name="Li", variables={"HOTLINE_AT": NOW},
                               stay=60)
        try:
            await ami.wait("AGIExecStart", Uniqueid=re.escape(tag), Command="GET OPTION.*", timeout=15)
            in_menu = await asyncio.to_thread(watch_once, rig)  # the caller is in the engine's menu now
            await ami.action("PlayDTMF", Channel=f"ph{tag}", Digit="1", Duration="100")
            await ami.wait("QueueCallerJoin", Uniqueid=re.escape(tag), Queue="general-12345", timeout=15)
            frame = await asyncio.to_thread(watch_once, rig)
            shown = await asyncio.to_thread(queue_show, rig)
        finally:
            await ami.action("Hangup", Channel=f"ph{tag}")
            for interface in (PAUSED, INVALID):
                await ami.action("QueueRemove", Queue="general-12345", Interface=interface)
    # callers in the IVR, from the events the generated user gets (Newchannel in hotline-from-carrier, the join)
    assert "in the IVR 1 " in in_menu, in_menu
    assert "in the IVR 0 " in frame, frame
    view = parse_watch(frame)
    assert set(view) == set(shown), frame
    for name, q in shown.items():
        states = [member_state(m) for m in q["members"]]
        row = view[name]
        got = (int(row["wait"]), int(row["free"]), int(row["busy"]), int(row["paused"]), int(row["unav"]))
        want = (q["calls"], states.count("free"), states.count("busy"), states.count("paused"),
                states.count("unavailable"))
        assert got == want, (name, row, q)
    general = view["general-12345"]
    assert (general["wait"], general["paused"], general["unav"]) == ("1", "1", "1")
    assert len(general["callers"]) == 1
    caller = general["callers"][0].split()
    assert caller[caller.index("line") + 1] == "12345" and "13300000002" in caller and "Li" in caller
