"""structlog configured once, at the edge: JSON lines for machines, readable lines on a terminal."""
from __future__ import annotations

import atexit
import logging
import sys
import threading
from typing import Any, TextIO

import structlog

# The masking rule and its keys live with the call path's logging facade (a classic AGI process renders the same
# lines without structlog); this configuration applies them to every event.
from ivr.calllog import PERSONAL_KEYS, mask_personal_data  # noqa: F401  (re-exported: the one rule)
from ivr.calllog import add_timestamp, merge_contextvars


def _json_renderer() -> Any:
    """Compact JSON lines (no blanks after `:` and `,`); rendered by orjson when installed, faster than the stdlib
    encoder on the call path."""
    try:
        import orjson
    except ImportError:
        return structlog.processors.JSONRenderer(ensure_ascii=False, separators=(",", ":"))
    options = orjson.OPT_NON_STR_KEYS

    def dumps(event: dict[str, Any], default: Any = None, **_: Any) -> str:
        return orjson.dumps(event, default=default, option=options).decode()
    return structlog.processors.JSONRenderer(serializer=dumps)


def _format_exc_info(logger: Any, name: str, event: dict[str, Any]) -> dict[str, Any]:
    """structlog's format_exc_info, asked only by the lines that carry exc_info (it costs every line otherwise)."""
    if "exc_info" not in event:
        return event
    return structlog.processors.format_exc_info(logger, name, event)


_OUTPUT: dict[str, Any] = {}             # the stream of the last configure_logging, and whether it is a terminal


def configure_logging(level: str = "info", fmt: str = "auto", stream: Any = None) -> None:
    stream = stream or sys.stderr
    use_console = fmt == "console" or (fmt == "auto" and hasattr(stream, "isatty") and stream.isatty())
    renderer: Any = structlog.dev.ConsoleRenderer() if use_console else _json_renderer()
    # structlog's own merge_contextvars, add_log_level and TimeStamper(fmt="iso", utc=True) write the same keys;
    # calllog's first and third do it for a fraction of the cost, per line on the call path (make bench).
    # WriteLogger: one write and one flush per line, as PrintLogger, without print()'s machinery.
    structlog.configure(
        processors=[
            merge_contextvars,
            structlog.processors.add_log_level,
            add_timestamp,
            mask_personal_data,
            _format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.WriteLoggerFactory(file=stream),
        cache_logger_on_first_use=False,
    )
    _OUTPUT.update(stream=stream, console=use_console)


class BatchedLines:
    """A structlog logger (what a logger factory makes) that writes debug and info lines in batches.

    Why: each line written and flushed on its own is a write() system call, some 10 us of CPU on our VM, more
    than the rest of the line; `hotline serve` writes three info lines per call. Lines wait here at most
    `interval` seconds, or less once `max_bytes` gather, and a daemon thread writes them: the event loop only
    appends to a list. A warning or worse is written at once, after the lines before it, so that what went
    wrong is on disk when it is told. At exit (atexit) everything is written. What a SIGKILL can cost: the info
    lines of the last `interval`.
    """

    def __init__(self, stream: TextIO, interval: float = 0.1, max_bytes: int = 64 * 1024) -> None:
        self._stream = stream
        self._interval = interval
        self._max = max_bytes
        self._lines: list[str] = []
        self._size = 0
        self._lock = threading.Lock()            # the list; held for an append, never for a write
        self._writing = threading.Lock()         # one writer at a time, lines in the order they came
        self._due = threading.Event()            # max_bytes gathered: the flusher writes now
        self._flusher: threading.Thread | None = None
        atexit.register(self.flush)

    def msg(self, message: str) -> None:
        with self._lock:
            self._lines.append(message)
            self._size += len(message)
            full = self._size >= self._max
            if self._flusher is None:
                self._start()
        if full:
            self._due.set()

    def urgent(self, message: str) -> None:
        with self._writing:
            with self._lock:
                self._lines.append(message)
            self._write()

    debug = info = log = msg
    warning = warn = error = err = critical = fatal = exception = failure = urgent

    def flush(self) -> None:
        with self._writing:
            self._write()

    def _write(self) -> None:
        with self._lock:
            lines, self._lines, self._size = self._lines, [], 0
        if not lines:
            return
        try:
            self._stream.write("\n".join(lines) + "\n")
            self._stream.flush()
        except (OSError, ValueError):     # a closed or full log stream must never cost a call
            pass

    def _start(self) -> None:
        self._flusher = threading.Thread(target=self._run, name="log-flush", daemon=True)
        self._flusher.start()

    def _run(self) -> None:
        while True:
            self._due.wait(self._interval)
            self._due.clear()
            self.flush()


def batch_log_lines(interval: float = 0.1) -> None:
    """For the daemon (`hotline serve`): from here on, debug and info lines reach the stream of the last
    configure_logging in batches (BatchedLines). A terminal keeps every line at once."""
    stream = _OUTPUT.get("stream")
    if stream is None or _OUTPUT.get("console"):
        return
    batched = BatchedLines(stream, interval)
    structlog.configure(logger_factory=lambda *args: batched)
