"""structlog configured once, at the edge: JSON lines for machines, readable lines on a terminal."""
from __future__ import annotations

import logging
import sys
from typing import Any

import structlog

# The masking rule and its keys live with the call path's logging facade (a classic AGI process renders the same
# lines without structlog); this configuration applies them to every event.
from ivr.calllog import PERSONAL_KEYS, mask_personal_data  # noqa: F401  (re-exported: the one rule)


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


def configure_logging(level: str = "info", fmt: str = "auto", stream: Any = None) -> None:
    stream = stream or sys.stderr
    use_console = fmt == "console" or (fmt == "auto" and hasattr(stream, "isatty") and stream.isatty())
    renderer: Any = structlog.dev.ConsoleRenderer() if use_console else _json_renderer()
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            mask_personal_data,
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(file=stream),
        cache_logger_on_first_use=False,
    )
