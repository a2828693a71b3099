"""An Asterisk 22 stand-in for FastAGI: the caller's side of a call, faithful to the recorded transcripts.

`AsteriskChannel` is the sans-I/O core: one command line in, Asterisk's exact reply bytes out (the replies in
../shared/asterisk/fastagi-*.txt are the truth; tests/test_emulator_*.py replays them). `place_call()` is the
asyncio edge: it connects to a FastAGI server like Asterisk's AGI() does, sends the agi_* block, answers each
command, plays a scripted caller (key presses, timeouts, a hang-up) and returns a `CallTranscript`.

Caller script entries: "1" / "12#" (keys), "timeout" (the caller presses nothing), "hangup".

End of a session, as recorded (fastagi-emergency-invite.txt, fastagi-engine-stall*.txt): when the engine closes,
Asterisk writes `HANGUP\n`, then EOF. `exit_on_hangup=True` is the generated dialplan's AGIEXITONHANGUP=yes: at
a hang-up (or the line's engine timeout, `engine_timeout`) Asterisk writes `HANGUP\n` twice and closes at once,
so nothing the engine sends afterwards reaches the channel. Without it (res_agi's default) one `HANGUP\n` comes
and the dead channel keeps answering until the engine closes.
"""
from __future__ import annotations

import asyncio
import inspect
import itertools
import os
import re
import time
import zlib
from dataclasses import dataclass, field
from typing import Callable, Iterable, Mapping

from ivr.agi.codec import MAX_LINE_BYTES, split_app_args, split_args
from routing.privacy import mask_number

DEAD_REPLY = b"511 Command Not Permitted on a dead channel or intercept routine\n"
UNKNOWN_REPLY = b"510 Invalid or unknown command\n"
HANGUP_LINE = b"HANGUP\n"
USAGE = {
    "GET DATA": "Stream the given <replaceable>file</replaceable>, and receive DTMF data.\n"
                "Returns the digits received from the channel at the other end.",
}
KNOWN_SAMPLES = {"hello-world": 11234, "beep": 2760}     # endpos Asterisk reported for these files
AFTER_PROMPT = "+"   # a script entry "+2": key 2 pressed after GET OPTION's prompt ended, in its wait for a key
# Commands Asterisk 22 still runs on a dead channel (NOTES.md); every other known command gets 511 there.
DEAD_OK = {"GET VARIABLE", "GET FULL VARIABLE", "SET VARIABLE", "VERBOSE", "EXEC", "DATABASE PUT", "DATABASE GET",
           "DATABASE DEL", "NOOP"}


def prompt_samples(file: str) -> int:
    """endpos of a fully played prompt (8 kHz samples); deterministic for any file name."""
    return KNOWN_SAMPLES.get(file, 8000 + zlib.crc32(file.encode()) % 24000)


def asterisk_env(*, dialed: str, caller: str | None = "4951234567", caller_name: str = "Probe Caller",
                 uniqueid: str = "1795698853.1", script: str = "route", host: str = "127.0.0.1", port: int = 4573,
                 args: Iterable[str] | None = None, channel: str | None = None, language: str = "en",
                 dnid: str = "unknown") -> dict[str, str]:
    """The agi_* block Asterisk 22 sends for AGI(agi://host:port/script,arg1,...), in its order (no prefix)."""
    chan = channel or f"Local/{dialed}@from-pstn-00000000;2"
    env = {
        "network": "yes", "network_script": script, "request": f"agi://{host}:{port}/{script}",
        "channel": chan, "language": language, "type": chan.split("/", 1)[0], "uniqueid": uniqueid,
        "version": "22.10.1", "callerid": caller or "unknown", "calleridname": caller_name or "unknown",
        "callingpres": "0", "callingani2": "0", "callington": "0", "callingtns": "0", "dnid": dnid,
        "rdnis": "unknown", "context": "from-pstn", "extension": dialed, "priority": "2", "enhanced": "0.0",
        "accountcode": "", "threadid": "140144823973568",
    }
    for n, arg in enumerate(args if args is not None else [dialed], start=1):
        env[f"arg_{n}"] = arg
    return env


def env_block(env: Mapping[str, str]) -> bytes:
    return "".join(f"agi_{k}: {v}\n" for k, v in env.items()).encode("utf-8") + b"\n"


