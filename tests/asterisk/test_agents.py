"""Agents log in and out from their phone (*91<agent> / *92<agent> + PIN) on the real Asterisk 22.

The rendered extensions_hotline_agents.conf is used as generated; the agent's phone is an Originate of
Local/*91<agent>@hotline-agents whose other half (the phone) sends the PIN as DTMF. Asterisk decides the
membership: QueueMemberAdded/Removed events, `queue show`, and after a restart of the same config dir what
app_queue put back from the astdb (queues.conf persistentmembers=yes, as conf/asterisk/queues.conf ships).
"""
from __future__ import annotations

import re
import time

import pytest

from tests.asterisk.harness import Ami

PINS = {"7001": "2468", "7002": "1357"}
DESK1 = "Local/ag7001@test-agent/n"
DESK2 = "Local/ag7002@test-agent/n"
AGENTS_YAML = f"""version: 1
agents:
  "7001":
    name: test desk 1
    interface: {DESK1}
    pin_env: HOTLINE_AGENT_7001_PIN
    queues: {{general-12345: 0, expert-12320: 3}}
  "7002":
    name: test desk 2
    interface: {DESK2}
    pin_env: HOTLINE_AGENT_7002_PIN
    queues: {{minors-protection: 1}}
"""


@pytest.fixture(scope="module")
def rig(make_rig, workdir):
    conf = workdir / "agents-conf"
    conf.mkdir(exist_ok=True)
    (conf / "agents.yaml").write_text(AGENTS_YAML)
    secrets = conf / "secrets.env"
    secrets.write_text("".join(f"HOTLINE_AGENT_{n}_PIN={pin}\n" for n, pin in PINS.items()))
    secrets.chmod(0o600)
    rig = make_rig("agents-rig", render_args=["--agents", str(conf / "agents.yaml"), "--secrets", str(secrets)])
    # the admin's queues.conf as conf/asterisk/queues.conf ships it (the harness default keeps members off)
    rig.pbx.write("queues.conf", "[general]\npersistentmembers=yes\nautofill=yes\n#include queues_hotline.conf\n")
    restart(rig)
    return rig


def restart(rig) -> None:
    """Stop the PBX and start it again on the same config dir (and so the same astdb)."""
    rig.pbx.stop()
    rig.pbx.start()


async def dial_code(ami: Ami, code: str, dtmf: str) -> str:
    """The agent's phone dials `code` and keys `dtmf`; returns the tag (Uniqueid) of the hotline-agents half."""
    tag = f"a{time.monotonic_ns() % 10**12}"
    reply = await ami.action("Originate", Channel=f"Local/{code}@hotline-agents/n", Context="test-caller",
                             Exten="s", Priority="1", Async="true", ChannelId=f"ph{tag}", OtherChannelId=tag,
                             Variable=[f"DTMF={dtmf}", "STAY=15"])
    assert reply.get("Response") == "Success", reply
    return tag


def members(rig, queue: str) -> str:
    return rig.pbx.cli(f"queue show {queue}")


async def test_a_wrong_pin_logs_nobody_in(rig):
    async with rig.ami() as ami:
        tag = await dial_code(ami, "*917002", "9999#")
        await ami.wait("Newexten", timeout=20, Uniqueid=tag, Application="Playback", AppData="hotline/agent-refused")
        assert not ami.find("QueueMemberAdded")
    assert DESK2 not in members(rig, "minors-protection")
    assert "7002" not in rig.pbx.cli("database show Queue/PersistentMembers")


async def test_login_joins_every_queue_with_its_penalty_survives_a_restart_and_logout_removes(rig):
    async with rig.ami() as ami:
        tag = await dial_code(ami, "*917001", PINS["7001"] + "#")
        added = {}
        for queue in ("general-12345", "expert-12320"):
            added[queue] = await ami.wait("QueueMemberAdded", timeout=20, Queue=queue, Interface=re.escape(DESK1))
        await ami.wait("Newexten", timeout=10, Uniqueid=tag, Application="Playback",
                       AppData="hotline/agent-logged-in")
    assert added["general-12345"]["Penalty"] == "0" and added["expert-12320"]["Penalty"] == "3"
    assert {e["MemberName"] for e in added.values()} == {"test desk 1"}
    assert {e["Membership"] for e in added.values()} == {"dynamic"}
    assert DESK1 not in members(rig, "minors-protection")      # only the agent's own queues

    restart(rig)
    shown = members(rig, "expert-12320")
    assert re.search(rf"test desk 1 \({re.escape(DESK1)}\).*with penalty 3.*\(dynamic\)", shown), shown
    assert DESK1 in members(rig, "general-12345")

    async with rig.ami() as ami:
        tag = await dial_code(ami, "*927001", PINS["7001"] + "#")
        for queue in ("general-12345", "expert-12320"):
            await ami.wait("QueueMemberRemoved", timeout=20, Queue=queue, Interface=re.escape(DESK1))
        await ami.wait("Newexten", timeout=10, Uniqueid=tag, Application="Playback",
                       AppData="hotline/agent-logged-out")
    restart(rig)
    assert DESK1 not in members(rig, "general-12345") and DESK1 not in members(rig, "expert-12320")
