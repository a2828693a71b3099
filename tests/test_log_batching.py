"""`hotline serve` writes its debug and info lines in batches (scripts.logsetup.BatchedLines): a warning or worse
at once, after the lines before it; the rest within the interval, and everything at exit."""
from __future__ import annotations

import io
import json
import subprocess
import sys
import time
from pathlib import Path

import structlog

from ivr import calllog
from scripts.logsetup import BatchedLines, batch_log_lines, configure_logging

ROOT = Path(__file__).resolve().parents[1]


def events(text: str) -> list[str]:
    return [json.loads(line)["event"] for line in text.splitlines()]


def test_info_lines_wait_for_the_interval_and_a_warning_writes_them_all_in_order():
    out = io.StringIO()
    old = structlog.get_config()
    try:
        configure_logging("info", "json", out)
        batch_log_lines(interval=30)                 # no timed flush within this test
        log = calllog.get_logger()
        log.info("first")
        log.info("second")
        assert out.getvalue() == ""                  # batched: not one write per line
        log.warning("trouble")
        assert events(out.getvalue()) == ["first", "second", "trouble"]
        log.info("after")
        log.error("worse")
        assert events(out.getvalue()) == ["first", "second", "trouble", "after", "worse"]
    finally:
        structlog.configure(**old)


def test_batched_lines_reach_the_stream_within_the_interval():
    out = io.StringIO()
    lines = BatchedLines(out, interval=0.05)
    lines.info('{"event":"a"}')
    deadline = time.monotonic() + 5
    while not out.getvalue() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert out.getvalue() == '{"event":"a"}\n'


def test_a_full_batch_is_written_without_waiting_for_the_interval():
    out = io.StringIO()
    lines = BatchedLines(out, interval=30, max_bytes=100)
    for n in range(10):
        lines.info(f'{{"event":"line-{n}"}}')     # 18 characters each: the sixth reaches 100
    deadline = time.monotonic() + 5
    while len(out.getvalue().splitlines()) < 6 and time.monotonic() < deadline:
        time.sleep(0.01)
    written = events(out.getvalue())
    assert len(written) >= 6 and written == [f"line-{n}" for n in range(len(written))]


def test_a_terminal_keeps_every_line_at_once():
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True
    out = Terminal()
    old = structlog.get_config()
    try:
        configure_logging("info", "auto", out)
        batch_log_lines(interval=30)
        calllog.get_logger().info("shown")
        assert "shown" in out.getvalue()
    finally:
        structlog.configure(**old)


def test_what_is_batched_is_written_when_the_process_exits():
    code = ("from scripts.logsetup import configure_logging, batch_log_lines; from ivr import calllog; "
            "configure_logging('info', 'json'); batch_log_lines(interval=30); "
            "[calllog.get_logger().info('call', n=n) for n in range(3)]")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert [json.loads(line)["n"] for line in done.stderr.splitlines()] == [0, 1, 2]