@dataclass
class CallTranscript:
    """What happened on the emulated channel, in the caller's terms."""

    env: dict[str, str]
    exchanges: list[tuple[str, str]] = field(default_factory=list)   # (command line, reply text)
    heard: list[str] = field(default_factory=list)                   # prompts played (file names, digits said)
    pressed: list[str] = field(default_factory=list)                 # keys the caller pressed, "timeout"
    variables: dict[str, str] = field(default_factory=dict)          # channel variables at the end
    executed: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)
    hungup: bool = False                                             # the caller hung up during the IVR
    timed_out: bool = False                                          # TIMEOUT(absolute) ended the engine step
    closed_by: str = ""     # "server" (the engine closed), "asterisk" (AGIEXITONHANGUP), "timeout", "error"
    error: str = ""
    command_failed: bool = False     # a command failed on a live channel (a sound that cannot be opened)

    @property
    def agi_status(self) -> str:
        """AGISTATUS as res_agi sets it when the session ends: a failed command on a live channel makes it
        FAILURE even though the session went on (run_agi keeps the failure and continues)."""
        if self.hungup or self.timed_out:
            return "HANGUP"
        if self.closed_by == "error" and not self.exchanges:
            return "FAILURE"            # could not connect
        return "FAILURE" if self.command_failed else "SUCCESS"

    @property
    def destination(self) -> str:
        """Where the dialplan will send the call after AGI() returns (what the generated dialplan reads)."""
        action = self.variables.get("HOTLINE_ACTION", "")
        target = self.variables.get("HOTLINE_TARGET", "")
        if self.hungup:
            return "caller hung up"
        if self.timed_out:      # the dialplan's T extension: a decision already set stands, else fail open
            return (f"engine timeout: T carries out {action} {target}".rstrip() if action
                    else "engine timeout (dialplan T fails open)")
        if not action:
            return "no decision (dialplan fails open to queue general-12345)"
        if action == "dial":
            return f"dial trunk {target}"
        if action == "queue":
            return f"queue {target}"
        if action == "callback":
            return f"callback request for queue {target} ({self.variables.get('HOTLINE_CALLBACK', '')})"
        return action

    def render(self) -> str:
        lines = [f"call to {self.env.get('extension')} from {mask_number(self.env.get('callerid'))} "
                 f"(uniqueid {self.env.get('uniqueid')})"]
        for cmd, reply in self.exchanges:
            lines.append(f"  > {cmd}")
            lines.append(f"  < {reply}")
        lines.append("heard:   " + (", ".join(self.heard) or "-"))
        lines.append("pressed: " + (", ".join(self.pressed) or "-"))
        for key in sorted(self.variables):
            if key.startswith("HOTLINE_") or key.startswith("CALLERID"):
                lines.append(f"  {key} = {self.variables[key]}")
        lines.append("result:  " + self.destination + (f"  [error: {self.error}]" if self.error else ""))
        return "\n".join(lines)


