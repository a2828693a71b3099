"""What the engine's process needs from the OS before it serves: its event loop and enough file descriptors.

- The event loop: uvloop when installed (HOTLINE_EVENT_LOOP=auto, the default) — libuv's loop costs about a
  quarter less CPU per AGI command than asyncio's own in `make bench`; `asyncio` forces the standard loop
  (e.g. to rule uvloop out while chasing a problem), `uvloop` insists on it.
- File descriptors: every call holds one socket, and so does every connection still sending its agi_* block.
  The soft RLIMIT_NOFILE (often 1024) is raised towards the hard limit so that the session cap fits; when even
  the hard limit is too small, the log says so and what the cap effectively is.
"""
from __future__ import annotations

import asyncio
import gc
import resource
from typing import Any, Coroutine

import structlog

log = structlog.get_logger()

LOOPS = ("auto", "asyncio", "uvloop")
SPARE_DESCRIPTORS = 256     # database, spool, web view, AMI, log files, the listening sockets


def run(main: Coroutine[Any, Any, Any], loop: str = "auto") -> Any:
    """asyncio.run on the chosen event loop (see the module docstring)."""
    if loop not in LOOPS:
        raise ValueError(f"HOTLINE_EVENT_LOOP must be one of {', '.join(LOOPS)}, not {loop!r}")
    if loop != "asyncio":
        try:
            import uvloop
        except ImportError:
            if loop == "uvloop":
                raise ValueError("HOTLINE_EVENT_LOOP=uvloop but uvloop is not installed (pip install uvloop)")
        else:
            return uvloop.run(main)
    return asyncio.run(main)


def descriptors_needed(max_sessions: int, max_pending: int) -> int:
    return max_sessions + max_pending + SPARE_DESCRIPTORS


def ensure_descriptors(max_sessions: int, max_pending: int) -> int:
    """Raise the soft RLIMIT_NOFILE so `max_sessions` calls and `max_pending` arrivals fit; returns the number of
    calls the limit allows (= max_sessions when it fits). Never lowers a limit."""
    needed = descriptors_needed(max_sessions, max_pending)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= needed:
        return max_sessions
    target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
    if target > soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            log.info("engine.descriptors_raised", soft_before=soft, soft=target, hard=hard)
            soft = target
        except (ValueError, OSError) as exc:
            log.warning("engine.descriptors_not_raised", soft=soft, hard=hard, error=str(exc))
    if soft >= needed:
        return max_sessions
    fits = max(1, soft - max_pending - SPARE_DESCRIPTORS)
    log.warning("engine.descriptors_limit_the_cap", open_files_limit=soft, hard_limit=hard, max_sessions=max_sessions,
                calls_that_fit=fits, advice="raise the hard limit (systemd LimitNOFILE=, ulimit -Hn) or lower "
                "HOTLINE_AGI_MAX_SESSIONS: past the limit new connections fail at accept and Asterisk's "
                "fail-open decides")
    return fits


YOUNG_GC_THRESHOLD = 50_000     # net allocations between two young collections (CPython's default: 700)


def settle_heap() -> None:
    """Move what start-up built (modules, the table, the menus) out of the collector's sight: the cyclic GC then
    scans only what calls allocate, not the whole heap at every full collection. And collect the young
    generation every 50,000 net allocations instead of 700: a call's objects die by reference count, so at the
    default a collection ran every ~14 calls for nothing (gc.callbacks under `make bench`'s load: 4.8% of the
    engine's CPU in the collector, 1.2% at 50,000; what cycles a call leaves stay bounded by the threshold)."""
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_GC_THRESHOLD, older, oldest)
