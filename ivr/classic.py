"""Classic AGI (a process per call, stdin/stdout) through pyst2, driving the same engine and session as FastAGI.

pyst2 0.5.1's `asterisk.agi.AGI` is wrapped here, and only here:
1. its constructor installs a process-wide SIGHUP handler and echoes the whole env block (the caller's
   number) to stderr, which Asterisk writes to its log. We install no handler unless asked (`main()` asks:
   Asterisk sends SIGHUP to a classic AGI on hang-up, and the default action would kill us before the
   fail-safe variables are set), our handler only records the hang-up, and nothing is echoed.
2. its reply parser raises ValueError on Asterisk's lone `HANGUP` line and AGIUnknownError on 511, and
   once SIGHUP came, every later command raises before it is sent (so the dialplan never gets the
   decision). Replies go through our ResponseParser: the HANGUP line is a notice, 511 a dead-channel reply.
3. `_quote` wraps a value in quotes without escaping anything, and `send_command` writes whatever it is
   given, newlines included. Commands are formatted by our codec (Asterisk's parse_args rules, one line
   per command, always).

Speed (issue 14): a process per call, so what it imports is most of its cost. The call path imports neither
structlog (ivr.calllog writes the same JSON lines), asyncio, panoramisk, pydantic, yaml nor SQLAlchemy: the
validated table comes from the compiled snapshot (routing.config_snapshot), the settings from the environment,
the switches through the plain DB-API. Only a call that must validate the files pays for the loaders.
tests/test_classic_imports.py keeps it that way.
"""
from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple

from asterisk.agi import AGI, AGIAppError, AGIHangup, AGIInvalidCommand, AGIUsageError

from ivr import calllog
from ivr.agi.codec import ProtocolError, ResponseParser, command_line, parse_env_lines, quote
from ivr.agi.commands import HANGUP_NOTICE, Command, Response

log = calllog.get_logger()
FAST_READ_LIMIT = 2 * 1024 * 1024            # under routing.yamlsource.MAX_FILE_BYTES: bigger files take the loaders' path


class ClassicClosed(ConnectionError):
    """Asterisk closed our stdin: the channel went on in the dialplan (or Asterisk is gone)."""


class ClassicChannel(AGI):
    """pyst2's AGI over binary streams, with our codec for what goes out and what comes back."""

    def __init__(self, stdin: BinaryIO, stdout: BinaryIO, stderr: Any = None, *,
                 install_sighup: bool = False) -> None:
        # AGI.__init__ is not called on purpose (see the module docstring, point 1).
        self.stdin, self.stdout = stdin, stdout
        self.stderr = stderr if stderr is not None else open(os.devnull, "w")
        self._got_sighup = False
        self.hangup_seen = False
        self.commands = 0
        self._parser = ResponseParser()
        self._ready: list[Response] = []
        if install_sighup:
            signal.signal(signal.SIGHUP, self._handle_sighup)
        self.env = self._read_env()

    def _read_env(self) -> dict[str, str]:
        lines = []
        while True:
            raw = self.stdin.readline()
            if not raw:
                raise ClassicClosed("EOF before the end of the AGI environment block")
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            if not line:
                return parse_env_lines(lines)
            lines.append(line)
            if len(lines) > 200:
                raise ProtocolError("AGI environment block without an end")

    def _handle_sighup(self, signum: int, frame: Any) -> None:
        self._got_sighup = True            # remembered only: dead-channel commands still go out
        self.hangup_seen = True

    def test_hangup(self) -> None:         # pyst2 raises here on every command after SIGHUP; we do not
        return None

    def _quote(self, string: Any) -> str:
        return quote(string, force=True)

    def send_command(self, command: str, *args: Any) -> None:
        text = " ".join([command.strip(), *(str(a) for a in args)]).strip()
        if "\n" in text or "\r" in text:
            raise ValueError("an AGI command is one line")
        try:
            self.stdout.write((text + "\n").encode("utf-8"))
            self.stdout.flush()
        except BrokenPipeError:             # AGIEXITONHANGUP: Asterisk left AGI and closed our pipes
            raise ClassicClosed("Asterisk closed stdout") from None

    def read_response(self) -> Response:
        """The reply to the pending command; HANGUP notices on the way are remembered, not returned."""
        while True:
            while self._ready:
                resp = self._ready.pop(0)
                if resp is HANGUP_NOTICE:
                    self.hangup_seen = True
                    continue
                return resp
            raw = self.stdin.readline()
            if not raw:
                raise ClassicClosed("Asterisk closed stdin")
            self._ready.extend(self._parser.feed(raw if raw.endswith(b"\n") else raw + b"\n"))

    def send(self, cmd: Command) -> Response:
        self.send_command(command_line(cmd))
        self.commands += 1
        return self.read_response()

    def get_result(self, stdin: Any = None) -> dict:
        """pyst2's API (agi.stream_file(), agi.get_variable(), ...) on top of our parser."""
        resp = self.read_response()
        if resp.hungup:
            raise AGIHangup(resp.raw or "channel hung up")
        if resp.code == 510:
            raise AGIInvalidCommand(resp.raw)
        if resp.code == 520:
            raise AGIUsageError(resp.usage or resp.raw)
        if resp.code != 200:
            raise AGIAppError(resp.raw)
        result = {"result": ("" if resp.result is None else str(resp.result), resp.data or "")}
        if resp.endpos is not None:
            result["endpos"] = (str(resp.endpos), "")
        return result


