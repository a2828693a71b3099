"""ivr.calllog: a classic AGI process logs what the daemon logs, without structlog.

First the renderer itself: the same logger calls rendered by scripts.logsetup's structlog JSON configuration
and by calllog.json_lines give the same objects (bar the timestamp's value). Then one call, 12320 key 1, through
the FastAGI daemon (structlog) and through a real classic AGI process: the same events with the same fields,
every line carries the uniqueid and the masked caller, the number itself appears nowhere."""
from __future__ import annotations

import io
import json
import os
import re
from datetime import datetime, timezone
from pathlib import Path

import pytest

from ivr import calllog
from scripts.logsetup import configure_logging
from tests.test_classic_imports import call_classic as classic_call
from tests.test_fastagi_support import WORKDAY_10H, call, running_engine

ROOT = Path(__file__).resolve().parents[1]
CALLER = "4951234567"                     # the emulator's caller
MASKED = "495*****67"
ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


class Opaque:
    def __repr__(self) -> str:
        return "<opaque>"


def _emit_samples() -> None:
    log = calllog.get_logger()
    session = calllog.get_logger("ivr.session").bind(uniqueid="u-1", caller="13800138000", line="12320")
    with calllog.bound_contextvars(uniqueid="u-ctx", caller=calllog.mask_personal_data(None, "", {
            "caller": "13912345678"})["caller"]):
        log.info("engine.route", dialed="12320", at=datetime(2026, 11, 26, 2, tzinfo=timezone.utc).isoformat(),
                 switches=["force-night"], caller_name="Wang 138 0013 8000")
        session.info("ivr.key", menu="expert-12320", key="1", target=None, attempt=2, ok=True, ratio=0.5)
        log.debug("engine.call_end", action="queue", ivr_path="expert-12320>1")
        log.warning("classic.switches_unavailable", error="OperationalError: x", value=Opaque())
        try:
            raise ValueError("boom 13800138000")
        except ValueError:
            log.exception("config.reload_refused", error="boom")
            log.error("engine.fail_open", error="ValueError: boom", exc_info=True)
        log.error("engine.record_failed", error="no exception at hand", exc_info=True)


def _lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines()]


@pytest.mark.parametrize("level", ["debug", "info", "error"])
def test_json_lines_render_what_the_structlog_configuration_renders(level):
    daemon = io.StringIO()
    configure_logging(level=level, fmt="json", stream=daemon)
    _emit_samples()
    classic = io.StringIO()
    with calllog.json_lines(classic, level):
        _emit_samples()
    ours, theirs = _lines(classic.getvalue()), _lines(daemon.getvalue())
    assert len(ours) == len(theirs) >= 2
    for mine, reference in zip(ours, theirs):
        assert ISO_UTC.match(mine.pop("timestamp")) and ISO_UTC.match(reference.pop("timestamp"))
        assert mine == reference
    assert all(line["caller"] in ("138****8000", "139****5678") for line in ours)
    assert "Traceback" in classic.getvalue()
    assert ('"value":"<opaque>"' in classic.getvalue()) == (level != "error")      # repr(), as structlog's


def test_outside_json_lines_the_facade_is_structlog():
    from structlog.testing import capture_logs

    with capture_logs() as captured:
        calllog.get_logger().info("engine.route", dialed="12320")
        calllog.get_logger("ivr.session").bind(uniqueid="u-1").warning("ivr.menu_missing", menu="x")
    assert captured == [{"dialed": "12320", "event": "engine.route", "log_level": "info"},
                        {"uniqueid": "u-1", "menu": "x", "event": "ivr.menu_missing", "log_level": "warning"}]


def test_a_bad_level_logs_at_info_rather_than_failing_the_call():
    out = io.StringIO()
    with calllog.json_lines(out, "loud"):
        calllog.get_logger().debug("engine.call_end")
        calllog.get_logger().info("engine.route")
    assert [line["event"] for line in _lines(out.getvalue())] == ["engine.route"]


# ------------------------------------------------------------------ the same call, daemon and classic

