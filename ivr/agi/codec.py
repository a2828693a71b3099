"""AGI wire format, sans-I/O: bytes in -> env dict / Response values out; Command values in -> bytes out.

No sockets, no clock. The FastAGI server, the classic adapter and the Asterisk emulator all share it.

Quoting follows Asterisk's own argument splitter (res/res_agi.c `parse_args`): words split on space/tab,
a double quote toggles quoting, a backslash makes the next character literal. A CR/LF/NUL inside a value
would end our command early and let the rest run as a second AGI command, so they are replaced by a space
before anything else: what we send is always exactly one line per command.
"""
from __future__ import annotations

import re
from typing import Iterable

from ivr.agi.commands import (
    HANGUP_NOTICE, Answer, ChannelStatus, Command, Exec, GetData, GetFullVariable, GetOption, GetVariable,
    Hangup, Response, SayDigits, SetVariable, StreamFile, Verbose,
)

MAX_ENV_BYTES = 16 * 1024       # a real env block is ~700 bytes; anything this big is not Asterisk
MAX_LINE_BYTES = 64 * 1024      # a GET VARIABLE value can be long, never this long


class ProtocolError(ValueError):
    """The peer sent bytes that are not AGI. The session is dropped; nothing else is affected."""


# ---------------------------------------------------------------- environment block

def parse_env_lines(lines: Iterable[str]) -> dict[str, str]:
    """`agi_key: value` lines (no terminating blank line) -> {"key": "value"}; the query string stays."""
    env: dict[str, str] = {}
    for line in lines:
        if line.endswith("\r"):
            line = line[:-1]
        key, sep, value = line.partition(":")
        if not sep or key[:4] != "agi_" or len(key) == 4 or " " in key:
            raise ProtocolError(f"not an AGI environment line: {line[:80]!r}")
        env[key[4:]] = value[1:] if value[:1] == " " else value
    return env


# A block of well-formed lines, and one such line: what parse_env_lines accepts, read by two regex passes
# instead of a Python step per line (some 25 lines per call, on the call path). Anything else (a bad line, a
# line of only CRs) goes the line-by-line way, which says what is wrong or skips it, exactly as before.
_ENV_BLOCK = re.compile(r"(?:agi_[^: \n]+:[^\n]*\n)*agi_[^: \n]+:[^\n]*")
_ENV_LINE = re.compile(r"^agi_([^: \n]+): ?(.*?)\r?$", re.MULTILINE)


def parse_env_text(text: str) -> dict[str, str]:
    """The block's text (its lines up to, not including, the blank line) -> {"key": "value"}."""
    if _ENV_BLOCK.fullmatch(text):
        return dict(_ENV_LINE.findall(text))
    return parse_env_lines(line for line in text.split("\n") if line.rstrip("\r"))


class EnvParser:
    """Accumulates bytes until the blank line that ends the agi_* block."""

    def __init__(self, max_bytes: int = MAX_ENV_BYTES) -> None:
        self._buf = bytearray()
        self._max = max_bytes
        self.env: dict[str, str] | None = None
        self.rest = b""                       # bytes after the block (Asterisk sends none; kept anyway)

    def feed(self, data: bytes) -> dict[str, str] | None:
        if self.env is not None:
            self.rest += data
            return self.env
        self._buf += data
        end = _find_blank_line(self._buf)
        if end is None:
            if len(self._buf) > self._max:
                raise ProtocolError(f"environment block longer than {self._max} bytes")
            return None
        block, body_end = bytes(self._buf[:end[0]]), end[1]
        self.rest = bytes(self._buf[body_end:])
        self._buf = bytearray()
        self.env = parse_env_text(block.decode("utf-8", errors="replace"))
        return self.env


def _find_blank_line(buf: bytearray) -> tuple[int, int] | None:
    """(end of the block's last line, index after the blank line), accepting \\n or \\r\\n."""
    if buf.startswith(b"\n"):
        return 0, 1
    if buf.startswith(b"\r\n"):
        return 0, 2
    for sep in (b"\n\n", b"\n\r\n"):
        at = buf.find(sep)
        if at >= 0:
            return at, at + len(sep)
    return None


