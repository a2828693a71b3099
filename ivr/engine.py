"""Per-call glue: env -> decide() -> IvrSession, driven over a connection; fail open on any error.

`CallFlow` is the sans-I/O part (a generator of Commands like the session); `Engine` drives it for FastAGI
(`handle`, async) and classic AGI (`handle_sync`). The instant is read here, at the edge, once per call.
`ConfigHolder` keeps the (table, menus) pair: each call captures the pair at its start, `reload()` swaps in
a new validated pair atomically or keeps the running one.

Imports: a classic AGI process (one per call) imports this module, so what only FastAGI or a reload needs
(asyncio, threading, the configuration check) is imported where it is used, and logging goes through
ivr.calllog (structlog in the daemon, plain JSON lines in a classic process). tests/test_classic_imports.py
keeps it that way.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Generator, Mapping

from ivr import calllog
from ivr.agi.codec import ProtocolError, command_line
from ivr.agi.commands import Command, GetVariable, Response, SetVariable
from ivr.agi.errors import SessionStalled
from routing.decide import UNKNOWN_TAG, decide, normalize_number
from routing.model import CallerHistory, Category, RoutingTable
from routing.privacy import mask_number

if TYPE_CHECKING:
    from ivr.configcheck import ChildLimits

log = calllog.get_logger()

FALLBACK_QUEUE = "general-12345"
TEST_CLOCK_VARIABLE = "HOTLINE_AT"
CHANNEL_GONE = Response(code=511)   # what a dead channel answers; used once Asterisk has closed the session
# What ends a session from the wire side while the IVR runs (besides Asterisk's own close, SessionClosed):
# the peer stalled, reset the connection or sent junk. The call is recorded with what was known at the cut.
SESSION_CUT = (SessionStalled, ConnectionError, ProtocolError)


# ------------------------------------------------------------------ configuration

class ConfigError(Exception):
    def __init__(self, problems: list[Any]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


@dataclass(frozen=True)
class Config:
    table: RoutingTable
    menus: Any                 # ivr.menus.Menus


def load_config(table_path: Path | str, menus_path: Path | str, *, table_text: str | None = None,
                menus_text: str | None = None) -> Config:
    """Both files, validated together (the menus against the table); ConfigError lists every problem.
    The texts, when given, stand for the files' content (already read, e.g. validated in a child)."""
    from ivr.menus import MenuError, load_menus
    from routing.loader import TableError, load_table
    try:
        table = load_table(table_path, text=table_text)
    except TableError as exc:
        raise ConfigError(list(exc.problems)) from None
    try:
        menus = load_menus(menus_path, table, text=menus_text)
    except MenuError as exc:
        raise ConfigError(list(exc.problems)) from None
    return Config(table, menus)


class ConfigHolder:
    """The running (table, menus). Reading `current` is one attribute load: a call sees one consistent pair."""

    def __init__(self, config: Config, table_path: Path | str | None = None,
                 menus_path: Path | str | None = None, child_limits: "ChildLimits | None" = None) -> None:
        import threading

        from ivr.configcheck import ChildLimits
        self._current = config
        self.table_path, self.menus_path = table_path, menus_path
        self.child_limits = child_limits or ChildLimits()
        self._lock = threading.Lock()        # one reload at a time (SIGHUP storms)
        self.last_problems: list[str] = []   # why the last reload was refused (file:line: ...), for `hotline reload`

    @classmethod
    def from_files(cls, table_path: Path | str, menus_path: Path | str) -> "ConfigHolder":
        return cls(load_config(table_path, menus_path), table_path, menus_path)

    @property
    def current(self) -> Config:
        return self._current

    def reload(self) -> bool:
        """Validate both files; swap them in only if both are good. A broken file keeps the running pair.

        The files are read once and validated by a bounded child process (ivr.configcheck) before this
        process parses them: a file that would exhaust memory or time costs the child, never the calls."""
        from ivr.configcheck import read_pair, validate_in_child
        from routing.yamlsource import SourceError
        if self.table_path is None or self.menus_path is None:
            raise RuntimeError("this configuration was not loaded from files")
        with self._lock:
            try:
                try:
                    table_text, menus_text = read_pair(self.table_path, self.menus_path)
                except SourceError as exc:
                    raise ConfigError(exc.problems) from None
                problems = validate_in_child((self.table_path, table_text), (self.menus_path, menus_text),
                                             self.child_limits)
                if problems:
                    raise ConfigError(problems)
                new = load_config(self.table_path, self.menus_path, table_text=table_text, menus_text=menus_text)
            except ConfigError as exc:
                self.last_problems = [str(p) for p in exc.problems]
                for problem in exc.problems:
                    log.error("config.problem", problem=str(problem))
                log.error("config.reload_refused", problems=len(exc.problems),
                          running_table=self._current.table.version)
                return False
            except Exception as exc:        # unreadable file, bug in a loader: keep running all the same
                self.last_problems = [f"{type(exc).__name__}: {exc}"]
                log.exception("config.reload_refused", error=str(exc), running_table=self._current.table.version)
                return False
            old = self._current
            self._current = new
            self.last_problems = []
            log.info("config.reloaded", table=new.table.version, previous_table=old.table.version)
            return True


