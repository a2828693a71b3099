"""Override switches flipped from a phone (*95<code> on / *96<code> off + PIN) on the real Asterisk 22, and the
next call routed per the switch.

The rendered extensions_hotline_switches.conf is used as generated; the admin's phone is an Originate of
Local/*951@hotline-switches whose other half (the phone) sends the PIN as DTMF. After the PIN the dialplan asks
the engine (FastAGI script `switch`), which writes the flip to its records and answers; the next call to the
carrier DIDs is then routed by the same engine with the switch, without a reload.
"""
from __future__ import annotations

import re
import time

import pytest
import sqlalchemy as sa

from tests.asterisk.harness import SWITCH_PIN, Ami
from tests.asterisk.scenario import Script, hang_up, run_script

NOW = "2026-12-02T10:00"          # a working day in office hours: the expert seats are open


@pytest.fixture(scope="module")
def rig(make_rig):
    return make_rig("switches-rig")


async def dial_code(ami: Ami, code: str, dtmf: str, extension: str = "8001") -> str:
    """The admin's phone (caller ID `extension`) dials `code` and keys `dtmf`; returns the tag of its
    hotline-switches half."""
    tag = f"s{time.monotonic_ns() % 10**12}"
    reply = await ami.action("Originate", Channel=f"Local/{code}@hotline-switches/n", Context="test-caller",
                             Exten="s", Priority="1", Async="true", ChannelId=f"ph{tag}", OtherChannelId=tag,
                             CallerID=extension, Variable=[f"DTMF={dtmf}", "STAY=15"])
    assert reply.get("Response") == "Success", reply
    return tag


def flips(rig) -> list[tuple]:
    engine = sa.create_engine(rig.engines[0].db_url)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(sa.text("select name, active, by, via, why from switch_events "
                                                           "order by id"))]
    except sa.exc.OperationalError:
        return []
    finally:
        engine.dispose()


async def call(ami: Ami, did: str, tag: str):
    result = await run_script(ami, Script(did, at=NOW), tag)
    assert not result.error, result.error
    return result


async def test_a_wrong_pin_flips_nothing(rig):
    async with rig.ami() as ami:
        tag = await dial_code(ami, "*953", "1111#")
        await ami.wait("Newexten", timeout=20, Uniqueid=tag, Application="Playback", AppData="hotline/switch-refused")
        assert not ami.find("AGIExecStart", Uniqueid=re.escape(tag))       # the engine was never asked
    assert flips(rig) == []


async def test_typhoon_from_the_phone_routes_the_next_call_then_off_again(rig):
    stamp = time.monotonic_ns() % 10**8
    async with rig.ami() as ami:
        before = await call(ami, "12329", f"b{stamp}")
        assert before.joins[0]["Queue"] == "expert-12329" and "hotline/typhoon-notice" not in before.sounds()

        tag = await dial_code(ami, "*951", SWITCH_PIN + "#")
        await ami.wait("Newexten", timeout=20, Uniqueid=tag, Application="Playback", AppData="hotline/switch-on")
        assert flips(rig) == [("typhoon", 1, "phone 8001", "phone", "feature code *951")]

        expert = await call(ami, "12329", f"t{stamp}")          # the very next call: no reload, no wait
        assert expert.sounds()[0] == "hotline/typhoon-notice"
        assert expert.joins[0]["Queue"] == "general-12345"
        unified = await call(ami, "12345", f"u{stamp}")
        assert unified.sounds()[0] == "hotline/typhoon-notice" and unified.joins[0]["Queue"] == "general-12345"
        police = await call(ami, "110", f"p{stamp}")             # emergency linkage: untouched
        assert "hotline/typhoon-notice" not in police.sounds() and police.dials and not police.joins

        tag = await dial_code(ami, "*961", SWITCH_PIN + "#")
        await ami.wait("Newexten", timeout=20, Uniqueid=tag, Application="Playback", AppData="hotline/switch-off")
        after = await call(ami, "12329", f"a{stamp}")
        assert after.joins[0]["Queue"] == "expert-12329" and "hotline/typhoon-notice" not in after.sounds()
        await hang_up(ami, {"b": before, "t": expert, "u": unified, "p": police, "a": after})
    assert [f[:2] for f in flips(rig)] == [("typhoon", 1), ("typhoon", 0)]


def test_no_entered_switch_pin_is_in_the_verbose_log(rig):
    """The flips above keyed the switches' PIN (verbose 3, as the rig logs): it is read with ReadExten like the
    agents' (dialplan.pin), so the log never names it (Read() logged `app_read.c: User entered '…'`). Left out,
    as for the agents: the `dtmf` log level's per-digit lines and the test phone's own SendDTMF."""
    log = rig.pbx.log_text()
    assert 'ReadExten("Local/*951@hotline-switches' in log and "app_read.c: User entered" not in log
    leaks = [line for line in log.splitlines()
             if SWITCH_PIN in line and "DTMF[" not in line and "SendDTMF(" not in line]
    assert leaks == []
