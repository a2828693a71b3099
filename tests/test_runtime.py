"""scripts.runtime: the event loop chosen and the open-files limit fitted to the session cap (issue 14)."""
from __future__ import annotations

import asyncio
import json
import resource
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from scripts import runtime

ROOT = Path(__file__).resolve().parents[1]


async def _loop_module() -> str:
    return type(asyncio.get_running_loop()).__module__


def test_auto_takes_uvloop_and_asyncio_forces_the_standard_loop():
    pytest.importorskip("uvloop")
    assert runtime.run(_loop_module(), "auto").startswith("uvloop")
    assert runtime.run(_loop_module(), "asyncio").startswith("asyncio")


def test_an_unknown_loop_name_is_refused_with_the_choices():
    coro = _loop_module()
    with pytest.raises(ValueError, match="auto, asyncio, uvloop"):
        runtime.run(coro, "trio")
    coro.close()


def _in_child(soft: int, hard: int, body: str) -> str:
    """Run `body` in a fresh interpreter whose RLIMIT_NOFILE is (soft, hard); its stdout."""
    script = textwrap.dedent(f"""
        import resource, structlog
        resource.setrlimit(resource.RLIMIT_NOFILE, ({soft}, {hard}))
        events = []
        structlog.configure(processors=[lambda _l, _n, e: events.append(e) or e, structlog.processors.KeyValueRenderer()],
                            logger_factory=structlog.PrintLoggerFactory(open("/dev/null", "w")))
        from scripts import runtime
    """) + textwrap.dedent(body)
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


HARD = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
needs_room = pytest.mark.skipif(HARD != resource.RLIM_INFINITY and HARD < 8000,
                                reason=f"this machine's hard open-files limit ({HARD}) is below the test's 8,000")


@needs_room
def test_the_soft_limit_is_raised_so_the_cap_fits():
    out = _in_child(1024, 8000, """
        fits = runtime.ensure_descriptors(6000, 1024)
        print(fits, resource.getrlimit(resource.RLIMIT_NOFILE)[0], [e["event"] for e in events])
    """)
    assert out == f"6000 {6000 + 1024 + runtime.SPARE_DESCRIPTORS} ['engine.descriptors_raised']"


def test_a_hard_limit_too_small_lowers_the_cap_and_says_what_limits_it():
    out = _in_child(1024, 4096, """
        fits = runtime.ensure_descriptors(6000, 1024)
        (warning,) = [e for e in events if e["event"] == "engine.descriptors_limit_the_cap"]
        print(fits, resource.getrlimit(resource.RLIMIT_NOFILE)[0], warning["calls_that_fit"], warning["hard_limit"])
    """)
    fits = 4096 - 1024 - runtime.SPARE_DESCRIPTORS
    assert out == f"{fits} 4096 {fits} 4096"


@needs_room
def test_a_limit_that_already_fits_is_left_alone():
    out = _in_child(8000, 8000, """
        print(runtime.ensure_descriptors(6000, 1024), resource.getrlimit(resource.RLIMIT_NOFILE)[0], len(events))
    """)
    assert out == "6000 8000 0"


def test_the_settled_heap_collects_the_young_generation_rarely_and_keeps_the_older_thresholds():
    # In a child: the threshold is process-wide, the test process keeps its own.
    code = ("import gc, json; from scripts import runtime; before = gc.get_threshold(); runtime.settle_heap(); "
            "print(json.dumps([before, gc.get_threshold(), gc.get_freeze_count()]))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    before, after, frozen = json.loads(out.stdout)
    assert after == [runtime.YOUNG_GC_THRESHOLD, before[1], before[2]] and after[0] > before[0] and frozen > 0
