"""The FastAGI server: asyncio TCP, panoramisk's route table (via ivr.fastagi_compat), our codec underneath.

Guarantees, each tested over real TCP in tests/test_fastagi_*.py:
- a listen backlog of `backlog` (>= 128) and an accept loop that never does work of its own;
- a connection is a call only once its agi_* block is complete and plausible (agi_network, agi_request,
  agi_channel, agi_uniqueid; sane sizes). Before that it is *pending*: a connection that has not delivered
  its block within `admit_after` seconds (checked by the watchdog, so within its period) enters the pending
  pools (`max_pending`, `max_pending_per_address`) and has `env_timeout` in all; it never takes a call slot.
  When a pool is full, the oldest pending connection makes room if it is older than `pending_grace`
  (Asterisk writes its block right after connecting: a real call is never that slow), else the newcomer is
  refused. Connections whose block is already there when they are read never touch the pools: a burst of
  thousands of calls at once (Asterisk reconnecting after an outage, all from one address) is served, not
  refused as a flood. An empty or agi_*-less block is refused at once; nothing is sent to such a peer and no
  call is recorded;
- an optional allow-list of peer addresses (`allow`, HOTLINE_AGI_ALLOW: loopback by default): any other
  address is closed at accept;
- every connection that never became a call is counted by reason (`not_a_call`) and logged as
  `fastagi.not_a_call` with the count, at most once per `TALLY_EVERY` seconds per reason;
- a bound on each command's reply time: a stalled peer is dropped; junk, an early close or a stall costs
  that session only;
- at most `max_sessions` calls; a call over the cap is still answered (the fail-open variables, then close:
  an emergency line to its trunk, never a queue), logged and recorded, never left in silence;
- graceful shutdown: stop accepting, let sessions in flight finish within `drain_timeout`, then cut them;
- every log line of a session carries its agi uniqueid (structlog contextvars); callers are masked.
"""
from __future__ import annotations

import asyncio
import functools
import ipaddress
import math
import signal
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Awaitable, Callable, Iterable, Mapping, Sequence

import structlog

from ivr.agi.codec import ProtocolError
from ivr.agi.commands import Command
from ivr.fastagi_compat import AgiApplication, AgiRequest, NotACall, SessionClosed, SessionStalled

log = structlog.get_logger()

FailOpen = Callable[[Mapping[str, str]], Iterable[Command]]
# The over-cap answer for one call: send what the dialplan needs within `timeout`, record the call.
OverCapacity = Callable[..., Awaitable[object]]
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

LOOPBACK = "127.0.0.0/8,::1"
TALLY_EVERY = 10.0                  # seconds between two fastagi.not_a_call lines of one reason


def parse_allow(text: str) -> tuple[Network, ...]:
    """`HOTLINE_AGI_ALLOW`: comma-separated addresses or networks (`10.0.0.5`, `10.0.0.0/24`, `::1`)."""
    networks = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ValueError(f"allowed AGI peer {item!r} is not an address or network (e.g. 10.0.0.5, "
                             "10.0.0.0/24, ::1)") from None
    if not networks:
        raise ValueError("the allow-list of AGI peers is empty: no call could reach the engine")
    return tuple(networks)


@dataclass(frozen=True)
class ServerLimits:
    max_sessions: int = 10000         # ~11 KB per held call in `make bench`: 10,000 is ~110 MB
    max_pending: int = 1024           # connections still sending their agi_* block (never a call slot)
    max_pending_per_address: int = 512
    admit_after: float = 0.1          # a connection without its block after this long counts as pending
    pending_grace: float = 0.25       # a pending connection younger than this is never dropped to make room
    backlog: int = 4096               # the kernel caps it at net.core.somaxconn
    env_timeout: float = 2.0          # connect -> end of the agi_* block (Asterisk sends it at once)
    reply_timeout: float = 60.0       # one command -> its reply (a long announcement plays within this)
    drain_timeout: float = 10.0       # shutdown: time sessions in flight get to finish
    over_cap_timeout: float = 2.0     # the over-cap answer (the fail-open variables) must fit in this

    def __post_init__(self) -> None:
        if self.backlog < 128:
            raise ValueError("backlog must be >= 128: Asterisk opens connections in bursts")
        if self.max_sessions < 1:
            raise ValueError("max_sessions must be >= 1")
        if self.admit_after < 0 or self.pending_grace < 0:
            raise ValueError("admit_after and pending_grace must be >= 0")
        if self.max_pending < 1 or not 1 <= self.max_pending_per_address <= self.max_pending:
            raise ValueError("max_pending and max_pending_per_address must be >= 1, the latter <= the former")


