"""structlog configured once, at the edge: JSON lines for machines, readable lines on a terminal."""
from __future__ import annotations

import logging
import sys
from typing import Any

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
