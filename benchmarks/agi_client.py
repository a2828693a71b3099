"""The load generator's caller: a lean asyncio.Protocol that plays Asterisk's side of one FastAGI call.

Lean on purpose: the load generator must cost far less than the servers it measures (ivr.emulator's full
channel model is for correctness tests, not for 1,000 calls/s). It answers each command as Asterisk 22 does
for a channel that plays every prompt to its end: a key from its script for GET OPTION / WAIT FOR DIGIT
(or a time-out), `200 result=1` for SET VARIABLE, `200 result=0` otherwise. Prompt replies may be delayed
(a prompt playing) to hold the session open.
"""
from __future__ import annotations

import asyncio
import itertools
import os
import random
import time
from dataclasses import dataclass, field
from typing import Callable

PROMPTS = (b"GET OPTION", b"STREAM FILE", b"GET DATA", b"WAIT FOR DIGIT", b"CONTROL STREAM FILE")
KEYED = (b"GET OPTION", b"WAIT FOR DIGIT")
_ids = itertools.count(1)


def env_block(dialed: str, caller: str, port: int) -> bytes:
    """The agi_* block of Asterisk 22 for AGI(agi://127.0.0.1:PORT/route,DIALED), with a unique uniqueid."""
    uniqueid = f"{int(time.time())}.{os.getpid() % 1000}{next(_ids):07d}"
    chan = f"PJSIP/trunk-gov-{next(_ids):08x}"
    fields = [("network", "yes"), ("network_script", "route"), ("request", f"agi://127.0.0.1:{port}/route"),
              ("channel", chan), ("language", "en"), ("type", "PJSIP"), ("uniqueid", uniqueid),
              ("version", "22.10.1"), ("callerid", caller), ("calleridname", "Bench Caller"),
              ("callingpres", "0"), ("callingani2", "0"), ("callington", "0"), ("callingtns", "0"),
              ("dnid", dialed), ("rdnis", "unknown"), ("context", "from-pstn"), ("extension", dialed),
              ("priority", "2"), ("enhanced", "0.0"), ("accountcode", ""), ("threadid", "140144823973568"),
              ("arg_1", dialed)]
    return "".join(f"agi_{k}: {v}\n" for k, v in fields).encode() + b"\n"


@dataclass
class CallResult:
    commands: list[bytes] = field(default_factory=list)
    variables: dict[str, str] = field(default_factory=dict)
    error: str = ""
    connected_at: float = 0.0
    ended_at: float = 0.0

    @property
    def routed(self) -> bool:
        """Served to its end by the engine's own decision (not the over-cap fail-open, not cut)."""
        return not self.error and self.variables.get("HOTLINE_ACTION") == "queue" \
            and "failopen" not in self.variables.get("HOTLINE_TAGS", "")


class Caller(asyncio.Protocol):
    def __init__(self, env: bytes, keys: list[str], done: asyncio.Future, *,
                 prompt_delay: Callable[[], float] | None = None, keep_commands: bool = False) -> None:
        self.env, self.keys, self.done = env, list(keys), done
        self.prompt_delay = prompt_delay
        self.keep_commands = keep_commands
        self.result = CallResult()
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport) -> None:
        self.transport = transport
        self.result.connected_at = time.perf_counter()
        transport.write(self.env)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while (end := self.buffer.find(b"\n")) >= 0:
            line, self.buffer = self.buffer[:end], self.buffer[end + 1:]
            reply = self._reply(line)
            if self.prompt_delay is not None and line.startswith(PROMPTS):
                asyncio.get_running_loop().call_later(self.prompt_delay(), self._write, reply)
            else:
                self._write(reply)

    def _write(self, reply: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(reply)

    def _reply(self, line: bytes) -> bytes:
        if self.keep_commands:
            self.result.commands.append(line)
        else:
            self.result.commands.append(b"")
        if line.startswith(b"SET VARIABLE "):
            name, _, value = line[13:].decode().partition(" ")
            self.result.variables[name] = value
            return b"200 result=1\n"
        if line.startswith(KEYED):
            key = self.keys.pop(0) if self.keys else "timeout"
            code = 0 if key == "timeout" else ord(key)
            return b"200 result=%d endpos=24000\n" % code
        if line.startswith(PROMPTS):
            return b"200 result=0 endpos=18000\n"
        return b"200 result=0\n"

    def connection_lost(self, exc) -> None:
        self.result.ended_at = time.perf_counter()
        if exc is not None:
            self.result.error = f"{type(exc).__name__}: {exc}"
        if not self.done.done():
            self.done.set_result(self.result)


async def call(port: int, dialed: str, keys: list[str], caller: str, *, timeout: float = 30.0,
               prompt_delay: Callable[[], float] | None = None, keep_commands: bool = False) -> CallResult:
    loop = asyncio.get_running_loop()
    done: asyncio.Future = loop.create_future()
    env = env_block(dialed, caller, port)
    try:
        transport, _ = await loop.create_connection(
            lambda: Caller(env, keys, done, prompt_delay=prompt_delay, keep_commands=keep_commands),
            "127.0.0.1", port)
    except OSError as exc:
        return CallResult(error=f"connect: {exc}")
    try:
        return await asyncio.wait_for(done, timeout)
    except asyncio.TimeoutError:
        transport.abort()
        return CallResult(error="timeout")


def callers(seed: int) -> Callable[[], str]:
    """Mobile numbers from a pool of 200,000: a caller repeats rarely, as in a day's traffic (abuse rule quiet)."""
    rng = random.Random(seed)
    return lambda: f"139{rng.randrange(200_000):08d}"
