"""The servers `benchmarks.agi_load` compares, each run as a process of its own (pinned to one core by the caller).

    python -m benchmarks.agi_servers engine PORT STATS_FILE [--timed] -- <hotline serve options>
    python -m benchmarks.agi_servers bare-panoramisk|bare-panoramisk-uvloop|protocol-uvloop PORT SEQUENCE_FILE

- engine: `hotline serve` itself (scripts.hotline's click command, the environment chooses records, database,
  spool, logs), optionally with a timing hook (`--timed`) on AgiRequest.send that notes the engine's reaction
  time (reply handed over -> next command written; for the first command: env block read -> first command),
  with its CLOCK_MONOTONIC instant, written to STATS_FILE at exit.
- bare-panoramisk: a panoramisk 1.4 Application on plain asyncio sending a fixed command sequence (the one
  our engine sends for the same call), one `send_command` per line, as a panoramisk user would write it.
- bare-panoramisk-uvloop: the same on uvloop.
- protocol-uvloop: the Python floor: an asyncio.Protocol on uvloop that reads the env block up to its blank
  line and then sends the sequence, one command per reply line, with no parsing beyond finding the newline.
"""
from __future__ import annotations

import asyncio
import atexit
import json
import signal
import sys
import time
from pathlib import Path


def run_engine(port: int, stats_file: Path, timed: bool, serve_args: list[str]) -> None:
    if timed:
        _install_timing_hook(stats_file)
    from scripts.hotline import cli
    cli.main(["serve", "--port", str(port), *serve_args], prog_name="hotline", standalone_mode=True)


def _install_timing_hook(stats_file: Path) -> None:
    """Reaction times of the engine: a reply's arrival (the flow driver's data_received, or the env block read
    for the first command) -> the next command handed to the transport. Written to `stats_file` at exit."""
    from ivr.fastagi_compat import AgiRequest, _FlowDriver

    samples: list[tuple[float, float]] = []          # (instant the command went out, reaction seconds)
    original_init, original_received, original_send = (AgiRequest.__init__, _FlowDriver.data_received,
                                                       _FlowDriver._send)

    def init(self, *args, **kwargs):
        original_init(self, *args, **kwargs)
        self._bench_since = time.perf_counter()      # the env block was read: the engine's turn

    def received(self, data):
        self.request._bench_since = time.perf_counter()
        return original_received(self, data)

    def send(self, cmd):
        now = time.perf_counter()
        samples.append((now, now - self.request._bench_since))
        return original_send(self, cmd)
    AgiRequest.__init__, _FlowDriver.data_received, _FlowDriver._send = init, received, send
    atexit.register(lambda: stats_file.write_text(json.dumps(samples)))


async def _bare_panoramisk(port: int, sequence: list[str]) -> None:
    from panoramisk.fast_agi import Application

    app = Application(loop=asyncio.get_running_loop())

    async def route(request):
        for line in sequence:
            await request.send_command(line)
    app.add_route("route", route)
    server = await asyncio.start_server(app.handler, "127.0.0.1", port, backlog=4096)
    await _until_sigterm()
    server.close()


class _FloorSession(asyncio.Protocol):
    """Env block up to the blank line, then one command per reply line; nothing else."""

    def __init__(self, sequence: list[bytes]) -> None:
        self.sequence = sequence
        self.buffer = b""
        self.next = -1                 # -1: still reading the env block

    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if self.next < 0:
            end = self.buffer.find(b"\n\n")
            if end < 0:
                return
            self.buffer, self.next = self.buffer[end + 2:], 0
            self.transport.write(self.sequence[0])
            return
        while (end := self.buffer.find(b"\n")) >= 0:
            self.buffer = self.buffer[end + 1:]
            self.next += 1
            if self.next == len(self.sequence):
                self.transport.close()
                return
            self.transport.write(self.sequence[self.next])


async def _protocol_floor(port: int, sequence: list[str]) -> None:
    lines = [(line + "\n").encode() for line in sequence]
    server = await asyncio.get_running_loop().create_server(lambda: _FloorSession(lines), "127.0.0.1", port,
                                                            backlog=4096)
    await _until_sigterm()
    server.close()


async def _until_sigterm() -> None:
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()


def main(argv: list[str]) -> None:
    kind, port = argv[0], int(argv[1])
    if kind == "engine":
        rest = argv[3:]
        timed = bool(rest) and rest[0] == "--timed"
        serve_args = rest[rest.index("--") + 1:] if "--" in rest else []
        run_engine(port, Path(argv[2]), timed, serve_args)
        return
    sequence = json.loads(Path(argv[2]).read_text())
    if kind == "bare-panoramisk":
        asyncio.run(_bare_panoramisk(port, sequence))
    elif kind == "bare-panoramisk-uvloop":
        import uvloop
        uvloop.run(_bare_panoramisk(port, sequence))
    elif kind == "protocol-uvloop":
        import uvloop
        uvloop.run(_protocol_floor(port, sequence))
    else:
        raise SystemExit(f"unknown server kind {kind!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
