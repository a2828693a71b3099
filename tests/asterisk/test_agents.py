"""Agents log in and out from their phone (*91<agent> / *92<agent> + PIN) on the real Asterisk 22.

The rendered extensions_hotline_agents.conf is used as generated; the agent's phone is an Originate of
Local/*91<agent>@hotline-agents whose other half (the phone) sends the PIN as DTMF. Asterisk decides the
membership: QueueMemberAdded/Removed events, `queue show`, and after a restart of the same config dir what
app_queue put back from the astdb (queues.conf persistentmembers=yes, as conf/asterisk/queues.conf ships).
"""
from __future__ import annotations

import asyncio
import re
import time

import pytest

from tests.asterisk import harness
from tests.asterisk.harness import Ami

PINS = {"7001": "2468", "7002": "1357", "7003": "8642", "7004": "9753"}
DESK1 = "Local/ag7001@test-agent/n"
DESK2 = "Local/ag7002@test-agent/n"
HEALTH = "Local/rr7003@test-ringer/n"      # members that ring and never answer: who is rung first is the answer
PLAIN = "Local/rr7004@test-ringer/n"
SKILL_FIRST = 2                             # s: skill_first_seconds of this rig's agents file
AGENTS_YAML = f"""version: 1
skill_first_seconds: {SKILL_FIRST}
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
  "7003":
    name: health desk
    interface: {HEALTH}
    pin_env: HOTLINE_AGENT_7003_PIN
    queues: {{general-12345: 0}}
    skills: [health]
  "7004":
    name: plain desk
    interface: {PLAIN}
    pin_env: HOTLINE_AGENT_7004_PIN
    queues: {{general-12345: 0}}
"""


def short_ring(text: str) -> str:
    """general-12345 rings a member 5 s instead of 15: the skill tests wait out a ring that is never answered."""
    marker = "    strategy: rrmemory\n    member_timeout: 15\n"
    assert marker in text
    return text.replace(marker, "    strategy: rrmemory\n    member_timeout: 5\n", 1)


@pytest.fixture(scope="module")
def rig(make_rig, workdir):
    conf = workdir / "agents-conf"
    conf.mkdir(exist_ok=True)
    (conf / "agents.yaml").write_text(AGENTS_YAML)
    secrets = conf / "secrets.env"
    secrets.write_text("".join(f"HOTLINE_AGENT_{n}_PIN={pin}\n" for n, pin in PINS.items()))
    secrets.chmod(0o600)
    rig = make_rig("agents-rig", render_args=["--agents", str(conf / "agents.yaml"), "--secrets", str(secrets)],
                   edit_table=short_ring)
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
    # one skill band (health) below every agent without skills: 7001's penalties 0 and 3 stand at 1 and 4
    assert added["general-12345"]["Penalty"] == "1" and added["expert-12320"]["Penalty"] == "4"
    assert {e["MemberName"] for e in added.values()} == {"test desk 1"}
    assert {e["Membership"] for e in added.values()} == {"dynamic"}
    assert DESK1 not in members(rig, "minors-protection")      # only the agent's own queues

    restart(rig)
    shown = members(rig, "expert-12320")
    assert re.search(rf"test desk 1 \({re.escape(DESK1)}\).*with penalty 4.*\(dynamic\)", shown), shown
    assert DESK1 in members(rig, "general-12345")

    async with rig.ami() as ami:
        tag = await dial_code(ami, "*927001", PINS["7001"] + "#")
        for queue in ("general-12345", "expert-12320"):
            await ami.wait("QueueMemberRemoved", timeout=20, Queue=queue, Interface=re.escape(DESK1))
        await ami.wait("Newexten", timeout=10, Uniqueid=tag, Application="Playback",
                       AppData="hotline/agent-logged-out")
    restart(rig)
    assert DESK1 not in members(rig, "general-12345") and DESK1 not in members(rig, "expert-12320")


async def both_desks_idle(rig) -> None:
    """Until app_queue sees both desks free (a ringing Local member's device state can lag a hang-up)."""
    deadline = time.monotonic() + 30
    while True:
        shown = members(rig, "general-12345")
        if len(re.findall(r"desk \(Local/rr700[34]@test-ringer/n\).*\(Not in use\)", shown)) == 2:
            return
        assert time.monotonic() < deadline, shown
        await asyncio.sleep(0.5)


async def queue_call(ami: Ami, tags: str) -> str:
    """A caller the engine sent to general-12345 with HOTLINE_TAGS=`tags`; returns the queued half's Uniqueid."""
    tag = f"q{time.monotonic_ns() % 10**12}"
    reply = await ami.action("Originate", Channel="Local/s@hotline-queue-general-12345/n", Context="test-caller",
                             Exten="s", Priority="1", Async="true", ChannelId=f"c{tag}", OtherChannelId=tag,
                             Variable=[f"HOTLINE_TAGS={tags}", "STAY=120"])
    assert reply.get("Response") == "Success", reply
    return tag


async def hang_up(ami: Ami, tag: str) -> None:
    await ami.action("Hangup", Channel=f"/^Local/s@hotline-queue-general-12345-.*;2$/")
    await ami.wait("QueueCallerLeave", timeout=10, Uniqueid=tag)


@pytest.fixture(scope="module")
def skilled_desks(rig) -> dict[str, str]:
    """7003 (skill health) and 7004 (no skill) log in to general-12345 with their codes: number -> penalty."""
    async def login() -> dict[str, str]:
        penalties = {}
        async with rig.ami() as ami:
            # the health desk first: rrmemory alone would ring it first for every call, so the call without the
            # tag ringing the plain desk first is the skills' doing
            for number, interface in (("7003", HEALTH), ("7004", PLAIN)):
                await dial_code(ami, f"*91{number}", PINS[number] + "#")
                added = await ami.wait("QueueMemberAdded", timeout=20, Queue="general-12345",
                                       Interface=re.escape(interface))
                penalties[number] = added["Penalty"]
        return penalties
    return asyncio.run(login())