class AsteriskChannel:
    """One channel in AGI, sans-I/O: `handle(line)` returns Asterisk's reply bytes for one command line.

    The caller hangs up on script entry "hangup", or at command index `hangup_at`: during a prompt/input
    command that command gets `200 result=-1`; during a quick one (SET VARIABLE, ...) it completes normally.
    Either way `hangup_pending` becomes True (the driver sends the lone HANGUP line ~40 ms later) and the
    channel is dead from then on: 511 for channel commands, 200 for the others.
    """

    def __init__(self, env: Mapping[str, str], dtmf: Iterable[str] = (), *, hangup_at: int | None = None,
                 variables: Mapping[str, str] | None = None, missing_sounds: Iterable[str] = (),
                 sounds: Mapping[str, int] | None = None) -> None:
        self.env = dict(env)
        self.missing_sounds = frozenset(missing_sounds)   # files Asterisk cannot open (not installed)
        self.sounds = dict(sounds or {})                  # samples of the installed files; else prompt_samples()
        self.script = list(dtmf)
        self.hangup_at = hangup_at
        self.dead = False
        self.closed = False          # Asterisk left AGI (AGIEXITONHANGUP): nothing is answered any more
        self.hangup_pending = False
        self.count = 0
        self.database: dict[tuple[str, str], str] = {}
        self.t = CallTranscript(env=self.env)
        self.t.variables.update(variables or {})

    def _samples(self, file: str) -> int:
        return self.sounds.get(file) or prompt_samples(file)

    # -- caller behaviour
    def _next_entry(self) -> str | None:
        return self.script.pop(0) if self.script else None

    def _hang_up(self, command: str | None = None) -> bytes:
        self.dead = self.hangup_pending = self.t.hungup = True
        self.t.pressed.append("hangup")
        if command in ("STREAM FILE", "GET OPTION"):   # res_agi prints where the prompt stopped
            return b"200 result=-1 endpos=0\n"
        return b"200 result=-1\n"

    def expire(self) -> None:
        """TIMEOUT(absolute) fired with no command pending: the channel turns dead (res_agi sends HANGUP)."""
        self.dead = self.t.timed_out = True

    def end_of_session(self) -> bytes:
        """What res_agi writes when the engine closes its side (unless AGISIGHUP=no), before EOF."""
        return HANGUP_LINE

    # -- the command table
    def handle(self, line: str) -> bytes:
        if self.closed:                          # written to a socket Asterisk has closed: no reply
            self.t.exchanges.append((line, "(EOF)"))
            return b""
        index, self.count = self.count, self.count + 1
        words = split_args(line)
        name, args = _command_name(words)
        reply = self._dispatch(name, args, index)
        self.t.exchanges.append((line, reply.decode("utf-8", "replace").rstrip("\n").replace("\n", " | ")))
        return reply

    def _dispatch(self, name: str | None, args: list[str], index: int) -> bytes:
        if name is None:
            return UNKNOWN_REPLY
        if self.dead and name not in DEAD_OK:
            return DEAD_REPLY
        handler = getattr(self, "_cmd_" + name.replace(" ", "_").lower())
        try:
            inspect.signature(handler).bind(*args)
        except TypeError:                      # wrong number of arguments: Asterisk's usage block
            return _usage(name)
        if not self.dead and self.hangup_at is not None and index >= self.hangup_at:
            if name in ("STREAM FILE", "GET DATA", "GET OPTION", "SAY DIGITS", "EXEC", "ANSWER"):
                return self._hang_up(name)        # during the command: it returns result=-1
            reply = handler(*args)                # right after a quick command: it completed, then HANGUP
            self._hang_up()
            return reply
        return handler(*args)

    def _cmd_answer(self) -> bytes:
        return b"200 result=0\n"

    def _cmd_hangup(self, channel: str | None = None) -> bytes:
        self.dead = self.hangup_pending = True
        return b"200 result=1\n"

    def _cmd_channel_status(self, channel: str | None = None) -> bytes:
        return b"200 result=6\n"

    def _cmd_noop(self, *text: str) -> bytes:
        return b"200 result=0\n"

    def _cmd_verbose(self, message: str, level: str = "1") -> bytes:
        return b"200 result=1\n"

    def _cmd_set_variable(self, name: str, value: str) -> bytes:
        self.t.variables[name] = value
        if name == "CALLERID(name)":
            self.env["calleridname"] = value
        return b"200 result=1\n"

    def _cmd_get_variable(self, name: str) -> bytes:
        value = self._lookup(name)
        return b"200 result=0\n" if value is None else f"200 result=1 ({value})\n".encode()

    def _cmd_get_full_variable(self, expression: str, channel: str | None = None) -> bytes:
        text = re.sub(r"\$\{([^}]*)\}", lambda m: self._lookup(m.group(1)) or "", expression)
        return f"200 result=1 ({text})\n".encode()

    def _lookup(self, name: str) -> str | None:
        builtin = {"CALLERID(num)": self.env.get("callerid"), "CALLERID(name)": self.env.get("calleridname"),
                   "CHANNEL": self.env.get("channel"), "UNIQUEID": self.env.get("uniqueid"),
                   "EXTEN": self.env.get("extension"), "CHANNEL(language)": self.env.get("language")}
        if name in self.t.variables:
            return self.t.variables[name]
        return builtin.get(name)

    def _cmd_database_put(self, family: str, key: str, value: str) -> bytes:
        self.database[(family, key)] = value
        return b"200 result=1\n"

    def _cmd_database_get(self, family: str, key: str) -> bytes:
        value = self.database.get((family, key))
        return b"200 result=0\n" if value is None else f"200 result=1 ({value})\n".encode()

    def _cmd_database_del(self, family: str, key: str) -> bytes:
        return b"200 result=1\n" if self.database.pop((family, key), None) is not None else b"200 result=0\n"

    def _cmd_exec(self, application: str, data: str = "") -> bytes:
        args = tuple(split_app_args(data)) if data else ()
        self.t.executed.append((application, args))
        if application.lower() in ("playback", "background") and args:
            self.t.heard.extend(a for a in args[0].split("&") if a)
        return b"200 result=0\n"                 # on a dead channel too: Asterisk 22 says 0 though the app failed

    def _unplayable(self, file: str, reply: bytes) -> bytes | None:
        """res_agi's STREAM FILE and GET OPTION on a sound they cannot open: `200 result=-1 endpos=N` on a live
        channel, and the command returns RESULT_FAILURE, so AGISTATUS ends FAILURE (the session goes on)."""
        if file not in self.missing_sounds:
            return None
        self.t.command_failed = True
        self.t.heard.append(f"(missing {file})")
        return reply

    def _cmd_stream_file(self, file: str, escape: str, offset: str | None = None) -> bytes:
        missing = self._unplayable(file, f"200 result=-1 endpos={int(offset or 0)}\n".encode())
        if missing:
            return missing
        self.t.heard.append(file)
        samples = self._samples(file)
        key = self._barge_in(escape)
        if key == "hangup":
            return self._hang_up("STREAM FILE")
        if key:
            return f"200 result={ord(key)} endpos={samples // 3}\n".encode()
        return f"200 result=0 endpos={samples}\n".encode()

    def _cmd_say_digits(self, digits: str, escape: str) -> bytes:
        self.t.heard.append("digits:" + digits)
        key = self._barge_in(escape)
        if key == "hangup":
            return self._hang_up()
        return f"200 result={ord(key)}\n".encode() if key else b"200 result=0\n"

    def _barge_in(self, escape: str) -> str | None:
        """A key pressed during a prompt interrupts it only if it is an escape digit; hang-ups always do."""
        nxt = self.script[0] if self.script else None
        if nxt == "hangup":
            self.script.pop(0)
            return "hangup"
        if nxt and nxt not in ("timeout",) and nxt[0] in escape:
            entry = self.script.pop(0)
            self.t.pressed.append(entry[0])
            if len(entry) > 1:
                self.script.insert(0, entry[1:])
            return entry[0]
        return None

    def _cmd_get_option(self, file: str, escape: str, timeout: str | None = None) -> bytes:
        missing = self._unplayable(file, b"200 result=-1 endpos=0\n")
        if missing:
            return missing
        self.t.heard.append(file)
        samples = self._samples(file)
        while True:
            entry = self._next_entry()
            if entry is None or entry == "timeout":
                self.t.pressed.append("timeout")
                return f"200 result=0 endpos={samples}\n".encode()
            if entry == "hangup":
                return self._hang_up("GET OPTION")
            after_prompt = entry.startswith(AFTER_PROMPT) and len(entry) > 1
            key, rest = (entry[1], entry[2:]) if after_prompt else (entry[0], entry[1:])
            if rest:
                self.script.insert(0, rest)
            self.t.pressed.append(key)
            if key in escape:
                # res_agi reports where playback stood: all of it when the key came in the wait that follows
                return f"200 result={ord(key)} endpos={samples if after_prompt else samples // 2}\n".encode()
            # a key that is no escape digit is ignored; Asterisk keeps waiting

    def _cmd_get_data(self, file: str, timeout: str | None = None, max_digits: str | None = None) -> bytes:
        self.t.heard.append(file)
        limit = int(max_digits) if max_digits and int(max_digits) > 0 else 1024
        entry = self._next_entry()
        if entry == "hangup":
            return self._hang_up()
        if entry is None or entry == "timeout":
            self.t.pressed.append("timeout")
            return b"200 result= (timeout)\n"
        digits, ended = "", False
        for i, key in enumerate(entry):
            if key == "#":
                ended = True
                rest = entry[i + 1:]
                break
            digits += key
            if len(digits) >= limit:
                ended = True
                rest = entry[i + 1:]
                break
        else:
            rest = ""
        if rest:
            self.script.insert(0, rest)
        self.t.pressed.append(digits + ("#" if "#" in entry and len(digits) < limit else ""))
        return f"200 result={digits}\n".encode() if ended else f"200 result={digits} (timeout)\n".encode()


