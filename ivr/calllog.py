"""The call path's loggers: structlog in the FastAGI daemon, the same JSON lines without structlog in classic AGI.

Why a facade: the house rule is structlog (bound to the call's uniqueid, one event per decision, callers
masked), but importing structlog costs a classic AGI process, one per call, more than the rest of its call.
The modules a call runs through (ivr.engine, ivr.session, ivr.switchboard, ivr.classic) log through here:
- by default every event goes to structlog, looked up when it is emitted, so the daemon (configured by
  scripts.logsetup) and the tests (capture_logs, contextvars, reconfiguration) see exactly what they saw when
  these modules called structlog themselves; `bind()` then returns structlog's own bound logger;
- inside `json_lines(stream, level)` (ivr.classic's main) they go to `JsonLines` instead, which writes what
  scripts.logsetup's JSON configuration renders: the bound fields, the event's, "event", the context bound with
  `bound_contextvars` (uniqueid, masked caller), "level", "timestamp" (ISO, UTC, "Z"), the personal keys masked
  by the same rule (`mask_personal_data`), exc_info as "exception", values JSON cannot hold as repr(). Events
  under the level are dropped before anything is built. structlog is not imported in such a process.
tests/test_calllog.py runs the same call through both and compares event names, fields and masking.
"""
from __future__ import annotations

import contextlib
import contextvars
import json
import sys
import time
from typing import Any, Iterator, Mapping, TextIO

from routing.privacy import mask_text

# Event keys that may carry a caller's number or caller-controlled text (a caller name can be the number); their
# values are masked, by the one rule of routing.privacy, before any renderer sees them.
PERSONAL_KEYS = frozenset({"caller", "callerid", "caller_number", "agi_callerid", "calleridnum", "from_number",
                           "connectedlinenum", "phone", "caller_name", "callerid_name", "calleridname",
                           "agi_calleridname", "connectedlinename"})

LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40, "critical": 50}
_METHOD_LEVEL = {"debug": "debug", "info": "info", "warning": "warning", "warn": "warning", "error": "error",
                 "exception": "error", "critical": "critical"}


_STAMP: tuple[int, str] = (-1, "")       # (POSIX second, its ISO text): one strftime per second, not per line


def utc_timestamp() -> str:
    """Now as ISO 8601 in UTC with microseconds and "Z" (2026-12-01T18:01:55.674212Z): every line's "timestamp",
    in both backends. A tenth of the cost of datetime.now().isoformat(), which the call path pays per line."""
    global _STAMP
    now = time.time()
    second = int(now)
    stamp = _STAMP                        # one read: another thread may replace it meanwhile
    if stamp[0] != second:
        stamp = _STAMP = (second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)))
    return f"{stamp[1]}.{int((now - second) * 1e6):06d}Z"


def add_timestamp(_logger: Any, _name: str, event: dict[str, Any]) -> dict[str, Any]:
    """A structlog processor: `utc_timestamp()` as "timestamp" (what TimeStamper(fmt="iso", utc=True) writes)."""
    event["timestamp"] = utc_timestamp()
    return event


def merge_contextvars(_logger: Any, _name: str, event: dict[str, Any]) -> dict[str, Any]:
    """structlog.contextvars.merge_contextvars without its copy of the whole context per line: the variables
    structlog's bind_contextvars made are read one by one (a third of the cost on the call path)."""
    made = _CONTEXT_VARS if _CONTEXT_VARS is not None else _structlog_contextvars()
    if made is None:
        return _structlog().contextvars.merge_contextvars(_logger, _name, event)
    for name, var in tuple(made.items()):
        value = var.get()
        if value is not Ellipsis:
            event.setdefault(name[_PREFIX_LEN:], value)
    return event


_PREFIX_LEN = len("structlog_")
_CONTEXT_VARS: dict[str, contextvars.ContextVar] | None = None


def _structlog_contextvars() -> dict[str, contextvars.ContextVar] | None:
    """structlog's own map of the context variables its bind_contextvars makes (an unbound one reads Ellipsis,
    as structlog reads them), or None if this structlog keeps them otherwise: then its own merge is used."""
    global _CONTEXT_VARS
    module = _structlog().contextvars
    made = getattr(module, "_CONTEXT_VARS", None)
    if isinstance(made, dict) and getattr(module, "STRUCTLOG_KEY_PREFIX", "") == "structlog_":
        _CONTEXT_VARS = made
    return _CONTEXT_VARS


def mask_personal_data(_logger: Any, _name: str, event: dict[str, Any]) -> dict[str, Any]:
    """A structlog processor (scripts.logsetup) and JsonLines' masking step."""
    for key in PERSONAL_KEYS.intersection(event):
        value = event[key]
        if isinstance(value, str):
            event[key] = mask_text(value)
    return event


class JsonLines:
    """One JSON object per event on `stream`, as scripts.logsetup's structlog JSON renders it."""

    def __init__(self, stream: TextIO, level: str = "info") -> None:
        self.stream = stream
        self.threshold = LEVELS.get(level.lower(), LEVELS["info"])   # a bad level must not cost the call

    def emit(self, method: str, bound: Mapping[str, Any], event: str, kw: dict[str, Any]) -> None:
        level = _METHOD_LEVEL[method]
        if LEVELS[level] < self.threshold:
            return
        if method == "exception":
            kw.setdefault("exc_info", True)
        fields = {**bound, **kw, "event": event}
        for key, value in (_CONTEXT.get() or {}).items():
            fields.setdefault(key, value)
        fields["level"] = level
        fields["timestamp"] = utc_timestamp()
        mask_personal_data(None, method, fields)
        exc_info = _exc_info(fields.pop("exc_info", None))
        if exc_info is not None:
            fields["exception"] = _format_exception(exc_info)
        self.stream.write(json.dumps(fields, ensure_ascii=False, separators=(",", ":"), default=_fallback) + "\n")
        self.stream.flush()


