"""panoramisk 1.4's FastAGI server, with its rough edges fixed in this one place.

What we keep from panoramisk: `Application` (the route table: `add_route(script, endpoint)`) and `Request`
(headers + reader/writer handed to the endpoint). What we replace, and why (each has a test in
tests/test_fastagi_panoramisk.py that shows the raw behaviour and the fix):

1. `Application.add_route` wraps a plain function with `asyncio.coroutine`, which Python 3.11 removed:
   registering a sync endpoint raises AttributeError. We wrap it in a real coroutine function.
2. `Application.handler` reads the env block with `while b'\\n\\n' not in buffer: buffer += await read(100)`:
   an EOF before the blank line makes `read` return b'' forever, a busy loop that freezes the event loop
   and with it every call. It also has no time bound and no size bound, and looks routes up by the raw
   `agi_network_script`, so `route?line=12320` finds no route. We read the block with our codec
   (`EnvParser`), bounded in time and size, and route on the script name without its query string.
3. `Request.send_command` reads exactly one line per command (two for a 520 block, which is 4 lines long):
   after Asterisk's unsolicited `HANGUP` line, or a usage block, every later reply belongs to the command
   before it, for the rest of the call. Our `send` parses replies with `ResponseParser`, discards the
   HANGUP notice (remembering that the channel is dead) and returns the reply that answers the pending
   command. Each reply wait is bounded (one `Watchdog` for all sessions' deadlines).

4. (Speed, not a panoramisk bug.) A call's flow does not await each reply in a coroutine: `AgiRequest.drive`
   swaps the connection's protocol for `_FlowDriver`, which hands each reply to the sans-I/O flow in
   `data_received` and writes the next command there and then; the handler awaits one future for the whole
   call. Replies, HANGUP notices, time-outs and closes mean exactly what they mean for `send`.

Why not just panoramisk's server with patches: its reader, its reply parser and its missing bounds are
the whole of its I/O; once they are replaced, what is left worth keeping is the route table and the
Request object, which is what this module builds on. Build an `AgiApplication` inside the running loop.
"""
from __future__ import annotations

import asyncio
import functools
import inspect
import time
from collections import deque
from typing import Any, Awaitable, Callable, Generator

import structlog
from panoramisk.fast_agi import Application, Request

from ivr.agi.codec import EnvParser, ProtocolError, ResponseParser, call_env_problem, format_command
from ivr.agi.commands import HANGUP_NOTICE, Command, Response
from ivr.agi.errors import SessionClosed, SessionStalled  # noqa: F401  (defined apart: the engine needs no asyncio)

log = structlog.get_logger()

READ_CHUNK = 64 * 1024


class NotACall(ProtocolError):
    """A complete environment block that is not a call Asterisk handed us (empty, no agi_uniqueid, ...)."""


class Watchdog:
    """One timer for every session's deadline (env block, pending reply), checked every `period` seconds.

    A per-command asyncio timer costs a heap push and a cancel on each of the ~13 commands of a call; arming
    here is one dict store. An expired session gets its `on_expire` (close the transport), so the read it is
    waiting in ends at once. Deadlines are honoured within one `period`.
    """

    def __init__(self, period: float) -> None:
        self.period = period
        self._deadlines: dict[object, tuple[float, Callable[[], None]]] = {}
        self._task: asyncio.Task | None = None

    def arm(self, key: object, seconds: float, on_expire: Callable[[], None]) -> None:
        self._deadlines[key] = (time.monotonic() + seconds, on_expire)
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    def disarm(self, key: object) -> None:
        self._deadlines.pop(key, None)

    def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None

    async def _run(self) -> None:
        try:
            while self._deadlines:
                await asyncio.sleep(self.period)
                now = time.monotonic()
                for key in [k for k, (deadline, _) in self._deadlines.items() if deadline <= now]:
                    _, on_expire = self._deadlines.pop(key)
                    try:
                        on_expire()
                    except Exception:
                        log.exception("fastagi.watchdog_error")
        finally:
            self._task = None


def _abort(writer: asyncio.StreamWriter | None) -> None:
    if writer is not None and writer.transport is not None:
        writer.transport.abort()