# ------------------------------------------------------------------ one call, sans-I/O

def command_name(cmd: Command) -> str:
    """The command's words without its arguments (no caller data in logs)."""
    return " ".join(command_line(cmd).split()[:2])


def dialed_number(env: Mapping[str, str]) -> str:
    """arg_1 (AGI(agi://.../route,${EXTEN})), else the extension, else the DNID."""
    for key in ("arg_1", "extension", "dnid"):
        value = (env.get(key) or "").strip()
        if value and value.lower() != "unknown":
            return value
    return ""


def caller_number(env: Mapping[str, str]) -> str | None:
    value = (env.get("callerid") or "").strip()
    return value if value and value.lower() != "unknown" else None


EMERGENCY_NUMBERS = frozenset({"110", "119", "120", "122"})   # built in: known even without a table


@dataclass(frozen=True)
class FailOpen:
    """Where a call goes when the engine cannot decide. `action` None: set no decision, so the dialplan's own
    fail-open (rendered from the table: emergency lines to their trunk) handles the call."""

    line: str
    action: str | None              # "dial" (emergency trunk), "queue" (general queue) or None
    target: str | None
    tags: str
    why: str


def emergency_trunk(table: RoutingTable, number: str) -> str | None:
    """The trunk of a line the table routes as emergency linkage (any of its rules, newest first)."""
    line = table.lines.get(number)
    for rule in reversed(line.rules if line is not None else ()):
        if rule.category is Category.EMERGENCY_LINKAGE and rule.trunk:
            return rule.trunk
    return None


def fail_open_decision(env: Mapping[str, str], table: RoutingTable | None = None) -> FailOpen:
    """Emergency lines go to their trunk at once, never to a queue: with a table, to the trunk it names (as the
    dialplan's fail-open does); without one (classic AGI with a broken file), or for a built-in emergency number
    the table does not route as emergency, no decision is set and the dialplan's own fail-open, rendered from
    the table Asterisk runs with, dials it. Everything else goes to the general queue with the line's tags."""
    dialed = dialed_number(env)
    number = normalize_number(dialed) or dialed
    line = number or "12345"
    if table is None:
        return FailOpen(line, None, None, "failopen", "no routing table: the dialplan's fail-open decides")
    try:
        trunk = emergency_trunk(table, number)
        known = table.lines.get(number)
        rule_tags = list(known.rules[-1].tags) if known is not None and known.rules else [UNKNOWN_TAG]
    except Exception:                      # a table we cannot even read: the dialplan knows the lines
        return FailOpen(line, None, None, "failopen", "table unreadable: the dialplan's fail-open decides")
    tags = "+".join(dict.fromkeys(rule_tags + ["failopen"]))
    if trunk is not None:
        return FailOpen(line, "dial", trunk, tags, "emergency linkage: its trunk at once")
    if number in EMERGENCY_NUMBERS:
        return FailOpen(line, None, None, tags, "emergency number the table does not route: the dialplan decides")
    return FailOpen(line, "queue", table.general_queue or FALLBACK_QUEUE, tags, "general queue")


def fail_open_commands(env: Mapping[str, str], table: RoutingTable | None = None) -> list[Command]:
    """What the dialplan needs when we cannot decide (see fail_open_decision): HOTLINE_ACTION last, as the
    session sets it, or not at all."""
    decision = fail_open_decision(env, table)
    commands: list[Command] = [SetVariable("HOTLINE_LINE", decision.line), SetVariable("HOTLINE_TAGS", decision.tags)]
    if decision.action is None:
        return commands
    from ivr.session import tagged_caller_name
    return [SetVariable("HOTLINE_TARGET", decision.target or ""), *commands,
            SetVariable("CALLERID(name)", tagged_caller_name(decision.line, env)),
            SetVariable("HOTLINE_ACTION", decision.action)]


