"""The generated dialplan and the real engine agree: calls walk the generated extensions, and each AGI() step
is a real FastAGI session over TCP (the Asterisk emulator as the channel, the shipped engine as the server).

Every decision the engine makes for every line of the shipped table is accepted by the dialplan's whitelists
(no fail-open) and leads to the queue or trunk the engine chose; an engine that is down (connection refused,
as AGISTATUS=FAILURE in ami-agi-failure.txt) fails open, and with an engine list the next engine serves.
"""
from __future__ import annotations

import asyncio
import re
import socket
from pathlib import Path

import pytest

from dialplan.options import RenderOptions
from dialplan.render import render
from dialplan.walk import Call, parse, run
from ivr.emulator import place_call
from ivr.engine import ConfigHolder, Engine, load_config
from ivr.fastagi import ServerLimits, build_server
from routing.loader import load_table

ROOT = Path(__file__).resolve().parents[1]
TABLE_PATH, MENUS_PATH = ROOT / "conf" / "routing.yaml", ROOT / "conf" / "ivr.yaml"
TABLE = load_table(TABLE_PATH)
WORKDAY_10H = "2026-11-26T10:00:00+08:00"      # Thursday, office hours
HOLIDAY_3H = "2026-02-17T03:00:00+08:00"       # Spring Festival, night
DIDS = sorted(set(TABLE.lines) | {"12345", "88886666"})


