"""The end of a FastAGI session as Asterisk 22 does it, and the engine's side of AGIEXITONHANGUP.

Recordings: fastagi-emergency-invite.txt (HANGUP, then EOF after the engine closes), fastagi-engine-stall.txt
(default: one HANGUP at the timeout, the dead channel waits for the engine without limit),
fastagi-engine-stall-exitonhangup.txt (HANGUP twice, EOF at the timeout; later commands are lost).
"""
from __future__ import annotations

import asyncio
import time

from ivr.emulator import place_call
from tests.test_engine_failopen import Recorder
from tests.test_fastagi_server import events  # noqa: F401 - the log-capturing fixture
from tests.test_fastagi_support import WORKDAY_10H, call, running_engine


async def peer(script):
    """A FastAGI peer on a free port: `script(reader, writer, seen)` talks; returns (server, port, seen)."""
    seen: list[bytes] = []
    done = asyncio.Event()

    async def handle(reader, writer):
        await reader.readuntil(b"\n\n")
        try:
            await script(reader, writer, seen)
        finally:
            done.set()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1], seen, done


async def read_all(reader, seen, limit=2.0):
    while True:
        data = await asyncio.wait_for(reader.read(1024), limit)
        if not data:
            seen.append(b"EOF")
            return
        seen.append(data)


async def test_after_the_engine_closes_asterisk_writes_hangup_then_eof():
    async def decide_and_close(reader, writer, seen):
        writer.write(b"SET VARIABLE HOTLINE_ACTION dial\n")
        seen.append(await reader.readline())
        writer.write_eof()                       # half-close, so the rest of Asterisk's bytes can be read
        await read_all(reader, seen)
        writer.close()

    server, port, seen, done = await peer(decide_and_close)
    async with server:
        t = await place_call("127.0.0.1", port, dialed="110", timeout=5)
        await asyncio.wait_for(done.wait(), 5)
    assert seen == [b"200 result=1\n", b"HANGUP\n", b"EOF"]
    assert t.closed_by == "server" and t.agi_status == "SUCCESS"


async def test_stalled_engine_default_mode_waits_for_the_engine():
    """res_agi's default, what defect 1 was: one HANGUP at the timeout, then the channel waits for the peer."""
    async def stall_then_talk(reader, writer, seen):
        seen.append(await asyncio.wait_for(reader.readline(), 2))      # the lone HANGUP at the timeout
        await asyncio.sleep(0.3)                                          # still waiting for us: no EOF
        writer.write(b"SET VARIABLE HOTLINE_ACTION queue\n")
        seen.append(await reader.readline())
        writer.write(b"CHANNEL STATUS\n")
        seen.append(await reader.readline())
        writer.close()

    server, port, seen, done = await peer(stall_then_talk)
    async with server:
        started = time.monotonic()
        t = await place_call("127.0.0.1", port, dialed="110", engine_timeout=0.2, timeout=5)
        took = time.monotonic() - started
        await asyncio.wait_for(done.wait(), 5)
    assert seen[0] == b"HANGUP\n" and seen[1] == b"200 result=1\n" and seen[2].startswith(b"511 ")
    assert took >= 0.45 and t.timed_out and t.agi_status == "HANGUP"
    assert t.destination == "engine timeout: T carries out queue"


async def test_stalled_engine_with_exit_on_hangup_is_left_at_the_timeout():
    async def stall(reader, writer, seen):
        await read_all(reader, seen, limit=3)
        writer.close()

    server, port, seen, done = await peer(stall)
    async with server:
        started = time.monotonic()
        t = await place_call("127.0.0.1", port, dialed="110", engine_timeout=0.3, exit_on_hangup=True, timeout=5)
        took = time.monotonic() - started
        await asyncio.wait_for(done.wait(), 5)
    assert b"".join(seen[:-1]) == b"HANGUP\nHANGUP\n" and seen[-1] == b"EOF"
    assert 0.3 <= took < 1.0 and t.closed_by == "asterisk" and t.timed_out
    assert t.destination == "engine timeout (dialplan T fails open)"


async def test_engine_ends_cleanly_when_asterisk_leaves_agi_on_a_hangup(events):
    """Caller hangs up in the menu with AGIEXITONHANGUP: HANGUP, HANGUP, EOF. The engine sends nothing more,
    logs why, and still records the route chosen so far (ivr_path, hung up)."""
    rec = Recorder()
    async with running_engine(recorder=rec) as (server, _):
        t = await call(server, "12345", ["hangup"], at=WORKDAY_10H, exit_on_hangup=True, uniqueid="u.9")
        await asyncio.sleep(0.1)
        served, dropped = server.stats["served"], server.stats["dropped"]
    assert t.hungup and t.closed_by == "asterisk"
    closed = [e for e in events if e["event"] == "engine.agi_closed"]
    assert len(closed) == 1 and closed[0]["hangup_seen"] is True
    assert (served, dropped) == (1, 0)
    (record,) = rec.calls
    assert record.uniqueid == "u.9" and record.ivr_path[:1] == ("main",)
    from records.types import Outcome
    assert record.outcome is Outcome.IVR_HANGUP


class ExitingAsterisk:
    """Classic AGI's pipes, answered by the emulator's channel; at the caller's hang-up Asterisk leaves AGI
    (AGIEXITONHANGUP): HANGUP twice on stdin, then EOF, and our stdout is closed (writes break the pipe)."""

    def __init__(self, channel) -> None:
        from ivr.emulator import env_block
        self.channel = channel
        self.pending = bytearray(env_block(channel.env))
        self.closed = False
        self.stdout = self

    # stdout side
    def write(self, data: bytes) -> int:
        if self.closed:
            raise BrokenPipeError(32, "Broken pipe")
        self.pending += self.channel.handle(data.decode().rstrip("\n"))
        if self.channel.hangup_pending:
            self.pending += b"HANGUP\nHANGUP\n"
            self.closed = True
        return len(data)

    def flush(self) -> None:
        pass

    # stdin side
    def readline(self) -> bytes:
        end = self.pending.find(b"\n")
        if end < 0:
            return b""
        line, self.pending[:end + 1] = bytes(self.pending[:end + 1]), b""
        return line


def test_classic_agi_ends_cleanly_when_asterisk_leaves_agi():
    from ivr.classic import ClassicChannel
    from ivr.emulator import AsteriskChannel, asterisk_env
    from ivr.engine import ConfigHolder, Engine
    from tests.test_fastagi_support import MENUS, TABLE, shipped_config

    pipes = ExitingAsterisk(AsteriskChannel(asterisk_env(dialed="12345"), ["hangup"]))
    channel = ClassicChannel(pipes, pipes.stdout)
    rec = Recorder()
    flow = Engine(ConfigHolder(shipped_config(), TABLE, MENUS), recorder=rec).handle_sync(channel.env, channel.send)
    assert flow.outcome is not None and flow.outcome.hungup and flow.outcome.ivr_path[:1] == ("main",)
    (record,) = rec.calls
    from records.types import Outcome
    assert record.outcome is Outcome.IVR_HANGUP and record.ivr_path[:1] == ("main",)
