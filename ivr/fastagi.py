"""The FastAGI server: asyncio TCP, panoramisk's route table (via ivr.fastagi_compat), our codec underneath.

Guarantees, each tested over real TCP in tests/test_fastagi_*.py:
- a listen backlog of `backlog` (>= 128) and an accept loop that never does work of its own;
- a bound on the env block time and on each command's reply time: a stalled peer is dropped;
- junk, an early close or a stall costs that session only;
- at most `max_sessions` sessions; a call over the cap is still answered (the fail-open variables, then
  close: an emergency line to its trunk, never a queue) and logged, never left in silence;
- graceful shutdown: stop accepting, let sessions in flight finish within `drain_timeout`, then cut them;
- every log line of a session carries its agi uniqueid (structlog contextvars); callers are masked.
"""
from __future__ import annotations

import asyncio
import signal
from dataclasses import dataclass
from typing import Callable, Iterable, Mapping

import structlog

from ivr.agi.codec import ProtocolError
from ivr.agi.commands import Command
from ivr.fastagi_compat import AgiApplication, AgiRequest, SessionClosed, SessionStalled

log = structlog.get_logger()

FailOpen = Callable[[Mapping[str, str]], Iterable[Command]]


@dataclass(frozen=True)
class ServerLimits:
    max_sessions: int = 2000
    backlog: int = 1024
    env_timeout: float = 5.0          # connect -> end of the agi_* block
    reply_timeout: float = 60.0       # one command -> its reply (a long announcement plays within this)
    drain_timeout: float = 10.0       # shutdown: time sessions in flight get to finish
    over_cap_timeout: float = 2.0     # the over-cap answer (env + fail-open variables) must fit in this

    def __post_init__(self) -> None:
        if self.backlog < 128:
            raise ValueError("backlog must be >= 128: Asterisk opens connections in bursts")
        if self.max_sessions < 1:
            raise ValueError("max_sessions must be >= 1")


class FastAgiServer:
    def __init__(self, app: AgiApplication, *, host: str = "127.0.0.1", port: int = 4573,
                 limits: ServerLimits = ServerLimits(), fail_open: FailOpen | None = None) -> None:
        self.app = app
        self.host, self.port = host, port
        self.limits = limits
        self.fail_open = fail_open
        self._server: asyncio.base_events.Server | None = None
        self._sessions: set[asyncio.Task] = set()
        self._refusals: set[asyncio.Task] = set()
        self.stats = {"served": 0, "dropped": 0, "refused": 0, "errors": 0}

    @property
    def active(self) -> int:
        return len(self._sessions)

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._on_connect, self.host, self.port,
                                                  backlog=self.limits.backlog, reuse_address=True)
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("fastagi.listening", host=self.host, port=self.port, max_sessions=self.limits.max_sessions,
                 backlog=self.limits.backlog)
        return self.port

    async def _on_connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        if len(self._sessions) >= self.limits.max_sessions:
            self._refusals.add(task)
            try:
                await self._over_cap(reader, writer)
            finally:
                self._refusals.discard(task)
            return
        self._sessions.add(task)
        try:
            await self.app.handler(reader, writer)
            self.stats["served"] += 1
        except (SessionClosed, SessionStalled, ProtocolError, ConnectionError) as exc:
            self.stats["dropped"] += 1
            log.warning("fastagi.session_dropped", reason=type(exc).__name__, detail=str(exc)[:200])
        except asyncio.CancelledError:
            self.stats["dropped"] += 1
            log.warning("fastagi.session_cut", reason="shutdown drain timeout")
            raise
        except Exception:
            self.stats["errors"] += 1
            log.exception("fastagi.session_error")
        finally:
            self._sessions.discard(task)
            writer.close()

    async def _over_cap(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Over the cap: still answer Asterisk, with the fail-open variables, then close. Never silence."""
        self.stats["refused"] += 1
        try:
            async with asyncio.timeout(self.limits.over_cap_timeout):
                env, rest = await self.app.read_env(reader)
                structlog.contextvars.bind_contextvars(uniqueid=env.get("uniqueid", ""))
                log.warning("fastagi.over_capacity", active=len(self._sessions),
                            max_sessions=self.limits.max_sessions, action="fail-open variables, then close")
                request = AgiRequest(self.app, env, reader, writer, reply_timeout=self.limits.over_cap_timeout,
                                     pending=rest)
                for cmd in (self.fail_open(env) if self.fail_open else ()):
                    await request.send(cmd)
        except Exception as exc:           # a broken peer over the cap: nothing more to do for it
            log.warning("fastagi.over_capacity_answer_failed", reason=type(exc).__name__)
        finally:
            writer.close()

    async def shutdown(self, drain_timeout: float | None = None) -> None:
        """Stop accepting; give sessions in flight `drain_timeout` seconds; cut the rest."""
        timeout = self.limits.drain_timeout if drain_timeout is None else drain_timeout
        if self._server is not None:
            self._server.close()
        pending = set(self._sessions) | set(self._refusals)
        log.info("fastagi.draining", sessions=len(pending), timeout=timeout)
        if pending:
            done, still = await asyncio.wait(pending, timeout=timeout)
            for task in still:
                task.cancel()
            if still:
                await asyncio.wait(still, timeout=1.0)
            log.info("fastagi.stopped", finished=len(done), cut=len(still), **self.stats)
        else:
            log.info("fastagi.stopped", finished=0, cut=0, **self.stats)
        self.app.watchdog.close()

    async def serve_until_signalled(self, on_reload: Callable[[], object] | None = None,
                                    stop: asyncio.Event | None = None) -> None:
        """Run until SIGTERM/SIGINT (or `stop` is set), then drain. SIGHUP calls `on_reload` in a thread."""
        loop = asyncio.get_running_loop()
        stop = stop or asyncio.Event()
        installed = []
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
            installed.append(sig)
        if on_reload is not None:
            def reload() -> None:
                log.info("fastagi.reload_requested", signal="SIGHUP")
                loop.run_in_executor(None, on_reload)
            loop.add_signal_handler(signal.SIGHUP, reload)
            installed.append(signal.SIGHUP)
        try:
            await stop.wait()
        finally:
            for sig in installed:
                loop.remove_signal_handler(sig)
            await self.shutdown()



def build_server(engine: object, *, host: str = "127.0.0.1", port: int = 4573,
                 limits: ServerLimits = ServerLimits()) -> FastAgiServer:
    """The engine behind script `route`; any other script name is routed too (logged), never left silent.

    Call inside the running loop (panoramisk's Application binds to it).
    """
    app = AgiApplication(env_timeout=limits.env_timeout, reply_timeout=limits.reply_timeout,
                         default=_any_script(engine.handle))  # type: ignore[attr-defined]
    app.add_route("route", engine.handle)  # type: ignore[attr-defined]
    return FastAgiServer(app, host=host, port=port, limits=limits,
                         fail_open=engine.fail_open_commands)  # type: ignore[attr-defined]


def _any_script(endpoint: Callable) -> Callable:
    async def handle(request: AgiRequest) -> object:
        log.warning("fastagi.unknown_script", script=request.env.get("network_script"), handled_as="route")
        return await endpoint(request)
    return handle