_COMMANDS = sorted(["ANSWER", "HANGUP", "CHANNEL STATUS", "NOOP", "VERBOSE", "SET VARIABLE", "GET VARIABLE",
                    "GET FULL VARIABLE", "DATABASE PUT", "DATABASE GET", "DATABASE DEL", "EXEC", "STREAM FILE",
                    "SAY DIGITS", "GET OPTION", "GET DATA"], key=lambda c: -len(c.split()))


def _command_name(words: list[str]) -> tuple[str | None, list[str]]:
    upper = [w.upper() for w in words]
    for name in _COMMANDS:
        n = len(name.split())
        if upper[:n] == name.split():
            return name, words[n:]
    return None, words


def _usage(name: str) -> bytes:
    text = USAGE.get(name, f"Usage: {name} <replaceable>arguments</replaceable>")
    return (b"520-Invalid command syntax.  Proper usage follows:\n" + text.encode() + b"\n"
            b"520 End of proper usage.\n")


# ---------------------------------------------------------------- the asyncio edge

_UNIQUEIDS = itertools.count(1)


async def place_call(host: str, port: int, *, dialed: str, caller: str | None = "4951234567",
                     caller_name: str = "Probe Caller", dtmf: Iterable[str] = (), hangup_at: int | None = None,
                     variables: Mapping[str, str] | None = None, env: Mapping[str, str] | None = None,
                     uniqueid: str | None = None, script: str = "route",
                     hangup_notice_delay: float = 0.04, timeout: float = 10.0,
                     reply_delay: Callable[[str], float] | None = None,
                     missing_sounds: Iterable[str] = (), exit_on_hangup: bool = False,
                     engine_timeout: float | None = None) -> CallTranscript:
    """Connect like Asterisk's AGI(agi://host:port/script,dialed), play the scripted caller, return what happened.

    `reply_delay(command_line)` lets a load test hold the session (e.g. a prompt playing for 1-3 s).
    `timeout` bounds the whole call. `exit_on_hangup`: AGIEXITONHANGUP=yes (the generated dialplan).
    `engine_timeout`: TIMEOUT(absolute) of the engine step, seconds from connect; it fires while Asterisk
    waits for the next command (not during a reply delay).
    """
    if uniqueid is None:     # Asterisk's form, <epoch>.<sequence>; unique across emulator processes too
        uniqueid = f"{int(time.time())}.{os.getpid()}{next(_UNIQUEIDS):05d}"
    env = dict(env) if env is not None else asterisk_env(dialed=dialed, caller=caller, caller_name=caller_name,
                                                         uniqueid=uniqueid, script=script, host=host, port=port)
    channel = AsteriskChannel(env, dtmf, hangup_at=hangup_at, variables=variables, missing_sounds=missing_sounds)
    try:
        await asyncio.wait_for(_drive(host, port, channel, hangup_notice_delay, reply_delay, exit_on_hangup,
                                      engine_timeout), timeout)
    except asyncio.TimeoutError:
        channel.t.closed_by = "timeout"
        channel.t.error = f"no end of session within {timeout} s"
    except (ConnectionError, OSError) as exc:
        channel.t.error = f"{type(exc).__name__}: {exc}"
        channel.t.closed_by = channel.t.closed_by or "error"
    return channel.t