def main(argv: list[str] | None = None, stdin: BinaryIO | None = None, stdout: BinaryIO | None = None) -> int:
    """`python -m ivr.classic [dialed]`: one call on stdin/stdout. Always exits 0 so AGISTATUS is SUCCESS
    whenever the decision (or the fail-open variables) reached the channel."""
    from ivr.engine import call_context

    with calllog.json_lines(sys.stderr, os.environ.get("HOTLINE_LOG_LEVEL", "info")):
        channel = ClassicChannel(stdin or sys.stdin.buffer, stdout or sys.stdout.buffer, install_sighup=True)
        with calllog.bound_contextvars(**call_context(channel.env)):     # as the daemon binds a call
            return _run(channel)


class _Fixed:
    """The one (table, menus) of this process: what Engine reads of a ConfigHolder (a process per call never
    reloads, and ConfigHolder's reload machinery would cost imports)."""

    def __init__(self, config: Any) -> None:
        self.current = config


def _run(channel: ClassicChannel) -> int:
    from ivr.engine import Engine, fail_open_commands

    try:
        paths = classic_paths()
        config = load_validated(paths)
    except Exception as exc:
        log.error("classic.config_unusable", error=f"{type(exc).__name__}: {str(exc)[:500]}")
        for cmd in fail_open_commands(channel.env):
            channel.send(cmd)
        return 0
    engine = Engine(_Fixed(config), allow_test_clock=os.environ.get("HOTLINE_ALLOW_TEST_CLOCK") == "1",
                    switchboard=_switches(paths, channel.env))
    try:
        engine.handle_sync(channel.env, channel.send)
    except ClassicClosed as exc:
        log.warning("classic.closed", detail=str(exc))
    return 0


class ClassicPaths(NamedTuple):
    routing_table: Path
    ivr_menus: Path
    db_url: str
    config_snapshot: Path


def classic_paths() -> ClassicPaths:
    """The four settings classic AGI needs, as scripts.settings reads them (HOTLINE_* in the environment, then the
    defaults), without importing pydantic-settings, which alone costs more than this whole call should. With a
    secrets file (HOTLINE_SECRETS_FILE, which may set anything) the real Settings are read."""
    env = {k.lower(): v for k, v in os.environ.items() if k[:8].lower() == "hotline_"}
    if env.get("hotline_secrets_file"):
        from scripts.settings import load_settings
        s = load_settings()
        return ClassicPaths(s.routing_table, s.ivr_menus, s.db_url, s.config_snapshot)
    root = Path(__file__).resolve().parents[1]
    var = root / "var"
    return ClassicPaths(Path(env.get("hotline_routing_table", root / "conf" / "routing.yaml")),
                        Path(env.get("hotline_ivr_menus", root / "conf" / "ivr.yaml")),
                        env.get("hotline_db_url", f"sqlite:///{var / 'hotline.sqlite3'}"),
                        Path(env.get("hotline_config_snapshot", var / "cache" / "config-snapshot.json")))


def load_validated(paths: ClassicPaths) -> Any:
    """The validated (table, menus): from the snapshot made from these exact files, else validated here (the
    loaders, every check, as before) and the snapshot written for the next calls. Any problem with the
    snapshot costs only speed; a problem with the files raises (the caller fails open)."""
    from ivr.engine import Config, load_config
    from routing import config_snapshot

    try:
        table_text, menus_text = _read_text(paths.routing_table), _read_text(paths.ivr_menus)
    except (OSError, ValueError):            # the loaders say what is wrong, with file:line
        return load_config(paths.routing_table, paths.ivr_menus)
    key = config_snapshot.source_key(paths.routing_table, table_text, paths.ivr_menus, menus_text)
    try:
        return Config(*config_snapshot.read(paths.config_snapshot, key))
    except config_snapshot.SnapshotUnusable as exc:
        reason = str(exc)

    config = load_config(paths.routing_table, paths.ivr_menus, table_text=table_text, menus_text=menus_text)
    try:
        config_snapshot.write(paths.config_snapshot, key, config.table, config.menus)
        log.info("classic.snapshot_written", why=reason, table=config.table.version)
    except Exception as exc:                 # e.g. var/cache not writable by Asterisk's user: only slower
        log.warning("classic.snapshot_not_written", why=reason, error=f"{type(exc).__name__}: {exc}")
    return config


def _read_text(path: Path) -> str:
    """The file's text as the loaders would read it; ValueError when only the loaders can say what is wrong."""
    with path.open("rb") as handle:
        raw = handle.read(FAST_READ_LIMIT + 1)
    if len(raw) > FAST_READ_LIMIT:
        raise ValueError("big file: the loader's own limit decides")
    return raw.decode("utf-8")               # UnicodeDecodeError is a ValueError


def _switches(paths: ClassicPaths, env) -> object | None:
    """The override switches for this one call (a process per call: one bounded read of the records); none for
    an emergency number (never affected) or when the records cannot be read (then the call goes as the table says).
    Plain DB-API (no SQLAlchemy import): a SQLite file that does not exist is not created."""
    from ivr.engine import EMERGENCY_NUMBERS, dialed_number
    from routing.decide import normalize_number

    if normalize_number(dialed_number(env)) in EMERGENCY_NUMBERS:
        return None
    try:
        from ivr.switchboard import SwitchBoard
        from records.switch_state import read_snapshot_light

        board = SwitchBoard(None)
        board.current = read_snapshot_light(paths.db_url, timeout=1.0)   # read-only: creates no file
        return board
    except Exception as exc:
        log.warning("classic.switches_unavailable", error=f"{type(exc).__name__}: {exc}")
        return None


if __name__ == "__main__":
    sys.exit(main())