def test_instant(response: Response, table: RoutingTable) -> datetime | None:
    """The HOTLINE_AT channel variable (ISO 8601; naive = the table's local time), None when unset or bad."""
    if response.code != 200 or response.result != 1 or not response.data:
        return None
    try:
        at = datetime.fromisoformat(response.data.strip())
    except ValueError:
        log.warning("engine.test_clock_invalid", value=response.data[:40])
        return None
    return at if at.tzinfo else at.replace(tzinfo=table.timezone)


@dataclass
class CallFlow:
    """decide() then the IVR session, as one generator; any exception becomes the fail-open variables."""

    env: Mapping[str, str]
    config: Config
    at: datetime
    history: CallerHistory | None = None
    decide_fn: Callable[..., Any] = decide
    session_factory: Callable[..., Any] | None = None
    route: Any = None
    outcome: Any = None
    error: BaseException | None = None
    dropped: str | None = None      # why the session was cut before the flow ended (SessionStalled, ...)
    switches: frozenset[str] = frozenset()   # override switches on at `at` (ivr.switchboard)
    dialed: str = field(init=False)
    caller: str | None = field(init=False)

    def __post_init__(self) -> None:
        self.dialed = dialed_number(self.env)
        self.caller = caller_number(self.env)

    def run(self) -> Generator[Command, Response, Any]:
        table = self.config.table
        try:
            extra = {"switches": self.switches} if self.switches else {}
            self.route = self.decide_fn(table, self.dialed, self.caller, self.at, self.history, **extra)
            r = self.route
            log.info("engine.route", dialed=self.dialed, line=r.line, category=r.category.value,
                     rule=r.rule_id, action=r.action.value, target=r.target, menu=r.menu, table=table.version,
                     at=self.at.isoformat(), **({"switches": list(r.switches)} if r.switches else {}))
            factory = self.session_factory or _ivr_session
            session = factory(self.env, self.route, self.config.menus, table, at=self.at)
            self.outcome = yield from session.run()
        except Exception as exc:
            self.error = exc
            fallback = fail_open_decision(self.env, table)
            log.error("engine.fail_open", error=f"{type(exc).__name__}: {exc}", dialed=self.dialed,
                      stage="session" if self.route is not None else "decide", action=fallback.action,
                      target=fallback.target, why=fallback.why, exc_info=True)
            for cmd in fail_open_commands(self.env, table):
                yield cmd
        return self.outcome


def _ivr_session(env, route, menus, table, *, at):
    from ivr.session import IvrSession
    return IvrSession(env, route, menus, table, at=at)


class OverCapacity(Exception):
    """The call arrived over --max-sessions: it was answered with the fail-open variables only."""


def finish_on_dead_channel(gen: Generator[Command, Response, Any], limit: int = 1000) -> None:
    """Let a flow cut mid-call end as on a dead channel: every pending and further command answered 511.

    The session then ends with what it knew at the cut (the route chosen so far, the menus heard and keys
    pressed), so the record keeps them. Nothing is sent anywhere: the connection is gone.
    """
    if not gen.gi_suspended:             # inspect.getgeneratorstate(gen) != GEN_SUSPENDED, without inspect
        return
    try:
        for _ in range(limit):
            gen.send(CHANNEL_GONE)
    except StopIteration:
        return
    except Exception as exc:                # the flow catches its own errors; this is a last guard
        log.error("engine.cut_flow_error", error=f"{type(exc).__name__}: {exc}")
    gen.close()


# ------------------------------------------------------------------ records

