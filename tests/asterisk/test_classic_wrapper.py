"""Services on the real Asterisk. The doctor's AMI check logs in as the hotline user of the rendered
manager_hotline.conf (and FAILs with a wrong secret). The shipped classic-AGI wrapper (conf/asterisk/agi-bin/hotline-agi), symlinked into
Asterisk's astagidir and run as AGI(hotline-agi,${EXTEN}), routes a call: Asterisk starts it with its own
environment and working directory, writes the agi_* block and answers its commands; the decision reaches the
channel and AGISTATUS is SUCCESS."""
from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from pydantic import SecretStr

from scripts.cli_doctor import check_asterisk
from scripts.settings import Settings
from tests.asterisk.harness import AMI_SECRET
from tests.test_fastagi_support import WORKDAY_10H

ROOT = Path(__file__).resolve().parents[2]
WRAPPER = ROOT / "conf" / "asterisk" / "agi-bin" / "hotline-agi"

CLASSIC = f"""
[svc-classic]
; classic AGI as an admin would write it; the test clock is this rig's only (ENV() is Asterisk's environment,
; which AGI scripts inherit)
exten => _X.,1,Set(ENV(HOTLINE_ALLOW_TEST_CLOCK)=1)
 same => n,Set(HOTLINE_AT={WORKDAY_10H})
 same => n,Set(AGIEXITONHANGUP=yes)
 same => n,AGI(hotline-agi,${{EXTEN}})
 same => n,UserEvent(SvcClassic,Exten: ${{EXTEN}},Status: ${{AGISTATUS}},Action: ${{HOTLINE_ACTION}},Target: ${{HOTLINE_TARGET}})
 same => n,Hangup()
"""


@pytest.fixture(scope="module")
def rig(make_rig):
    rig = make_rig("svc-classic", engines=0, dead_engines=1, extra_extensions=CLASSIC)
    agi_bin = rig.pbx.confdir / "agi-bin"               # the harness's astagidir
    agi_bin.mkdir(exist_ok=True)
    (agi_bin / "hotline-agi").symlink_to(WRAPPER)
    return rig


async def classic_call(rig, did: str, dtmf: str = "") -> dict[str, str]:
    async with rig.ami() as ami:
        tag = f"sc{time.monotonic_ns() % 10**12}"
        reply = await ami.action("Originate", Channel=f"Local/{did}@svc-classic/n", Context="test-caller",
                                 Exten="s", Priority="1", CallerID="13800138000", Async="true",
                                 ChannelId=f"ph{tag}", OtherChannelId=tag, Variable=[f"DTMF={dtmf}", "STAY=5"])
        assert reply.get("Response") == "Success", reply
        return await ami.wait("UserEvent", timeout=30, UserEvent="SvcClassic", Uniqueid=re.escape(tag))


def channel_lines(rig, did: str) -> list[str]:
    return [line for line in rig.pbx.log_text().splitlines() if f"<Local/{did}@svc-classic-" in line]


async def test_wrapper_runs_the_menu_and_sets_the_decision(rig):
    event = await classic_call(rig, "12320", dtmf="1")
    assert (event["Status"], event["Action"], event["Target"]) == ("SUCCESS", "queue", "expert-12320")
    assert f"Launched AGI Script {rig.pbx.confdir}/agi-bin/hotline-agi" in rig.pbx.log_text()
    lines = channel_lines(rig, "12320")
    assert any("AGI Rx << GET OPTION hotline/zh/expert-12320-menu" in line for line in lines)   # the menu
    assert any("AGI Script hotline-agi completed, returning 0" in line for line in lines)


async def test_wrapper_sends_an_emergency_call_to_its_trunk_without_answering(rig):
    event = await classic_call(rig, "110")
    assert (event["Status"], event["Action"], event["Target"]) == ("SUCCESS", "dial", "emergency-110")
    assert not any("AGI Rx << ANSWER" in line for line in channel_lines(rig, "110"))


def test_doctor_logs_in_to_asterisk_as_the_hotline_user(rig):
    settings = Settings(ami_port=rig.pbx.ami_port, ami_user="hotline", ami_secret=SecretStr(AMI_SECRET))
    ok = check_asterisk(settings, timeout=5)
    assert ok.status == "OK" and "logged in as hotline" in ok.detail, ok
    wrong = check_asterisk(settings.model_copy(update={"ami_secret": SecretStr("not-the-secret")}), timeout=5)
    assert wrong.status == "FAIL" and "refused" in wrong.detail, wrong