def _exc_info(value: Any) -> tuple | None:
    if isinstance(value, BaseException):
        return (type(value), value, value.__traceback__)
    if isinstance(value, tuple) and len(value) == 3 and isinstance(value[1], BaseException):
        return value
    if value:
        current = sys.exc_info()
        return None if current[1] is None else current
    return None


def _format_exception(exc_info: tuple) -> str:
    import traceback                      # here: only a failing call pays for it

    return "".join(traceback.format_exception(*exc_info)).rstrip("\n")


def _fallback(value: Any) -> Any:
    try:
        return value.__structlog__()
    except AttributeError:
        return repr(value)


_writer: JsonLines | None = None          # None: structlog
_CONTEXT: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar("hotline_calllog", default=None)


def _structlog() -> Any:
    import structlog                      # the daemon has it already; a classic process never gets here

    return structlog


_CONFIG: Any = None                       # structlog's configuration object, once found


def _configuration() -> tuple:
    """The objects structlog.configure() replaces (compared by identity). Read from structlog's configuration
    object when it has the attributes (get_config() builds a dict per call: a fifth of an event's cost)."""
    global _CONFIG
    config = _CONFIG
    if config is None:
        config = getattr(getattr(_structlog(), "_config", None), "_CONFIG", None)
        if not all(hasattr(config, a) for a in ("default_processors", "logger_factory", "default_wrapper_class",
                                                 "default_context_class")):
            public = _structlog().get_config()
            return (public["processors"], public["logger_factory"], public["wrapper_class"], public["context_class"])
        _CONFIG = config
    return (config.default_processors, config.logger_factory, config.default_wrapper_class,
            config.default_context_class)


class Logger:
    """What modules hold (`log = get_logger()`): the backend is chosen per event, not at import."""

    __slots__ = ("name", "_bound", "_made", "_made_for")

    def __init__(self, name: str | None = None, bound: Mapping[str, Any] | None = None) -> None:
        self.name = name
        self._bound = dict(bound or {})
        self._made: Any = None           # structlog's logger (with `_bound`) built from the configuration in `_made_for`
        self._made_for: tuple = ()

    def _logger(self) -> Any:
        """structlog's logger for the current configuration, with this logger's bound fields, built once per
        configuration: structlog's lazy proxy (cache_logger_on_first_use off) builds a new one, and its output
        logger, for every event, a third of a call's logging cost. A reconfiguration (scripts.logsetup, the
        tests' capture_logs) replaces these objects, so it is seen at the next event."""
        key = _configuration()
        made_for = self._made_for
        if not (made_for and made_for[0] is key[0] and made_for[1] is key[1] and made_for[2] is key[2]
                and made_for[3] is key[3]):
            proxy = _structlog().get_logger(*([self.name] if self.name else []))
            self._made, self._made_for = proxy.bind(**self._bound), key
        return self._made

    def bind(self, **kw: Any) -> Any:
        if _writer is None:
            return self._logger().bind(**kw)
        return Logger(self.name, {**self._bound, **kw})

    def _emit(self, method: str, event: str, kw: dict[str, Any]) -> None:
        writer = _writer
        if writer is not None:
            writer.emit(method, self._bound, event, kw)
            return
        getattr(self._logger(), method)(event, **kw)

    def debug(self, event: str, **kw: Any) -> None:
        self._emit("debug", event, kw)

    def info(self, event: str, **kw: Any) -> None:
        self._emit("info", event, kw)

    def warning(self, event: str, **kw: Any) -> None:
        self._emit("warning", event, kw)

    warn = warning

    def error(self, event: str, **kw: Any) -> None:
        self._emit("error", event, kw)

    def exception(self, event: str, **kw: Any) -> None:
        self._emit("exception", event, kw)

    def critical(self, event: str, **kw: Any) -> None:
        self._emit("critical", event, kw)


def get_logger(name: str | None = None) -> Logger:
    return Logger(name)


def bind_contextvars(**kw: Any) -> None:
    """Context for every later event of this task (structlog.contextvars.bind_contextvars in the daemon)."""
    if _writer is None:
        _structlog().contextvars.bind_contextvars(**kw)
    else:
        _CONTEXT.set({**(_CONTEXT.get() or {}), **kw})


@contextlib.contextmanager
def bound_contextvars(**kw: Any) -> Iterator[None]:
    """Context for the events inside the block, as it was before afterwards."""
    if _writer is None:
        with _structlog().contextvars.bound_contextvars(**kw):
            yield
        return
    token = _CONTEXT.set({**(_CONTEXT.get() or {}), **kw})
    try:
        yield
    finally:
        _CONTEXT.reset(token)


@contextlib.contextmanager
def json_lines(stream: TextIO, level: str = "info") -> Iterator[JsonLines]:
    """Inside the block every event of this process goes to `stream` as JSON lines, without structlog."""
    global _writer
    previous, _writer = _writer, JsonLines(stream, level)
    try:
        yield _writer
    finally:
        _writer = previous