def build_record(flow: CallFlow, *, hungup: bool) -> Any:
    """records.types.CallRecord when that module is there, else a plain dict with the same fields."""
    route, outcome = flow.route, flow.outcome
    final = outcome.route if outcome is not None else route
    fallback = fail_open_decision(flow.env, flow.config.table) if flow.error is not None else None
    if flow.dropped is not None:
        ended = None                      # cut on our side: the dialplan fails open; AMI tells the end
    elif hungup or (outcome is not None and outcome.hungup):
        ended = "ivr_hangup"
    elif flow.error is not None:
        ended = None                      # failed open: the dialplan queues it; AMI tells the end
    elif outcome is not None and outcome.action.value == "hangup":
        ended = "announced"
    elif outcome is not None and outcome.action.value == "callback":
        ended = "callback"
    else:
        ended = None
    if outcome is not None:
        tags = tuple(final.tags)
    elif fallback is not None:            # what the fail-open variables said (HOTLINE_TAGS), "failopen" included
        tags = tuple(fallback.tags.split("+"))
    else:
        tags = tuple(final.tags) if final is not None else ()
    fields = dict(
        uniqueid=call_uniqueid(flow.env),
        dialed=flow.dialed,
        line=final.line if final is not None else (normalize_number(flow.dialed) or flow.dialed),
        caller=flow.caller,
        arrived_at=flow.at,
        category=final.category.value if final is not None else None,
        rule_id=final.rule_id if final is not None else None,
        action=(outcome.action.value if outcome is not None else fallback.action if fallback else None),
        target=(outcome.target if outcome is not None else fallback.target if fallback else None),
        ivr_path=tuple(outcome.ivr_path) if outcome is not None else (),
        tags=tags,
        language=outcome.language if outcome is not None else None,
        outcome=ended,
        table_version=flow.config.table.version,
    )
    try:
        from records.types import CallRecord
    except ImportError:
        return fields
    return CallRecord(**fields)


def call_uniqueid(env: Mapping[str, str]) -> str:
    """The channel's unique id, the record's key. A session without one was never a call Asterisk handed us
    (the FastAGI server refuses such blocks before they reach the engine): it is never recorded."""
    uniqueid = (env.get("uniqueid") or "").strip()
    if not uniqueid:
        raise ValueError("no agi_uniqueid: not a call, not recorded")
    return uniqueid


def build_callback(flow: CallFlow) -> Any:
    """records.types.CallbackRequest for a call whose caller asked to be called back (the number in clear, in
    memory only: the recorder encrypts it before anything reaches disk)."""
    from records.types import CallbackRequest

    outcome = flow.outcome
    return CallbackRequest(uniqueid=call_uniqueid(flow.env), line=outcome.route.line,
                           queue=outcome.target, number=outcome.callback_number, requested_at=flow.at,
                           language=outcome.language)


# ------------------------------------------------------------------ the engine

def call_context(env: Mapping[str, str]) -> dict[str, str]:
    """What every log line of a call carries: its uniqueid and the masked caller."""
    return {"uniqueid": env.get("uniqueid", ""), "caller": mask_number(env.get("callerid"))}


def bind_call_context(env: Mapping[str, str]) -> None:
    """Every log line of this session (this asyncio task) carries the call's uniqueid and masked caller."""
    calllog.bind_contextvars(**call_context(env))


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