@dataclass(eq=False)
class _Pending:
    """A connection that has not finished its agi_* block yet."""

    address: str
    since: float
    writer: asyncio.StreamWriter
    evicted: bool = False
    refused: bool = False             # the pools were full when it came to count: closed as pending_full


@dataclass
class _Tally:
    """Connections that never became calls, by reason; logged with their count, at most once per `every` s
    per reason (a flood is a few lines, not one per connection); what a window held is logged at its end."""

    every: float = TALLY_EVERY
    total: Counter = field(default_factory=Counter)
    _unlogged: Counter = field(default_factory=Counter)
    _last: dict = field(default_factory=dict)
    _flush_due: set = field(default_factory=set)

    def note(self, reason: str, address: str, detail: str = "") -> None:
        self.total[reason] += 1
        self._unlogged[reason] += 1
        wait = self._last.get(reason, -math.inf) + self.every - time.monotonic()
        if wait <= 0:
            self._log(reason, address, detail)
        elif reason not in self._flush_due:
            self._flush_due.add(reason)
            asyncio.get_running_loop().call_later(wait, self._flush, reason, address, detail)

    def _flush(self, reason: str, address: str, detail: str) -> None:
        self._flush_due.discard(reason)
        if self._unlogged[reason]:
            self._log(reason, address, detail)

    def _log(self, reason: str, address: str, detail: str) -> None:
        self._last[reason] = time.monotonic()
        log.warning("fastagi.not_a_call", reason=reason, peer=address, detail=detail[:200],
                    count=self._unlogged.pop(reason), total=self.total[reason],
                    effect="connection closed; no call slot taken, no call recorded")


def _peer_address(writer: asyncio.StreamWriter) -> str:
    peer = writer.get_extra_info("peername")
    return _normal_address(peer[0] if isinstance(peer, tuple) and peer else str(peer or ""))


@functools.lru_cache(maxsize=1024)
def _normal_address(host: str) -> str:
    """The peer's address as the allow-list and the logs see it (cached: a handful of Asterisk boxes connect)."""
    try:
        ip = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return host
    mapped = getattr(ip, "ipv4_mapped", None)       # a dual-stack listener sees ::ffff:127.0.0.1
    return str(mapped or ip)


def _abort(writer: asyncio.StreamWriter) -> None:
    if writer.transport is not None:
        writer.transport.abort()


