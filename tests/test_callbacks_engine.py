"""End to end: a caller asks for a callback in the shipped main menu (option 6) over real FastAGI; the engine
records the call and the callback request; the request reaches SQL encrypted and an agent can take it. A recorder
that fails never affects the call."""
from __future__ import annotations

import io
from datetime import datetime

from cryptography.fernet import Fernet

from records import callbacks
from records.callbacks import CallbackCipher
from records.db import make_engine
from records.recorder import CallRecorder
from scripts.logsetup import configure_logging
from tests.db_fixtures import db_url  # noqa: F401
from tests.test_callbacks_records import database_text
from tests.test_fastagi_support import WORKDAY_10H, call, running_engine

CALLBACK_KEY = Fernet.generate_key()
CALLER = "13812345678"
ENTERED = "13900001111"


async def test_a_callback_request_in_the_main_menu_is_recorded_and_can_be_taken(db_url, tmp_path):  # noqa: F811
    logs = io.StringIO()
    configure_logging(level="debug", fmt="json", stream=logs)
    recorder = CallRecorder(db_url, tmp_path / "spool", b"hash-key", auto_upgrade=True, callback_key=CALLBACK_KEY)
    try:
        async with running_engine(recorder=recorder) as (server, _):
            entered = await call(server, "12345", ["6", f"{ENTERED}#", "1"], at=WORKDAY_10H, caller=CALLER,
                                 uniqueid="1764122400.1")
            own = await call(server, "12345", ["6", "#", "1"], at=WORKDAY_10H, caller=CALLER,
                             uniqueid="1764122400.2")
            queued = await call(server, "12345", ["2"], at=WORKDAY_10H, caller=CALLER, uniqueid="1764122400.3")
        assert entered.variables["HOTLINE_ACTION"] == own.variables["HOTLINE_ACTION"] == "callback"
        assert queued.variables["HOTLINE_ACTION"] == "queue"
        spooled = b"".join(p.read_bytes() for p in (tmp_path / "spool").rglob("*") if p.is_file())
        assert ENTERED.encode() not in spooled and CALLER.encode() not in spooled
        assert recorder.flush() == 5                  # three calls, two callback requests
    finally:
        recorder.close()

    engine = make_engine(db_url)
    try:
        pending = callbacks.list_callbacks(engine, status="pending")
        assert [(c.uniqueid, c.line, c.queue, c.number_masked, c.language) for c in pending] == [
            ("1764122400.1", "12345", "general-12345", "139****1111", "zh"),
            ("1764122400.2", "12345", "general-12345", "138****5678", "zh")]
        assert pending[0].requested_at == datetime.fromisoformat(WORKDAY_10H)
        assert ENTERED not in database_text(db_url) and CALLER not in database_text(db_url)
        _, number = callbacks.take(engine, "1764122400.1", agent="agent-07", at=pending[0].requested_at,
                                   cipher=CallbackCipher(CALLBACK_KEY))
        assert number == ENTERED
        _, number = callbacks.take(engine, "1764122400.2", agent="agent-07", at=pending[0].requested_at,
                                   cipher=CallbackCipher(CALLBACK_KEY))
        assert number == CALLER
    finally:
        engine.dispose()
    assert ENTERED not in logs.getvalue() and CALLER not in logs.getvalue()


class FailingRecorder:
    """record_call works, record_callback raises: the call goes on, the call record is kept."""

    def __init__(self) -> None:
        self.calls: list = []

    def record_call(self, rec) -> None:
        self.calls.append(rec)

    def record_callback(self, rec) -> None:
        raise OSError("disk on fire")


class CallsOnlyRecorder:
    """An older recorder without record_callback, whose record_call raises too."""

    def record_call(self, rec) -> None:
        raise RuntimeError("database gone")


async def test_a_failing_recorder_never_affects_the_call():
    failing, calls_only = FailingRecorder(), CallsOnlyRecorder()
    logs = io.StringIO()
    configure_logging(level="debug", fmt="json", stream=logs)
    for recorder in (failing, calls_only):
        async with running_engine(recorder=recorder) as (server, _):
            t = await call(server, "12345", ["6", f"{ENTERED}#", "1"], at=WORKDAY_10H, caller=CALLER,
                           uniqueid="1764122400.9")
        assert (t.variables["HOTLINE_ACTION"], t.variables["HOTLINE_TARGET"]) == ("callback", "general-12345")
        assert not t.hungup and t.closed_by == "server" and not t.error
    (rec,) = failing.calls
    assert rec.outcome == "callback" and rec.uniqueid == "1764122400.9"
    failures = [line for line in logs.getvalue().splitlines() if "engine.record_failed" in line]
    assert len(failures) == 3          # the callback twice (OSError, no record_callback), the call record once
    assert ENTERED not in logs.getvalue()