def _daemon_lines(dialed: str, dtmf: list[str]) -> list[dict]:
    import asyncio

    out = io.StringIO()
    configure_logging(level="debug", fmt="json", stream=out)

    async def one_call():
        async with running_engine() as (server, _engine):
            transcript = await call(server, dialed, dtmf, at=WORKDAY_10H)
            assert transcript.variables["HOTLINE_TARGET"] == "expert-12320"
    asyncio.run(one_call())
    return _lines(out.getvalue())


def _classic_lines(tmp_path: Path, dialed: str, dtmf: list[str]) -> tuple[str, list[dict]]:
    from records.switches import SwitchStore

    url = f"sqlite:///{tmp_path / 'records.sqlite3'}"
    SwitchStore.for_url(url).flip("force-night", False, by="admin", via="cli", why="test",
                                  at=datetime.now(timezone.utc))      # a records database, no switch on
    env = dict(os.environ, PYTHONPATH=str(ROOT), HOTLINE_ALLOW_TEST_CLOCK="1", HOTLINE_LOG_LEVEL="debug",
               HOTLINE_DB_URL=url, HOTLINE_CONFIG_SNAPSHOT=str(tmp_path / "snapshot.json"))
    texts = []
    for _ in range(2):                                     # the second call routes from the snapshot
        channel, err = classic_call(env, dialed, dtmf)
        texts.append(err)
        assert channel.t.variables["HOTLINE_TARGET"] == "expert-12320"
    return texts[1], _lines(texts[1])


def test_a_classic_call_logs_the_daemons_events_with_uniqueid_and_masked_caller(tmp_path):
    daemon = [line for line in _daemon_lines("12320", ["1"]) if not line["event"].startswith("fastagi.")]
    text, classic = _classic_lines(tmp_path, "12320", ["1"])
    assert [line["event"] for line in classic] == [line["event"] for line in daemon]
    assert {"engine.route", "ivr.menu", "ivr.key", "ivr.destination", "engine.call_end"} <= {
        line["event"] for line in classic}
    for mine, reference in zip(classic, daemon):
        assert sorted(mine) == sorted(reference), mine["event"]
        assert mine["uniqueid"] and mine["caller"] == MASKED == reference["caller"]
        for key in ("line", "rule", "menu", "key", "target", "action", "category", "level"):
            assert mine.get(key) == reference.get(key), (mine["event"], key)
    assert CALLER not in text


def test_the_timestamp_is_now_in_iso_utc_with_microseconds():
    before = datetime.now(timezone.utc)
    stamp = calllog.utc_timestamp()
    after = datetime.now(timezone.utc)
    assert ISO_UTC.match(stamp)
    assert before.replace(microsecond=0) <= datetime.fromisoformat(stamp) <= after


def test_the_context_merge_reads_what_structlogs_own_merge_reads():
    # calllog.merge_contextvars reads structlog's context variables one by one instead of copying the context:
    # what it adds must be what structlog's merge adds, bound, rebound, unbound and in another context alike.
    import contextvars

    import structlog

    def both() -> tuple[dict, dict]:
        return (calllog.merge_contextvars(None, "info", {"event": "e", "line": "12345"}),
                structlog.contextvars.merge_contextvars(None, "info", {"event": "e", "line": "12345"}))

    def run() -> None:
        structlog.contextvars.clear_contextvars()
        mine, theirs = both()
        assert mine == theirs == {"event": "e", "line": "12345"}
        structlog.contextvars.bind_contextvars(uniqueid="u-1", caller="139****0000", line="other")
        mine, theirs = both()
        assert mine == theirs and mine["uniqueid"] == "u-1" and mine["line"] == "12345"
        structlog.contextvars.unbind_contextvars("caller")
        mine, theirs = both()
        assert mine == theirs and "caller" not in mine
        structlog.contextvars.clear_contextvars()
        assert both()[0] == {"event": "e", "line": "12345"}
    contextvars.copy_context().run(run)
    structlog.contextvars.bind_contextvars(uniqueid="outside")
    try:
        assert contextvars.Context().run(both)[0] == {"event": "e", "line": "12345"}   # a fresh context: nothing
    finally:
        structlog.contextvars.clear_contextvars()