# res_agi's setup_env() sends these for every call, FastAGI and classic alike (and `agi_network: yes` first on
# FastAGI); a block without them is not a call Asterisk handed us, whatever else it holds.
CALL_ENV_KEYS = ("request", "channel", "uniqueid")
MAX_UNIQUEID = 150              # AST_MAX_UNIQUEID
MAX_CHANNEL_NAME = 512          # AST_CHANNEL_NAME is 80; Local/ names grow with the extension and context
MAX_ENV_KEYS = 160              # ~22 fixed keys + agi_arg_1..agi_arg_128 (res_agi MAX_ARGS)
_PRINTABLE_ID = re.compile(r"[!-~]+")


def call_env_problem(env: dict[str, str], *, network: bool) -> str | None:
    """Why `env` is not the environment block of a real call (a short reason), or None when it is plausible.

    An empty block (a peer sending just a newline), a block without agi_request/agi_channel/agi_uniqueid,
    a uniqueid Asterisk cannot have produced, or absurd sizes: refused before the session counts as a call.
    """
    if not env:
        return "empty environment block"
    if network and env.get("network") != "yes":
        return "no agi_network: yes (Asterisk sends it first on every FastAGI connection)"
    missing = [f"agi_{key}" for key in CALL_ENV_KEYS if not env.get(key, "").strip()]
    if missing:
        return f"missing {', '.join(missing)}"
    if len(env) > MAX_ENV_KEYS:
        return f"{len(env)} environment keys (at most {MAX_ENV_KEYS})"
    uniqueid = env["uniqueid"]
    if len(uniqueid) > MAX_UNIQUEID or not _PRINTABLE_ID.fullmatch(uniqueid):
        return "agi_uniqueid is not an Asterisk unique id (1..150 printable characters, no blanks)"
    if len(env["channel"]) > MAX_CHANNEL_NAME:
        return f"agi_channel longer than {MAX_CHANNEL_NAME} characters"
    return None


def parse_env(data: bytes) -> dict[str, str]:
    """A complete env block (up to the first blank line, or all of `data` if it has none) -> dict."""
    lines = []
    for line in data.decode("utf-8", errors="replace").split("\n"):
        if not line.rstrip("\r"):
            if lines:
                break
            continue
        lines.append(line)
    return parse_env_lines(lines)


# ---------------------------------------------------------------- commands -> bytes

_LINE_BREAKS = re.compile(r"[\r\n\x00]")
_NEEDS_QUOTES = re.compile(r'[\s"\\]')
_APP_SPECIAL = re.compile(r'([\\,"()\[\]])')


def clean(value: object) -> str:
    """One line, always: CR, LF and NUL become a space (a caller name must never become a command)."""
    return _LINE_BREAKS.sub(" ", str(value))


def quote(value: object, *, force: bool = False) -> str:
    """One AGI argument as parse_args reads it back: quoted when empty or holding blanks, quotes, backslashes."""
    text = clean(value)
    if not force and text and not _NEEDS_QUOTES.search(text):
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def app_args(args: Iterable[object]) -> str:
    """Arguments of a dialplan application (EXEC): joined with ',' as the application splits them.

    Each literal `\\ , " ( ) [ ]` gets a backslash (ast_app_separate_args drops it and keeps the character),
    and `${`/`$[` lose their `$`: EXEC substitutes variables, and caller-controlled text must not run
    functions.
    """
    parts = []
    for arg in args:
        text = clean(arg).replace("${", "{").replace("$[", "[")
        parts.append(_APP_SPECIAL.sub(r"\\\1", text))
    return ",".join(parts)


def format_command(cmd: Command) -> bytes:
    """The command as sent: its line, newline, UTF-8 (the cacheable ones kept as bytes, see command_line)."""
    data = _WIRE.get(cmd)
    if data is None:
        data = _kept(_WIRE, cmd, (_command_line(cmd) + "\n").encode("utf-8"))
    return data


_WIRE: dict[Command, bytes] = {}          # format_command's (FastAGI)
_FORMATTED: dict[Command, str] = {}       # command_line's (classic AGI, log text)
_FORMATTED_MAX = 4096


