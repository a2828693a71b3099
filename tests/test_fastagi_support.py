"""Shared harness for the FastAGI/engine tests (no tests here): a real server on 127.0.0.1:0 with the shipped
table and menus, the Asterisk emulator as the caller, and the `events` fixture (log events as dicts)."""
from __future__ import annotations

import contextlib
import functools
import logging
from pathlib import Path
from typing import Any, AsyncIterator

import pytest
import structlog

from ivr.emulator import CallTranscript, place_call
from ivr.engine import Config, ConfigHolder, Engine, load_config
from ivr.fastagi import FastAgiServer, ServerLimits, build_server

ROOT = Path(__file__).resolve().parents[1]
TABLE = ROOT / "conf" / "routing.yaml"
MENUS = ROOT / "conf" / "ivr.yaml"
CALL_TIMEOUT = 10.0

IN_TRANSITION = "2021-09-10T10:00:00+08:00"    # a Friday, working day, inside 2021-09-01..2021-10-31
WORKDAY_10H = "2026-11-26T10:00:00+08:00"      # a Thursday (working day), 10:00 Shanghai: office hours
HOLIDAY_3H = "2026-02-17T03:00:00+08:00"       # Spring Festival, 03:00


@functools.lru_cache(maxsize=1)
def shipped_config() -> Config:
    return load_config(TABLE, MENUS)


@contextlib.asynccontextmanager
async def running_engine(*, limits: ServerLimits | None = None, holder: ConfigHolder | None = None,
                         allow_test_clock: bool = True, **engine_kw: Any) -> AsyncIterator[tuple[FastAgiServer, Engine]]:
    holder = holder or ConfigHolder(shipped_config(), TABLE, MENUS)
    engine = Engine(holder, allow_test_clock=allow_test_clock, **engine_kw)
    server = build_server(engine, port=0, limits=limits or ServerLimits(env_timeout=2, reply_timeout=5,
                                                                         drain_timeout=2))
    await server.start()
    try:
        yield server, engine
    finally:
        await server.shutdown(drain_timeout=2)


async def call(server: FastAgiServer, dialed: str, dtmf: list[str] | tuple[str, ...] = (), *,
               at: str | None = None, **kw: Any) -> CallTranscript:
    variables = dict(kw.pop("variables", {}))
    if at is not None:
        variables["HOTLINE_AT"] = at
    return await place_call("127.0.0.1", server.port, dialed=dialed, dtmf=dtmf, variables=variables,
                            timeout=kw.pop("timeout", CALL_TIMEOUT), **kw)


@pytest.fixture
def events():
    """Log events as dicts, with the contextvars merged in (the uniqueid binding is what we check)."""
    captured: list[dict] = []

    def sink(_logger, _name, event):
        captured.append(dict(event))
        raise structlog.DropEvent
    old = structlog.get_config()
    structlog.configure(processors=[structlog.contextvars.merge_contextvars, structlog.processors.add_log_level,
                                    sink], wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG),
                        cache_logger_on_first_use=False)
    yield captured
    structlog.configure(**old)
