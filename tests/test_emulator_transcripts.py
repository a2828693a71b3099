"""The Asterisk emulator answers exactly as the recorded Asterisk 22.10.1 did, command for command."""
from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from ivr.agi.codec import ResponseParser, parse_env
from ivr.agi.transcript import load_transcript
from ivr.emulator import HANGUP_LINE, AsteriskChannel, asterisk_env, env_block, place_call

TRANSCRIPTS = sorted((Path(__file__).parent / "transcripts").glob("fastagi-*.txt"))


def scripted_channel(path: Path) -> tuple[AsteriskChannel, list]:
    t = load_transcript(path)
    env = parse_env(t.env_block)
    scenario = path.stem.removeprefix("fastagi-")
    dtmf = {"queue-redirect": ["2"], "agi-hangup": ["hangup"], "agi-redirect": ["hangup"],
            # the second set's callers pressed 2 once the 1.5 s menu prompt had played
            "escalate": ["+2"], "threeway-answered": ["+2"]}.get(scenario, ["1"])
    return AsteriskChannel(env, dtmf, variables={"SCENARIO": scenario}, sounds=recorded_sounds(path, t)), t.exchanges


def recorded_sounds(path: Path, t) -> dict[str, int]:
    """The second set was recorded with every hotline prompt installed as 1.5 s of tone (12000 samples)."""
    if "2026-12-01" not in path.read_text(encoding="utf-8")[:200]:
        return {}
    named = (ex.command.split()[2].decode() for ex in t.exchanges
             if ex.command.startswith((b"STREAM FILE ", b"GET OPTION ")))
    return {name: 12000 for name in named if name.startswith("hotline/")}


def replay(path: Path) -> tuple[bytes, bytes]:
    """(what Asterisk sent after the env block, what the emulator sends for the same commands and events).

    The edge's events come from the model: the lone HANGUP after a hang-up, the engine timeout firing while no
    command is pending (an unexplained HANGUP in the recording is that timer), AGIEXITONHANGUP leaving AGI
    (HANGUP twice, then nothing answered), and the end-of-session HANGUP once the engine closes."""
    t = load_transcript(path)
    channel, _ = scripted_channel(path)
    exit_on_hangup = "exitonhangup" in path.stem
    recorded = ours = b""
    after_env = False
    for r in t.records:
        if not after_env:
            after_env = r.direction == "A>P" and r.data == b"\n"
            continue
        if r.direction == "A>P" and r.data is not None:
            recorded += r.data
            if r.data == HANGUP_LINE and len(ours) < len(recorded):
                if channel.hangup_pending:
                    channel.hangup_pending = False
                    ours += HANGUP_LINE
                elif not channel.dead:
                    channel.expire()                       # TIMEOUT(absolute) with no command pending
                    ours += HANGUP_LINE
                    if exit_on_hangup:
                        ours += channel.end_of_session()
                        channel.closed = True
        elif r.direction == "P>A" and r.data:
            ours += channel.handle(r.data.decode().rstrip("\n"))
        elif r.direction == "P>A" and "engine closes" in r.note and not channel.closed:
            ours += channel.end_of_session()
    return recorded, ours


@pytest.mark.parametrize("path", TRANSCRIPTS, ids=lambda p: p.stem)
def test_same_replies_for_the_same_commands(path):
    recorded, ours = replay(path)
    assert ours == recorded


@pytest.mark.parametrize("name", ["engine-stall", "engine-stall-exitonhangup", "emergency-invite"])
def test_every_session_ends_with_hangup_then_eof(name):
    recorded, ours = replay(TRANSCRIPTS[0].parent / f"fastagi-{name}.txt")
    assert recorded.endswith(HANGUP_LINE) and ours == recorded


def test_env_block_matches_asterisk_layout():
    t = load_transcript(TRANSCRIPTS[0])
    recorded = parse_env(t.env_block)
    ours = asterisk_env(dialed="19000", channel=recorded["channel"], uniqueid=recorded["uniqueid"],
                        script="hangup-test", args=["19000"])
    assert list(ours) == list(recorded)
    assert parse_env(env_block(ours)) == ours