class FastAgiServer:
    def __init__(self, app: AgiApplication, *, host: str = "127.0.0.1", port: int = 4573,
                 limits: ServerLimits = ServerLimits(), fail_open: FailOpen | None = None,
                 over_capacity: OverCapacity | None = None, allow: Sequence[Network] | None = None) -> None:
        """`over_capacity(request, timeout=...)` answers (and records) a call over the cap; without it the
        `fail_open(env)` commands are sent. `allow`: peer networks let in (None: any address)."""
        self.app = app
        self.host, self.port = host, port
        self.limits = limits
        self.fail_open = fail_open
        self.over_capacity = over_capacity
        self.allow = tuple(allow) if allow is not None else None
        self._allowed_cache: dict[str, bool] = {}
        self._server: asyncio.base_events.Server | None = None
        self._sessions: set[asyncio.Task] = set()
        self._refusals: set[asyncio.Task] = set()
        self._connecting: set[asyncio.Task] = set()
        self._pending: dict[_Pending, None] = {}                    # oldest first
        self._pending_by_address: dict[str, dict[_Pending, None]] = {}
        self._tally = _Tally()
        self.stats = {"served": 0, "dropped": 0, "refused": 0, "errors": 0, "not_a_call": 0}

    @property
    def active(self) -> int:
        return len(self._sessions)

    @property
    def pending(self) -> int:
        return len(self._pending)

    @property
    def not_a_call(self) -> Counter:
        """Connections that never became calls, by reason (empty_env, junk, env_timeout, evicted, ...)."""
        return self._tally.total

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._on_connect, self.host, self.port,
                                                  backlog=self.limits.backlog, reuse_address=True)
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("fastagi.listening", host=self.host, port=self.port, max_sessions=self.limits.max_sessions,
                 max_pending=self.limits.max_pending, backlog=self.limits.backlog,
                 allow=",".join(map(str, self.allow)) if self.allow is not None else "any")
        if self.allow is not None and all(net.is_loopback for net in self.allow) and not _is_loopback(self.host):
            log.warning("fastagi.loopback_only", host=self.host,
                        advice="only loopback peers are let in: set HOTLINE_AGI_ALLOW to the Asterisk addresses")
        return self.port

    # -- before the env block: not a call yet
    def _allowed(self, address: str) -> bool:
        if self.allow is None:
            return True
        known = self._allowed_cache.get(address)
        if known is not None:
            return known
        try:
            ip = ipaddress.ip_address(address)
            allowed = any(ip in net for net in self.allow)
        except ValueError:
            allowed = False
        if len(self._allowed_cache) >= 1024:       # a flood of addresses: bounded, the answer stays the same
            self._allowed_cache.clear()
        self._allowed_cache[address] = allowed
        return allowed

    def _admit(self, entry: _Pending) -> None:
        """`entry` is still without its block after `admit_after`: it takes a place in the pending pools,
        making room by dropping the oldest one past its grace, or is refused (pending_full) if none is."""
        now = time.monotonic()
        address = entry.address
        mine = self._pending_by_address.get(address, {})
        if (len(mine) >= self.limits.max_pending_per_address and not self._evict_oldest(mine, now)) or \
                (len(self._pending) >= self.limits.max_pending and not self._evict_oldest(self._pending, now)):
            entry.refused = True
            self._refuse("pending_full", address, entry.writer, f"{self.limits.max_pending} pending connections "
                         f"({self.limits.max_pending_per_address} per address), none older than "
                         f"{self.limits.pending_grace} s")
            return
        self._pending[entry] = None
        self._pending_by_address.setdefault(address, {})[entry] = None

    def _evict_oldest(self, pool: dict[_Pending, None], now: float) -> bool:
        oldest = next(iter(pool))
        if now - oldest.since < self.limits.pending_grace:
            return False
        oldest.evicted = True
        self._release(oldest)
        _abort(oldest.writer)                  # its read_env ends at once (connection lost)
        return True

    def _release(self, entry: _Pending) -> None:
        self._pending.pop(entry, None)
        mine = self._pending_by_address.get(entry.address)
        if mine is not None:
            mine.pop(entry, None)
            if not mine:
                del self._pending_by_address[entry.address]

    def _refuse(self, reason: str, address: str, writer: asyncio.StreamWriter, detail: str = "") -> None:
        self.stats["not_a_call"] += 1
        self._tally.note(reason, address, detail)
        _abort(writer)

    async def _read_call_env(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                             address: str) -> tuple[dict[str, str], bytes] | None:
        """The env block of a call, or None (refused and counted) for a connection that never became one."""
        entry = _Pending(address, time.monotonic(), writer)
        watchdog = self.app.watchdog
        watchdog.arm(entry, self.limits.admit_after, lambda: self._admit(entry))
        try:
            return await self.app.read_call_env(reader, writer)
        except NotACall as exc:
            reason, detail = ("empty_env" if "empty" in str(exc) else "implausible_env"), str(exc)
        except ProtocolError as exc:
            reason, detail = "junk", str(exc)
        except SessionStalled as exc:
            reason, detail = "env_timeout", str(exc)
        except (SessionClosed, ConnectionError) as exc:
            reason, detail = ("evicted" if entry.evicted else "closed_before_env"), str(exc)
        except Exception as exc:               # a bug here must cost this connection only
            log.exception("fastagi.env_error")
            reason, detail = "error", f"{type(exc).__name__}: {exc}"
        finally:
            watchdog.disarm(entry)
            self._release(entry)
        if not entry.refused:              # a refused one was counted when the pools turned it away
            self._refuse(reason, address, writer, detail)
        return None

    async def _on_connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        address = _peer_address(writer)
        if not self._allowed(address):
            self._refuse("address_not_allowed", address, writer)
            return
        self._connecting.add(task)
        try:
            got = await self._read_call_env(reader, writer, address)
        except asyncio.CancelledError:
            _abort(writer)
            raise
        finally:
            self._connecting.discard(task)
        if got is None:
            return
        env, rest = got
        structlog.contextvars.bind_contextvars(uniqueid=env.get("uniqueid", ""))
        if len(self._sessions) >= self.limits.max_sessions:
            self._refusals.add(task)
            try:
                await self._over_cap(env, rest, reader, writer)
            finally:
                self._refusals.discard(task)
            return
        self._sessions.add(task)
        try:
            await self.app.dispatch(env, rest, reader, writer)
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

    async def _over_cap(self, env: dict[str, str], rest: bytes, reader: asyncio.StreamReader,
                        writer: asyncio.StreamWriter) -> None:
        """Over the cap: still answer Asterisk, with the fail-open variables, then close. Never silence."""
        self.stats["refused"] += 1
        log.warning("fastagi.over_capacity", active=len(self._sessions), max_sessions=self.limits.max_sessions,
                    action="fail-open variables, then close")
        request = AgiRequest(self.app, env, reader, writer, reply_timeout=self.limits.over_cap_timeout,
                             pending=rest)
        try:
            if self.over_capacity is not None:
                await self.over_capacity(request, timeout=self.limits.over_cap_timeout)
            else:
                async with asyncio.timeout(self.limits.over_cap_timeout):
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
        pending = set(self._sessions) | set(self._refusals) | set(self._connecting)
        log.info("fastagi.draining", sessions=len(pending), timeout=timeout)
        if pending:
            done, still = await asyncio.wait(pending, timeout=timeout)
            for task in still:
                task.cancel()
            if still:
                await asyncio.wait(still, timeout=1.0)
            log.info("fastagi.stopped", finished=len(done), cut=len(still), **self.stats,
                     not_a_call_by_reason=dict(self.not_a_call))
        else:
            log.info("fastagi.stopped", finished=0, cut=0, **self.stats, not_a_call_by_reason=dict(self.not_a_call))
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
                 limits: ServerLimits = ServerLimits(), allow: Sequence[Network] | None = None,
                 scripts: Mapping[str, Callable] | None = None) -> FastAgiServer:
    """The engine behind script `route`; any other script name is routed too (logged), never left silent.
    `scripts`: further entries by script name (e.g. `switch`, the override switches' feature code).

    Call inside the running loop (panoramisk's Application binds to it).
    """
    app = AgiApplication(env_timeout=limits.env_timeout, reply_timeout=limits.reply_timeout,
                         default=_any_script(engine.handle))  # type: ignore[attr-defined]
    app.add_route("route", engine.handle)  # type: ignore[attr-defined]
    for name, endpoint in (scripts or {}).items():
        app.add_route(name, endpoint)
    return FastAgiServer(app, host=host, port=port, limits=limits, allow=allow,
                         fail_open=engine.fail_open_commands,  # type: ignore[attr-defined]
                         over_capacity=getattr(engine, "handle_over_capacity", None))


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def _any_script(endpoint: Callable) -> Callable:
    async def handle(request: AgiRequest) -> object:
        log.warning("fastagi.unknown_script", script=request.env.get("network_script"), handled_as="route")
        return await endpoint(request)
    return handle