def command_line(cmd: Command) -> str:
    """The command as one text line without its newline.

    Most commands repeat across calls (menu prompts, HOTLINE_* values), so their text is kept in a bounded
    cache; commands that may carry a caller's name or number are formatted afresh and never kept.
    """
    line = _FORMATTED.get(cmd)
    if line is None:
        line = _kept(_FORMATTED, cmd, _command_line(cmd))
    return line


def _kept(cache: dict, cmd: Command, value):
    """`value`, kept in `cache` for `cmd` if it may be (see _cacheable) and the cache has room."""
    if len(cache) < _FORMATTED_MAX and _cacheable(cmd):
        cache[cmd] = value
    return value


def _cacheable(cmd: Command) -> bool:
    if isinstance(cmd, SetVariable):
        return cmd.name.startswith("HOTLINE_") and cmd.name != "HOTLINE_CALLBACK"
    return not isinstance(cmd, (Verbose, Exec, SayDigits, GetFullVariable))


def _command_line(cmd: Command) -> str:
    if isinstance(cmd, StreamFile):
        return f"STREAM FILE {quote(cmd.file)} {quote(cmd.escape_digits)}"
    if isinstance(cmd, GetData):
        words = ["GET DATA", quote(cmd.file)]
        if cmd.timeout_ms is not None or cmd.max_digits is not None:
            words.append(str(int(cmd.timeout_ms or 0)))
        if cmd.max_digits is not None:
            words.append(str(int(cmd.max_digits)))
        return " ".join(words)
    if isinstance(cmd, GetOption):
        words = ["GET OPTION", quote(cmd.file), quote(cmd.escape_digits)]
        if cmd.timeout_ms is not None:
            words.append(str(int(cmd.timeout_ms)))
        return " ".join(words)
    if isinstance(cmd, SayDigits):
        return f"SAY DIGITS {quote(cmd.digits)} {quote(cmd.escape_digits)}"
    if isinstance(cmd, SetVariable):
        return f"SET VARIABLE {quote(cmd.name)} {quote(cmd.value)}"
    if isinstance(cmd, GetVariable):
        return f"GET VARIABLE {quote(cmd.name)}"
    if isinstance(cmd, GetFullVariable):
        return f"GET FULL VARIABLE {quote(cmd.expression)}"
    if isinstance(cmd, Exec):
        line = f"EXEC {quote(cmd.application)}"
        return f"{line} {quote(app_args(cmd.args), force=True)}" if cmd.args else line
    if isinstance(cmd, Verbose):
        return f"VERBOSE {quote(cmd.message, force=True)} {int(cmd.level)}"
    if isinstance(cmd, Answer):
        return "ANSWER"
    if isinstance(cmd, Hangup):
        return "HANGUP"
    if isinstance(cmd, ChannelStatus):
        return "CHANNEL STATUS"
    raise TypeError(f"no wire format for {type(cmd).__name__}")


def split_args(line: str) -> list[str]:
    """Asterisk's parse_args in Python: how Asterisk reads a command line back (used by the emulator)."""
    words: list[str] = []
    cur: list[str] | None = None
    quoted = escaped = False
    for ch in line:
        if ch == '"' and not escaped:
            quoted = not quoted
            if quoted and cur is None:
                cur = []
            continue
        if ch in " \t" and not quoted and not escaped:
            if cur is not None:
                words.append("".join(cur))
                cur = None
            continue
        if ch == "\\" and not escaped:
            escaped = True
            continue
        if cur is None:
            cur = []
        cur.append(ch)
        escaped = False
    if cur is not None:
        words.append("".join(cur))
    return words


def split_app_args(text: str) -> list[str]:
    """ast_app_separate_args (remove_chars) in Python: application arguments as the application sees them."""
    args, cur, depth, quoted, i = [], [], 0, False, 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            cur.append(text[i + 1])
            i += 2
            continue
        if ch == '"':
            quoted = not quoted
        elif ch in "([":
            depth += 1
            cur.append(ch)
        elif ch in ")]":
            depth = max(0, depth - 1)
            cur.append(ch)
        elif ch == "," and not quoted and depth == 0:
            args.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
        i += 1
    args.append("".join(cur))
    return args


# ---------------------------------------------------------------- bytes -> responses

_STATUS = re.compile(r"^(\d{3})([ -])(.*)$")
_ENDPOS = re.compile(r"^(.*?)\s*endpos=(-?\d+)$")