async def _drive(host: str, port: int, channel: AsteriskChannel, notice_delay: float,
                 reply_delay: Callable[[str], float] | None, exit_on_hangup: bool = False,
                 engine_timeout: float | None = None) -> None:
    loop = asyncio.get_running_loop()
    reader, writer = await asyncio.open_connection(host, port, limit=MAX_LINE_BYTES)
    deadline = None if engine_timeout is None else loop.time() + engine_timeout
    notice: asyncio.Task | None = None

    def leave_agi() -> None:           # AGIEXITONHANGUP: HANGUP at the hang-up, HANGUP at the end, then EOF
        writer.write(HANGUP_LINE + channel.end_of_session())
        channel.closed = True
        channel.t.closed_by = "asterisk"

    try:
        writer.write(env_block(channel.env))
        await writer.drain()
        while True:
            try:
                left = None if deadline is None else max(0.0, deadline - loop.time())
                raw = await asyncio.wait_for(reader.readline(), left)
            except asyncio.TimeoutError:
                deadline = None
                channel.expire()
                if exit_on_hangup:
                    leave_agi()
                    return
                writer.write(HANGUP_LINE)     # the lone HANGUP; the dead channel waits for the engine
                await writer.drain()
                continue
            if not raw:
                channel.t.closed_by = "server"
                writer.write(channel.end_of_session())
                return
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            if reply_delay is not None:
                delay = reply_delay(line)
                if delay > 0:
                    await asyncio.sleep(delay)
            was_pending = channel.hangup_pending
            writer.write(channel.handle(line))
            if channel.hangup_pending and not was_pending:
                if exit_on_hangup:
                    leave_agi()
                    return
                notice = asyncio.create_task(_send_later(writer, HANGUP_LINE, notice_delay))
            await writer.drain()
    finally:
        if notice is not None:
            notice.cancel()
        try:
            await writer.drain()
        except (ConnectionError, OSError):
            pass
        writer.close()
        try:
            await writer.wait_closed()
        except (ConnectionError, OSError):
            pass


async def _send_later(writer: asyncio.StreamWriter, data: bytes, delay: float) -> None:
    await asyncio.sleep(delay)
    if not writer.is_closing():
        writer.write(data)