class AgiRequest(Request):
    """A panoramisk Request whose I/O goes through our codec: one reply per command, never shifted."""

    def __init__(self, app: Application, headers: dict[str, str], reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter, *, reply_timeout: float, parser: ResponseParser | None = None,
                 pending: bytes = b"", watchdog: Watchdog | None = None) -> None:
        super().__init__(app, headers, reader, writer, encoding="utf-8")
        self.env = headers                       # keys without the agi_ prefix
        self.reply_timeout = reply_timeout
        self.hangup_seen = False                 # the lone HANGUP line arrived: the channel is dead
        self.stalled = False
        self.commands = 0
        self._watchdog = watchdog
        self._parser = parser or ResponseParser()
        self._ready: deque[Response] = deque(self._parser.feed(pending)) if pending else deque()

    async def send(self, cmd: Command | str) -> Response:
        """Send one command, return the reply that answers it (HANGUP notices are consumed on the way)."""
        data = format_command(cmd) if isinstance(cmd, Command) else _one_line(cmd)
        self.writer.write(data)
        self.commands += 1
        if self._watchdog is None:
            try:
                async with asyncio.timeout(self.reply_timeout):
                    await self.writer.drain()
                    return await self._next_reply()
            except TimeoutError:
                raise SessionStalled(f"no reply within {self.reply_timeout} s to {data[:40]!r}") from None
        self._watchdog.arm(self, self.reply_timeout, self._expire)
        try:
            await self.writer.drain()
            return await self._next_reply()
        except ConnectionError:
            if self.stalled:
                raise SessionStalled(f"no reply within {self.reply_timeout} s to {data[:40]!r}") from None
            raise
        finally:
            self._watchdog.disarm(self)

    def _expire(self) -> None:
        self.stalled = True
        _abort(self.writer)

    async def drive(self, flow: Generator[Command, Response, Any], first: Command) -> Command | None:
        """Run a sans-I/O flow over this connection from `first` on: every reply goes to the flow straight from
        the transport's data_received, and its next command is written there and then (no task wake-up, no
        future per command: the event loop's work per command is one read and one write).

        Returns None once the flow has ended, or the command that was pending when Asterisk closed the session
        (SessionClosed's case: what is sent from there on is lost; the caller lets the flow end on a dead
        channel). Raises SessionStalled (no reply within reply_timeout), ProtocolError (junk),
        ConnectionError (reset), or whatever the flow itself raised; cancelling it stops the driving at once."""
        transport = self.writer.transport
        loop = asyncio.get_running_loop()
        done: asyncio.Future = loop.create_future()
        driver = _FlowDriver(self, flow, done)
        previous = transport.get_protocol()
        buffered = _take_buffered(self.reader)
        transport.set_protocol(driver)
        transport.resume_reading()                  # in case the stream reader had paused it (a full buffer)
        try:
            driver.start(first, buffered)
            if getattr(self.reader, "_eof", False):  # Asterisk closed before the flow took over
                driver._lost(self.reader.exception())
            return await done
        finally:
            driver.finished = True
            if self._watchdog is not None:
                self._watchdog.disarm(self)
            if not transport.is_closing():
                transport.set_protocol(previous)

    async def send_command(self, command: str) -> Response:    # panoramisk's name, our semantics
        return await self.send(command)

    def _pop_reply(self) -> Response | None:
        """The next parsed reply that answers a command, or None; HANGUP notices are noted on the way."""
        while self._ready:
            resp = self._ready.popleft()
            if resp is HANGUP_NOTICE:
                self.hangup_seen = True         # out of band: not the answer to the pending command
                continue
            return resp
        return None

    async def _next_reply(self) -> Response:
        while True:
            resp = self._pop_reply()
            if resp is not None:
                return resp
            data = await self.reader.read(READ_CHUNK)
            if not data:
                if self.stalled:
                    raise SessionStalled(f"no reply within {self.reply_timeout} s")
                raise SessionClosed("Asterisk closed the AGI connection")
            self._ready.extend(self._parser.feed(data))


class _FlowDriver(asyncio.Protocol):
    """The connection's protocol while AgiRequest.drive runs a flow: reply in -> flow -> next command out."""

    def __init__(self, request: AgiRequest, flow: Generator[Command, Response, Any], done: asyncio.Future) -> None:
        self.request, self.flow, self.done = request, flow, done
        self.pending: Command | None = None
        self.finished = False

    def start(self, first: Command, buffered: bytes) -> None:
        self._send(first)
        if buffered:
            self.data_received(buffered)

    def _send(self, cmd: Command) -> None:
        request = self.request
        self.pending = cmd
        request.writer.transport.write(format_command(cmd))
        request.commands += 1
        if request._watchdog is not None:
            request._watchdog.arm(request, request.reply_timeout, request._expire)

    def _end(self, result: Any = None, error: BaseException | None = None) -> None:
        if self.finished:
            return
        self.finished = True
        if self.request._watchdog is not None:
            self.request._watchdog.disarm(self.request)
        if not self.done.done():
            if error is not None:
                self.done.set_exception(error)
            else:
                self.done.set_result(result)

    def data_received(self, data: bytes) -> None:
        if self.finished:
            return
        request = self.request
        try:
            replies = request._parser.feed(data)
        except ProtocolError as exc:
            _abort(request.writer)
            self._end(error=exc)
            return
        if len(replies) == 1 and not request._ready and replies[0] is not HANGUP_NOTICE:
            self._step(replies[0])                  # the usual case: one reply, the answer to the pending command
            return
        request._ready.extend(replies)
        while not self.finished and (resp := request._pop_reply()) is not None:
            self._step(resp)

    def _step(self, resp: Response) -> None:
        """The pending command's reply to the flow; its next command out (or the end)."""
        try:
            cmd = self.flow.send(resp)
        except StopIteration:
            self._end(None)
            return
        except BaseException as exc:                # the flow's own failure: for the caller to handle
            self._end(error=exc)
            return
        self._send(cmd)

    def eof_received(self) -> bool:
        self._lost(None)
        return False                                # close our side too: Asterisk has left AGI

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost(exc)

    def _lost(self, exc: Exception | None) -> None:
        if self.finished:
            return
        request = self.request
        if request.stalled:
            self._end(error=SessionStalled(f"no reply within {request.reply_timeout} s to "
                                           f"{format_command(self.pending)[:40]!r}" if self.pending else
                                           f"no reply within {request.reply_timeout} s"))
        elif exc is not None:
            self._end(error=exc if isinstance(exc, ConnectionError) else ConnectionResetError(str(exc)))
        else:
            self._end(self.pending)                  # Asterisk closed the session (SessionClosed's case)


