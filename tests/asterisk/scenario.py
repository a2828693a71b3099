"""Calls as small scripts for the coverage modules (test_lines, test_menus, test_engines): place a caller, press
keys when the engine listens, and collect what Asterisk did with the call. Keys are sent with AMI PlayDTMF on
the caller's phone half only once Asterisk has started the AGI command that listens (AGIExecStart): a key sent
between two AGI commands is read and dropped by res_agi, so fixed delays would make the tests flaky."""
from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass, field

from sqlalchemy import Table, create_engine, select

from tests.asterisk.harness import Ami, place_call, vars_after_engine

LISTEN = r"(GET OPTION|GET DATA) .*"


@dataclass
class Script:
    """One caller: the DID, the test instant (HOTLINE_AT, local time of the table) and the keys, one string per
    listening AGI command in order ("" lets that one time out)."""
    did: str
    at: str | None = None
    keys: tuple[str, ...] = ()
    caller: str = "13800138000"
    name: str = "Zhang"


@dataclass
class Result:
    tag: str
    vars: dict[str, str] = field(default_factory=dict)
    commands: list[str] = field(default_factory=list)     # AGI commands in order, as Asterisk ran them
    joins: list[dict[str, str]] = field(default_factory=list)
    dials: list[dict[str, str]] = field(default_factory=list)
    agi_started: float = 0.0                              # when Asterisk ran the engine's first command
    error: str = ""

    def sounds(self) -> list[str]:
        """Sounds the engine played (STREAM FILE, and the prompt of GET OPTION / GET DATA), in order."""
        out = []
        for command in self.commands:
            m = re.match(r"(STREAM FILE|GET OPTION|GET DATA) (\S+)", command)
            if m:
                out.append(m.group(2))
        return out


async def press(ami: Ami, tag: str, keys: str, duration_ms: int = 100) -> None:
    """The caller presses keys (sent on the ;1 half, so Asterisk hears them on the caller's ;2 channel)."""
    for key in keys:
        reply = await ami.action("PlayDTMF", Channel=f"ph{tag}", Digit=key, Duration=str(duration_ms))
        if reply.get("Response") != "Success":
            raise RuntimeError(f"PlayDTMF {key!r} refused: {reply}")


async def run_script(ami: Ami, script: Script, tag: str, timeout: float = 40) -> Result:
    """Place the call, press the keys, wait for the engine's answer; then the dialplan has 2 s to queue or dial."""
    result = Result(tag)
    variables = {"HOTLINE_AT": script.at} if script.at else None
    await place_call(ami, script.did, caller=script.caller, name=script.name, stay=60, variables=variables, tag=tag)
    try:
        for index, keys in enumerate(script.keys, start=1):
            await ami.wait("AGIExecStart", timeout=timeout, count=index, Uniqueid=re.escape(tag), Command=LISTEN)
            if keys:
                await press(ami, tag, keys)
        result.vars = await vars_after_engine(ami, tag, timeout=timeout)
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline and not collect(ami, result):
            await asyncio.sleep(0.1)
    except (AssertionError, asyncio.TimeoutError, RuntimeError) as exc:
        result.error = str(exc)
    collect(ami, result)
    return result


def collect(ami: Ami, result: Result) -> bool:
    """Fill the result from the events seen so far; True once the call reached a queue or a dial."""
    uid = re.escape(result.tag)
    started = ami.find("AGIExecStart", Uniqueid=uid)
    result.commands = [e["Command"] for e in started]
    result.agi_started = float(started[0]["_t"]) if started else 0.0
    result.joins = ami.find("QueueCallerJoin", Uniqueid=uid)
    result.dials = ami.find("DialBegin", Uniqueid=uid)
    return bool(result.joins or result.dials)


async def run_all(ami: Ami, scripts: dict[str, Script], prefix: str) -> dict[str, Result]:
    """Every script at once, each with its own tag (prefix + case number + a clock part, unique per PBX)."""
    stamp = time.monotonic_ns() % 10**8
    tags = {case: f"{prefix}{i:02d}x{stamp}" for i, case in enumerate(scripts)}
    results = await asyncio.gather(*(run_script(ami, s, tags[c]) for c, s in scripts.items()))
    return dict(zip(scripts, results))


async def hang_up(ami: Ami, results: dict[str, Result]) -> None:
    for result in results.values():
        await ami.action("Hangup", Channel=f"ph{result.tag}")


def dial_ends(ami: Ami, tag: str) -> list[dict[str, str]]:
    return ami.find("DialEnd", Uniqueid=re.escape(tag))


def records(db_url: str, table: Table, tags: list[str], timeout: float = 15) -> dict[str, dict]:
    """The engine's rows of these calls (written right after each AGI session, through its spool), by uniqueid."""
    db = create_engine(db_url)
    try:
        end = time.monotonic() + timeout
        while True:
            with db.connect() as conn:
                rows = {r["uniqueid"]: dict(r) for r in
                        conn.execute(select(table).where(table.c.uniqueid.in_(tags))).mappings()}
            if len(rows) == len(tags) or time.monotonic() > end:
                return rows
            time.sleep(0.2)
    finally:
        db.dispose()