def closed_port() -> int:
    """A loopback port with nothing listening (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RealAgi:
    """The AGI() effect: connect like res_agi to the URL in the dialplan and run the session with the emulator."""

    def __init__(self, loop: asyncio.AbstractEventLoop, at: str, dtmf: tuple[str, ...] = (),
                 missing_sounds: tuple[str, ...] = ()) -> None:
        self.loop, self.at, self.dtmf, self.missing_sounds = loop, at, dtmf, missing_sounds
        self.transcripts = []

    def __call__(self, call: Call, args: str) -> dict[str, str]:
        url, _, dialed = args.partition(",")
        host, port, script = re.match(r"^agi://([^:/]+):(\d+)/(\w+)$", url).groups()
        future = asyncio.run_coroutine_threadsafe(
            place_call(host, int(port), dialed=dialed, script=script, variables={"HOTLINE_AT": self.at},
                       dtmf=self.dtmf, timeout=10, missing_sounds=self.missing_sounds), self.loop)
        transcript = future.result(timeout=15)
        self.transcripts.append(transcript)
        if transcript.agi_status in ("FAILURE", "HANGUP") and not transcript.exchanges:
            return {"AGISTATUS": transcript.agi_status}   # res_agi: could not connect
        if transcript.agi_status == "HANGUP":
            return {"AGISTATUS": "HANGUP"}
        # SUCCESS, or FAILURE after a command failed on the live channel: the variables are set either way
        return {"AGISTATUS": transcript.agi_status, **{k: v for k, v in transcript.variables.items()
                                                       if k.startswith("HOTLINE_") or k.startswith("CALLERID")}}


def answered(call: Call, args: str) -> dict[str, str]:
    return {"__end__": "answered"}


async def walk(engines: tuple[str, ...], did: str, at: str, dtmf: tuple[str, ...] = (),
               missing_sounds: tuple[str, ...] = ()) -> tuple[Call, RealAgi]:
    plan = parse(render(TABLE, RenderOptions(engines=engines))["extensions_hotline.conf"])
    agi = RealAgi(asyncio.get_running_loop(), at, dtmf, missing_sounds)
    effects = {"AGI": agi, "Queue": answered, "Dial": lambda c, a: {"DIALSTATUS": "ANSWER"}}
    result = await asyncio.to_thread(run, plan, "hotline-from-carrier", did, {"CALLERID(name)": "Probe Caller"},
                                     effects)
    return result, agi


async def start_engine():
    engine = Engine(ConfigHolder(load_config(TABLE_PATH, MENUS_PATH), TABLE_PATH, MENUS_PATH),
                    allow_test_clock=True)
    server = build_server(engine, port=0, limits=ServerLimits(env_timeout=2, reply_timeout=5, drain_timeout=2))
    await server.start()
    return server


@pytest.mark.parametrize("at", [WORKDAY_10H, HOLIDAY_3H])
async def test_every_engine_decision_is_carried_out_by_the_generated_dialplan(at: str) -> None:
    server = await start_engine()
    try:
        for did in DIDS:
            result, agi = await walk((f"agi://127.0.0.1:{server.port}",), did, at)
            (transcript,) = agi.transcripts
            assert transcript.closed_by == "server" and not transcript.error, transcript.render()
            action = transcript.variables["HOTLINE_ACTION"]
            target = transcript.variables.get("HOTLINE_TARGET", "")
            assert "HOTLINE_FAILOPEN" not in result.variables, (did, transcript.destination, result.apps())
            assert "Log" not in result.apps()     # engine and dialplan name the same table version
            if action == "queue":
                assert result.queues == [target], (did, result.apps())
            elif action == "dial":
                trunk = TABLE.trunks[target]
                assert result.dials == [f"PJSIP/{trunk.dial}@{trunk.id}"] and result.queues == []
            elif action == "hangup":
                assert result.queues == [] and result.dials == [] and result.ended == "hangup"
            else:
                assert action == "callback" and result.apps()[-2:] == ["Playback", "Hangup"]
    finally:
        await server.shutdown(drain_timeout=2)


MENU_CALLS = [   # 12345's main menu (conf/ivr.yaml): caller keys -> what the dialplan must do next
    (WORKDAY_10H, ("3",), "queue", "business-environment"),
    (WORKDAY_10H, ("5", "1"), "queue", "city-haikou"),
    (WORKDAY_10H, ("5", "2"), "queue", "city-sanya"),
    (HOLIDAY_3H, ("3", "13800000000#", "1"), "callback", "business-environment"),
    (WORKDAY_10H, ("6", "13800000000#", "1"), "callback", "general-12345"),
    (WORKDAY_10H, ("hangup",), "caller-gone", ""),
]


@pytest.mark.parametrize("at,keys,action,target", MENU_CALLS)
async def test_menu_choices_through_engine_and_dialplan(at: str, keys: tuple[str, ...], action: str,
                                                        target: str) -> None:
    server = await start_engine()
    try:
        result, agi = await walk((f"agi://127.0.0.1:{server.port}",), "12345", at, keys)
    finally:
        await server.shutdown(drain_timeout=2)
    assert "HOTLINE_FAILOPEN" not in result.variables
    if action == "queue":
        assert result.queues == [target]
    elif action == "callback":
        assert agi.transcripts[0].variables["HOTLINE_TARGET"] == target
        # one goodbye: the engine's accepted prompt in the caller's language, none from the dialplan after it
        heard = agi.transcripts[0].heard
        assert len([p for p in heard if "callback-accepted" in p]) == 1
        assert result.queues == [] and "Playback" not in result.apps() and result.apps()[-1] == "Hangup"
    else:
        assert agi.transcripts[0].hungup and result.queues == [] and result.ended == "hangup"


async def test_engine_down_fails_open_over_a_refused_connection() -> None:
    dead = f"agi://127.0.0.1:{closed_port()}"
    for did in ("12320", "12345", "88886666"):
        result, agi = await walk((dead,), did, WORKDAY_10H)
        assert agi.transcripts[0].error                     # the connection really was refused
        assert result.variables["HOTLINE_FAILOPEN"] == "engine-failure"
        assert result.queues == [TABLE.general_queue] and result.variables["HOTLINE_LINE"] == did
    result, _ = await walk((dead,), "110", WORKDAY_10H)
    assert result.queues == [] and result.dials == ["PJSIP/110@emergency-110"]


async def test_engine_list_skips_a_dead_engine() -> None:
    server = await start_engine()
    try:
        engines = (f"agi://127.0.0.1:{closed_port()}", f"agi://127.0.0.1:{server.port}")
        result, agi = await walk(engines, "12329", WORKDAY_10H)
    finally:
        await server.shutdown(drain_timeout=2)
    assert [t.closed_by for t in agi.transcripts] == ["error", "server"]
    assert result.queues == ["expert-12329"] and "HOTLINE_FAILOPEN" not in result.variables


async def test_a_missing_sound_file_does_not_cost_the_caller_the_route() -> None:
    """res_agi answers GET OPTION on a sound it cannot open with -1 and ends AGI with FAILURE although the
    engine went on and decided: the dialplan carries out that decision (not a fail-open to 12345's general
    queue), and with an engine list it does not run the IVR a second time on the next engine."""
    server = await start_engine()
    try:
        engines = (f"agi://127.0.0.1:{server.port}", f"agi://127.0.0.1:{closed_port()}")
        result, agi = await walk(engines, "12320", WORKDAY_10H, missing_sounds=("hotline/zh/expert-12320-menu",))
    finally:
        await server.shutdown(drain_timeout=2)
    (transcript,) = agi.transcripts                      # the second engine was not tried
    assert transcript.agi_status == "FAILURE" and not transcript.hungup
    assert result.queues == ["expert-12320"] and "HOTLINE_FAILOPEN" not in result.variables
    assert "Log" in result.apps()                        # the admin is told in Asterisk's log too