def _take_buffered(reader: asyncio.StreamReader) -> bytes:
    """Bytes the stream reader holds but nobody read yet (a reply or HANGUP that came with the env block's tail):
    handed to the flow driver when it takes the transport over."""
    buffer = getattr(reader, "_buffer", None)
    if not buffer:
        return b""
    data = bytes(buffer)
    buffer.clear()
    return data


def _one_line(command: str) -> bytes:
    """A raw command string: refuse anything that would become two AGI commands."""
    text = command.rstrip("\n")
    if "\n" in text or "\r" in text:
        raise ValueError("an AGI command is one line")
    return (text + "\n").encode("utf-8")


Endpoint = Callable[[AgiRequest], Awaitable[Any]]


class AgiApplication(Application):
    """panoramisk's Application with fixed route registration, env reading and dispatch."""

    def __init__(self, *, env_timeout: float = 5.0, reply_timeout: float = 60.0,
                 default: Endpoint | None = None) -> None:
        # panoramisk stores `loop` and never uses it for the server; give it the running one so it does not
        # call the deprecated get_event_loop(). Build the application inside the loop that serves it.
        super().__init__(default_encoding="utf-8", loop=asyncio.get_running_loop())
        self.env_timeout = env_timeout
        self.reply_timeout = reply_timeout
        self.default = default
        self.watchdog = Watchdog(period=max(0.02, min(1.0, env_timeout / 4, reply_timeout / 4)))

    def add_route(self, path: str, endpoint: Callable[..., Any]) -> None:
        if not inspect.iscoroutinefunction(endpoint):
            sync = endpoint

            @functools.wraps(sync)
            async def endpoint(request: AgiRequest) -> Any:     # noqa: F811 - the wrapped form
                return sync(request)
        super().add_route(path, endpoint)

    async def read_env(self, reader: asyncio.StreamReader,
                       writer: asyncio.StreamWriter | None = None) -> tuple[dict[str, str], bytes]:
        """The agi_* block, bounded in time (env_timeout) and size; EOF or junk ends only this session."""
        parser = EnvParser()
        expired = []

        def expire() -> None:
            expired.append(True)
            _abort(writer)
        stalled = f"AGI environment block not finished within {self.env_timeout} s"
        if writer is None:
            try:
                async with asyncio.timeout(self.env_timeout):
                    return await self._read_env(reader, parser, expired)
            except TimeoutError:
                raise SessionStalled(stalled) from None
        self.watchdog.arm(reader, self.env_timeout, expire)
        try:
            return await self._read_env(reader, parser, expired)
        except (SessionClosed, ConnectionError):
            if expired:
                raise SessionStalled(stalled) from None
            raise
        finally:
            self.watchdog.disarm(reader)

    @staticmethod
    async def _read_env(reader: asyncio.StreamReader, parser: EnvParser,
                        expired: list) -> tuple[dict[str, str], bytes]:
        while True:
            data = await reader.read(READ_CHUNK)
            if not data:
                raise SessionClosed("EOF before the end of the AGI environment block")
            env = parser.feed(data)
            if env is not None:
                return env, parser.rest

    def endpoint_for(self, env: dict[str, str]) -> Endpoint | None:
        script = env.get("network_script", "").split("?", 1)[0].strip("/")
        return self._route.get(script) or self.default

    async def read_call_env(self, reader: asyncio.StreamReader,
                            writer: asyncio.StreamWriter | None = None) -> tuple[dict[str, str], bytes]:
        """`read_env`, then refuse a block that is no call (NotACall): nothing is sent to such a peer."""
        env, rest = await self.read_env(reader, writer)
        problem = call_env_problem(env, network=True)
        if problem is not None:
            raise NotACall(problem)
        return env, rest

    async def dispatch(self, env: dict[str, str], rest: bytes, reader: asyncio.StreamReader,
                       writer: asyncio.StreamWriter) -> None:
        """Run the endpoint of a call whose env block was read; close when it returns."""
        try:
            endpoint = self.endpoint_for(env)
            if endpoint is None:
                log.error("fastagi.no_route", script=env.get("network_script"))
                return
            request = AgiRequest(self, env, reader, writer, reply_timeout=self.reply_timeout, pending=rest,
                                 watchdog=self.watchdog)
            await endpoint(request)
        finally:
            writer.close()

    async def handler(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """One FastAGI session: env block, dispatch, close. Errors end this session only."""
        try:
            env, rest = await self.read_call_env(reader, writer)
        except BaseException:
            writer.close()
            raise
        await self.dispatch(env, rest, reader, writer)