def test_get_data_digits_timeouts_and_hash():
    ch = AsteriskChannel(asterisk_env(dialed="12345"), ["12#", "timeout", "34", "5678"])
    assert ch.handle("GET DATA menu 5000 4") == b"200 result=12\n"
    assert ch.handle("GET DATA menu 5000 4") == b"200 result= (timeout)\n"
    assert ch.handle("GET DATA menu 5000 4") == b"200 result=34 (timeout)\n"
    assert ch.handle("GET DATA menu 5000 2") == b"200 result=56\n"
    assert ch.handle("GET DATA menu 5000 2") == b"200 result=78\n"
    assert ch.t.pressed == ["12#", "timeout", "34", "56", "78"]


def test_stream_file_barge_in_only_with_escape_digits():
    ch = AsteriskChannel(asterisk_env(dialed="12345"), ["1", "2"])
    assert ch.handle('STREAM FILE welcome ""').startswith(b"200 result=0 endpos=")
    assert ch.handle("STREAM FILE welcome 12").startswith(b"200 result=49 endpos=")
    assert ch.handle("GET OPTION menu 9 3000").startswith(b"200 result=0 endpos=")   # '2' ignored, then nothing
    assert ch.t.heard == ["welcome", "welcome", "menu"] and ch.t.pressed == ["1", "2", "timeout"]


def test_hangup_then_dead_channel():
    ch = AsteriskChannel(asterisk_env(dialed="12345"), ["hangup"])
    # res_agi answers a prompt cut by a hang-up with where it stopped: "200 result=-1 endpos=N"
    assert ch.handle("STREAM FILE welcome 1") == b"200 result=-1 endpos=0\n" and ch.hangup_pending
    assert ch.handle("SET VARIABLE HOTLINE_ACTION queue") == b"200 result=1\n"
    assert ch.handle("STREAM FILE x \"\"").startswith(b"511 ")
    assert ch.t.hungup and ch.t.variables["HOTLINE_ACTION"] == "queue"


def test_usage_error_and_unknown():
    ch = AsteriskChannel(asterisk_env(dialed="12345"))
    assert ch.handle("SET VARIABLE ONLYNAME").startswith(b"520-Invalid command syntax.")
    assert ch.handle("FROBNICATE") == b"510 Invalid or unknown command\n"
    assert [r.code for r in ResponseParser().feed(ch.handle("GET DATA"))] == [520]


async def test_place_call_against_a_scripted_peer():
    """The asyncio edge: env block out, commands answered, lone HANGUP ~40 ms after result=-1."""
    received = []
    done = asyncio.Event()

    async def server(reader, writer):
        env = await reader.readuntil(b"\n\n")
        received.append(env)
        for line in (b"ANSWER\n", b'STREAM FILE welcome ""\n', b"GET DATA menu 3000 1\n"):
            writer.write(line)
            received.append(await reader.readline())
        received.append(await asyncio.wait_for(reader.readline(), 2))     # the lone HANGUP
        writer.write(b"SET VARIABLE HOTLINE_ACTION hangup\n")
        received.append(await reader.readline())
        writer.close()
        done.set()

    srv = await asyncio.start_server(server, "127.0.0.1", 0)
    port = srv.sockets[0].getsockname()[1]
    async with srv:
        t = await place_call("127.0.0.1", port, dialed="12345", hangup_at=2, timeout=5)
        await asyncio.wait_for(done.wait(), 5)
    assert parse_env(received[0])["extension"] == "12345"
    assert received[2].startswith(b"200 result=0 endpos=")
    assert received[1:2] + received[3:] == [b"200 result=0\n", b"200 result=-1\n",
                            b"HANGUP\n", b"200 result=1\n"]
    assert t.hungup and t.closed_by == "server" and t.destination == "caller hung up"


def test_hangup_right_after_a_quick_command():
    """A hang-up between commands: the quick command completes, then the channel is dead (HANGUP line)."""
    ch = AsteriskChannel(asterisk_env(dialed="12345"), hangup_at=1)
    assert ch.handle("ANSWER") == b"200 result=0\n" and not ch.hangup_pending
    assert ch.handle("SET VARIABLE A 1") == b"200 result=1\n" and ch.hangup_pending and ch.t.hungup
    assert ch.handle("GET OPTION menu 12 5000").startswith(b"511 ")
    assert ch.handle("SET VARIABLE HOTLINE_ACTION queue") == b"200 result=1\n"