class Engine:
    def __init__(self, config: ConfigHolder, *, recorder: Any = None, clock: Callable[[], datetime] = utc_now,
                 allow_test_clock: bool = False, decide_fn: Callable[..., Any] = decide,
                 session_factory: Callable[..., Any] | None = None, switchboard: Any = None) -> None:
        self.config = config
        self.switchboard = switchboard     # ivr.switchboard.SwitchBoard: read per call, never SQL on the loop
        self.recorder = recorder
        self.clock = clock
        self.allow_test_clock = allow_test_clock
        self.decide_fn = decide_fn
        self.session_factory = session_factory
        self.not_recorded = 0          # sessions without a uniqueid: never a call, never a call record

    def fail_open_commands(self, env: Mapping[str, str]) -> list[Command]:
        return fail_open_commands(env, self.config.current.table)

    def _flow(self, env: Mapping[str, str], config: Config, at: datetime,
              history: CallerHistory | None) -> CallFlow:
        switches = self.switchboard.active(at) if self.switchboard is not None else frozenset()
        return CallFlow(env, config, at, history, decide_fn=self.decide_fn, session_factory=self.session_factory,
                        switches=switches)

    def _needs_history(self, config: Config, caller: str | None, method: str = "caller_history") -> bool:
        abuse = config.table.abuse
        return (self.recorder is not None and caller is not None and abuse.max_calls is not None
                and hasattr(self.recorder, method))

    def _history(self, config: Config, caller: str, at: datetime) -> CallerHistory | None:
        """Classic AGI (a process per call remembers no earlier call): the recorder's bounded SQL count."""
        try:
            return self.recorder.caller_history(caller, at, config.table.abuse.per_minutes)
        except Exception as exc:                       # fail open: decide without history
            log.warning("engine.history_unavailable", error=f"{type(exc).__name__}: {exc}")
            return None

    def _counted_history(self, config: Config, env: Mapping[str, str], caller: str,
                         at: datetime) -> CallerHistory | None:
        """FastAGI: the recorder's in-memory count of this caller's recent calls (this call noted there at its
        arrival), no SQL and no thread on the call path (records.caller_counts)."""
        try:
            return self.recorder.note_arrival(caller, (env.get("uniqueid") or "").strip() or None, at,
                                              config.table.abuse.per_minutes)
        except Exception as exc:                       # fail open: decide without history
            log.warning("engine.history_unavailable", error=f"{type(exc).__name__}: {exc}")
            return None

    def _record(self, flow: CallFlow, hungup: bool, submit: Callable[[Any], Any] | None = None) -> list[Any]:
        """Hand the call's records to the recorder: with `submit` (group commit) the futures that resolve once
        they are durable are returned; without, the recorder's synchronous appends are durable on return."""
        pending: list[Any] = []
        if self.recorder is None:
            return pending
        if not (flow.env.get("uniqueid") or "").strip():
            # Not a call Asterisk handed us (the FastAGI server refuses these before the engine; classic AGI
            # run by hand): counted and logged, never a call record under a made-up key.
            self.not_recorded += 1
            log.warning("engine.not_a_call", reason="no agi_uniqueid", effect="no call record",
                        count=self.not_recorded)
            return pending
        try:
            rec = build_record(flow, hungup=hungup)
            if submit is not None:
                pending.append(submit(rec))
            else:
                self.recorder.record_call(rec)
        except Exception as exc:
            log.error("engine.record_failed", error=f"{type(exc).__name__}: {exc}")
        if flow.outcome is not None and flow.outcome.callback_number:
            try:                                     # apart: a failed call record must not cost the callback
                callback = build_callback(flow)
                if submit is not None:
                    pending.append(submit(callback))
                else:
                    self.recorder.record_callback(callback)
            except Exception as exc:
                log.error("engine.record_failed", record="callback", error=f"{type(exc).__name__}: {exc}")
        return pending

    def _log_end(self, flow: CallFlow, hungup: bool, commands: int) -> None:
        """The session already logged its destination; the end of the call is news only when it was cut short
        or failed open (info), otherwise it is a debug line."""
        o = flow.outcome
        notable = flow.error is not None or o is None or hungup or flow.dropped is not None
        fallback = fail_open_decision(flow.env, flow.config.table) if flow.error is not None else None
        (log.info if notable else log.debug)("engine.call_end", action=o.action.value if o else (fallback.action if fallback else None),
                 target=o.target if o else (fallback.target if fallback else None),
                 ivr_path=">".join(o.ivr_path) if o else "",
                 hungup=hungup or bool(o and o.hungup), failed_open=flow.error is not None, commands=commands,
                 **({"cut": flow.dropped} if flow.dropped else {}))

    def _conclude(self, flow: CallFlow | None, env: Mapping[str, str], config: Config, at: datetime,
                  completed: bool, commands: int, cut: str | None = None) -> tuple[CallFlow, bool]:
        """End of a call for both adapters: the flow to record (a fail-open one if none got going), whether the
        caller left before the end, and the closing log line. `cut`: why our side ended the session early."""
        if flow is None:
            flow = self._flow(env, config, at, None)
        flow.dropped = cut
        hungup = not completed or bool(flow.outcome and flow.outcome.hungup)
        self._log_end(flow, hungup, commands)
        return flow, hungup

    # -- FastAGI (the endpoint registered on the AgiApplication)
    async def handle(self, request: Any) -> CallFlow:
        import asyncio                               # here: a classic AGI process never imports it

        env = request.env
        bind_call_context(env)
        config = self.config.current                 # captured: a reload mid-call does not touch this call
        at = self.clock()
        flow: CallFlow | None = None
        gen: Generator[Command, Response, Any] | None = None
        completed = False
        cut: str | None = None
        try:
            if self.allow_test_clock:
                at = test_instant(await request.send(GetVariable(TEST_CLOCK_VARIABLE)), config.table) or at
            caller = caller_number(env)
            history = (self._counted_history(config, env, caller, at)
                       if self._needs_history(config, caller, "note_arrival") else None)
            flow = self._flow(env, config, at, history)
            gen = flow.run()
            cmd = next(gen)
            # The flow runs from the transport's callbacks (AgiRequest.drive). A command still pending when
            # Asterisk closed (AGIEXITONHANGUP: the caller hung up, or the line's engine timeout ran out, and
            # Asterisk sent HANGUP, HANGUP, EOF) is lost; the session still ends with the route chosen so far.
            pending = await request.drive(gen, cmd)
            if pending is not None:
                log.info("engine.agi_closed", hangup_seen=getattr(request, "hangup_seen", False),
                         pending=command_name(pending), seconds=round((self.clock() - at).total_seconds(), 3))
            completed = pending is None
            return flow
        except (*SESSION_CUT, asyncio.CancelledError) as exc:
            # Stalled, reset, junk, or cut by the shutdown drain: the session is over on our side. The flow
            # still ends (as on a dead channel) so the record keeps the route, target and path known now. After
            # Asterisk's HANGUP a reset is Asterisk leaving AGI (our next write met its close), not our cut.
            cut = None if getattr(request, "hangup_seen", False) else type(exc).__name__
            raise
        finally:
            request.writer.close()                   # Asterisk continues the dialplan now; we record after
            if gen is not None:
                finish_on_dead_channel(gen)
            flow, hungup = self._conclude(flow, env, config, at, completed, getattr(request, "commands", 0), cut)
            await self._record_off_loop(flow, hungup)

    async def handle_over_capacity(self, request: Any, *, timeout: float) -> CallFlow:
        """A call over --max-sessions: the fail-open variables within `timeout` (an emergency line: its trunk
        at once), then close; recorded once, with that decision (whether or not the answer got through)."""
        import asyncio

        env = request.env
        bind_call_context(env)
        config = self.config.current
        at = self.clock()
        flow = self._flow(env, config, at, None)
        flow.error = OverCapacity("over --max-sessions")
        try:
            async with asyncio.timeout(timeout):
                for cmd in fail_open_commands(env, config.table):
                    await request.send(cmd)
        except (TimeoutError, *SESSION_CUT) as exc:
            log.warning("fastagi.over_capacity_answer_failed", reason=type(exc).__name__)
        finally:
            request.writer.close()
            self._log_end(flow, False, getattr(request, "commands", 0))
            await self._record_off_loop(flow, False)
        return flow

    async def _record_off_loop(self, flow: CallFlow, hungup: bool) -> None:
        """Durable before the handler ends, as the synchronous append was: the recorder's group committer
        fsyncs the records of calls ending together at once and resolves their futures (no thread hop per
        call). A recorder without `submit` appends in a worker thread (its fsync never on the event loop)."""
        import asyncio

        if self.recorder is None:
            return
        submit = getattr(self.recorder, "submit", None)
        try:
            if submit is None:
                await asyncio.to_thread(self._record, flow, hungup)
                return
            for durable in self._record(flow, hungup, submit):   # resolved by one round, mostly: no gather
                try:
                    await durable
                except Exception as failed:
                    log.error("engine.record_failed", error=f"{type(failed).__name__}: {failed}")
        except asyncio.CancelledError:               # shutdown cut: the committer (or thread) still writes it
            pass

    # -- classic AGI: the same flow over a blocking `send`
    def handle_sync(self, env: Mapping[str, str], send: Callable[[Command], Response]) -> CallFlow:
        config = self.config.current
        at = self.clock()
        flow: CallFlow | None = None
        gen: Generator[Command, Response, Any] | None = None
        completed = False
        cut: str | None = None
        try:
            if self.allow_test_clock:
                at = test_instant(send(GetVariable(TEST_CLOCK_VARIABLE)), config.table) or at
            caller = caller_number(env)
            history = self._history(config, caller, at) if self._needs_history(config, caller) else None
            flow = self._flow(env, config, at, history)
            gen = flow.run()
            cmd = next(gen)
            closed = False
            while True:
                if closed:
                    resp = CHANNEL_GONE
                else:
                    try:
                        resp = send(cmd)
                    except ConnectionError:          # Asterisk closed the pipes (it left AGI): as in handle()
                        closed = True
                        resp = CHANNEL_GONE
                        log.info("engine.agi_closed", pending=command_name(cmd),
                                 seconds=round((self.clock() - at).total_seconds(), 3))
                try:
                    cmd = gen.send(resp)
                except StopIteration:
                    break
            completed = not closed
            return flow
        except SESSION_CUT as exc:
            cut = type(exc).__name__
            raise
        finally:
            if gen is not None:
                finish_on_dead_channel(gen)
            flow, hungup = self._conclude(flow, env, config, at, completed, 0, cut)
            self._record(flow, hungup=hungup)