def result_text(resp: Response) -> str:
    """The raw token after `result=` (GET DATA digits keep leading zeros and `*` here); '' when absent."""
    m = re.search(r"result=(\S*)", resp.raw)
    return m.group(1) if m else ""


_PARSED: dict[str, Response] = {}
_PARSED_MAX = 1024


def parse_result_line(line: str) -> Response:
    """One complete single-line reply (200/510/511/... but not a 520 block) -> Response.

    Replies without a value ("200 result=1", "511 ...", "200 result=0 endpos=N") repeat endlessly and
    Responses are immutable, so those are parsed once (bounded cache). Lines with a value in parentheses or
    more than 3 result digits (GET DATA may carry a callback number) are never kept.
    """
    resp = _PARSED.get(line)
    if resp is not None:
        return resp
    resp = _parse_result_line(line)
    if len(_PARSED) < _PARSED_MAX and "(" not in line and len(line.partition("result=")[2].split(" ", 1)[0]) <= 3:
        _PARSED[line] = resp
    return resp


def _parse_result_line(line: str) -> Response:
    if line == "HANGUP":
        return HANGUP_NOTICE
    m = _STATUS.match(line)
    if not m:
        raise ProtocolError(f"not an AGI reply: {line[:80]!r}")
    code, text = int(m.group(1)), m.group(3)
    if code != 200:
        return Response(code=code, raw=line)
    if not text.startswith("result="):
        raise ProtocolError(f"200 reply without result=: {line[:80]!r}")
    token, _, tail = text[len("result="):].partition(" ")
    result = int(token) if re.fullmatch(r"-?\d+", token) else None
    endpos = None
    tail = tail.strip()
    em = _ENDPOS.match(tail)
    if em:
        tail, endpos = em.group(1), int(em.group(2))
    data = None
    if tail.startswith("(") and tail.endswith(")"):
        data = tail[1:-1]
    elif tail:
        data = tail          # e.g. "Trying..." or a future free-text suffix: kept, never dropped
    return Response(code=200, result=result, data=data, endpos=endpos, raw=line)


class ResponseParser:
    """Incremental reply parser: feed any split of the byte stream, get complete Responses in order.

    `100 Trying` lines are swallowed (the final line follows), a `520-` block is gathered up to its
    `520 End of proper usage.` line, and Asterisk's unsolicited `HANGUP` line comes out as
    commands.HANGUP_NOTICE so the driver can tell it apart from the answer to its pending command.
    """

    def __init__(self, max_line: int = MAX_LINE_BYTES) -> None:
        self._buf = bytearray()
        self._max = max_line
        self._usage: list[str] | None = None

    @property
    def idle(self) -> bool:
        """No partial line or usage block pending."""
        return not self._buf and self._usage is None

    def feed(self, data: bytes) -> list[Response]:
        if data and not self._buf and self._usage is None and data.find(b"\n") == len(data) - 1:
            # The usual case, one whole reply line per read: no buffer to keep.
            resp = self._line(data[:-1].rstrip(b"\r").decode("utf-8", errors="replace"))
            return [resp] if resp is not None else []
        self._buf += data
        out: list[Response] = []
        while True:
            nl = self._buf.find(b"\n")
            if nl < 0:
                if len(self._buf) > self._max:
                    raise ProtocolError(f"reply line longer than {self._max} bytes")
                return out
            raw = bytes(self._buf[:nl]).rstrip(b"\r")
            del self._buf[:nl + 1]
            resp = self._line(raw.decode("utf-8", errors="replace"))
            if resp is not None:
                out.append(resp)

    def _line(self, line: str) -> Response | None:
        if self._usage is not None:
            if line.startswith("520 "):
                usage, self._usage = self._usage, None
                return Response(code=520, usage="\n".join(usage[1:]), raw="\n".join(usage + [line]))
            self._usage.append(line)
            return None
        if line.startswith("520-"):
            self._usage = [line]
            return None
        if not line:
            return None                    # stray blank line: harmless, never a reply
        if line.startswith("100 ") or line.startswith("100-"):
            return None                    # "100 result=0 Trying...": the final line follows
        return parse_result_line(line)