async def test_a_call_tagged_health_rings_the_health_desk_first_and_the_others_after_its_first_seconds(
        rig, skilled_desks):
    assert skilled_desks == {"7003": "0", "7004": "1"}      # band 0; floor 1 + penalty 0
    await both_desks_idle(rig)
    async with rig.ami() as ami:
        tag = await queue_call(ami, "health+specialist")
        first = await ami.wait("AgentCalled", timeout=20, Uniqueid=tag)
        assert first["Interface"] == HEALTH and first["MemberName"] == "health desk", first
        await ami.wait("AgentRingNoAnswer", timeout=30, Uniqueid=tag, Interface=re.escape(HEALTH))
        # nobody answers at the health desk: past skill_first_seconds (penaltychange) the plain desk rings too
        await ami.wait("AgentCalled", timeout=60, Uniqueid=tag, Interface=re.escape(PLAIN))
        await hang_up(ami, tag)


async def test_a_call_without_the_tag_rings_the_plain_desk_first(rig, skilled_desks):
    await both_desks_idle(rig)
    async with rig.ami() as ami:
        tag = await queue_call(ami, "tourism")
        first = await ami.wait("AgentCalled", timeout=20, Uniqueid=tag)
        assert first["Interface"] == PLAIN, first       # the health desk is kept for its calls ...
        await ami.wait("AgentRingNoAnswer", timeout=30, Uniqueid=tag, Interface=re.escape(PLAIN))
        await ami.wait("AgentCalled", timeout=60, Uniqueid=tag, Interface=re.escape(HEALTH))   # ... and helps after
        await hang_up(ami, tag)


def test_the_skill_rule_and_penalties_as_asterisk_loaded_them(rig, skilled_desks):
    shown = rig.pbx.cli("queue show rules hotline-skills")
    assert "hotline-skills" in shown and str(SKILL_FIRST) in shown and "1000" in shown, shown
    shown = members(rig, "general-12345")
    # `queue show` prints no penalty for 0
    assert re.search(r"health desk \(Local/rr7003@test-ringer/n\) \(ringinuse", shown) and re.search(r"plain desk .*with penalty 1", shown), shown


async def test_a_supervisor_logs_an_agent_in_from_the_view_the_same_membership_as_the_phone_code(rig, workdir):
    """web_agents.perform through the generated AMI user `hotline`, as the view does: QueueMemberAdded with the
    skill penalty, kept in the astdb across a restart like the phone login, then QueueMemberRemoved."""
    from ivr.ami.client import AmiClient
    from supervisor.auth import User
    from supervisor.hub import SupervisorHub
    from supervisor.web_agents import RosterSource, perform

    conf = workdir / "agents-conf"
    (conf / "routing.yaml").write_text((harness.ROOT / "conf" / "routing.yaml").read_text(encoding="utf-8"),
                                       encoding="utf-8")
    supervisor = User("lead", "supervisor", "scrypt$x")

    async def act(kind: str) -> dict:
        hub = SupervisorHub({"pbx": AmiClient("127.0.0.1", rig.pbx.ami_port, "hotline", harness.AMI_SECRET,
                                              ping_interval=30)})
        await hub.start()
        try:
            assert await hub.wait_synced(10)
            status, result = await perform(hub, RosterSource(conf / "routing.yaml"), supervisor, kind, "7001", "pbx",
                                           "en")
            assert status == 200 and result["ok"], result
            return result
        finally:
            await hub.stop()

    async with rig.ami() as ami:
        result = await act("login")
        added = {q: await ami.wait("QueueMemberAdded", timeout=20, Queue=q, Interface=re.escape(DESK1))
                 for q in ("general-12345", "expert-12320")}
    assert result["queues"] == ["expert-12320", "general-12345"]
    assert added["general-12345"]["Penalty"] == "1" and added["expert-12320"]["Penalty"] == "4"
    assert {e["MemberName"] for e in added.values()} == {"test desk 1"}
    assert {e["Membership"] for e in added.values()} == {"dynamic"}
    restart(rig)
    assert DESK1 in members(rig, "general-12345") and DESK1 in members(rig, "expert-12320")
    async with rig.ami() as ami:
        await act("logout")
        for queue in ("general-12345", "expert-12320"):
            await ami.wait("QueueMemberRemoved", timeout=20, Queue=queue, Interface=re.escape(DESK1))
    restart(rig)
    assert DESK1 not in members(rig, "general-12345") and DESK1 not in members(rig, "expert-12320")


def test_no_entered_pin_is_in_the_verbose_log(rig):
    """Every login and logout above keyed a PIN (verbose 3, as the rig logs): the log names none of them.
    Read() logged `app_read.c: User entered '2468'`; ReadExten logs the digits only at debug level. Left out:
    the `dtmf` log level's per-digit lines (the admin's logger.conf choice) and the test phone's own SendDTMF."""
    log = rig.pbx.log_text()
    assert "ReadExten(\"Local/*917001@hotline-agents" in log and "app_read.c: User entered" not in log
    leaks = [line for line in log.splitlines() if any(pin in line for pin in PINS.values())
             and "DTMF[" not in line and "SendDTMF(" not in line]
    assert leaks == []
    assert re.search(r'GotoIf\("Local/\*917001@hotline-agents-[0-9a-f]+;2", "1\?ok"\)', log)
