"""Group commit of spool appends: the calls that end within the same few milliseconds share one write() and
one fsync(), and each call's handler still finishes only once its record is durable.

One dedicated thread (the committer) takes every record submitted since its last round, hands them to
`write` (records.spool.Spool.append_lines: one write, one fsync) and then wakes all their waiters at once:
one `loop.call_soon_threadsafe` per event loop and round, not one per record. A round starts `gather`
seconds (20 ms) after its first record arrived: each hand-over between the event loop's thread and this one
costs the loop far more than the write (the GIL changes hands, the thread is scheduled on the loop's core;
`make bench` measured ~0.7 ms of CPU per round with a round per call), so a round takes every call that ended
in those milliseconds. Durable within gather + one fsync, far inside the 50 ms a SIGKILL may cost
(tests/test_records_sigkill.py).

A round that fails (a full disk) hands the records not written to `failed`, which keeps them elsewhere
(SpooledWriter: in memory, respooled later); their waiters are woken all the same, as a synchronous append
that kept its record in memory returns normally.
"""
from __future__ import annotations

import asyncio
import queue
import threading
import time
from typing import Any, Callable, NamedTuple, Sequence

import structlog

from records.spool import AppendError

log = structlog.get_logger("records")


class Pending(NamedTuple):                      # a tuple: made once per record on the event loop
    line: bytes                                  # the encoded spool line
    entry: Any                                   # what `failed` keeps if the line cannot be written
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future


_STOP = object()


class GroupCommitter:
    def __init__(self, write: Callable[[Sequence[bytes]], None],
                 failed: Callable[[list[Any], BaseException], None], *, name: str = "records-commit",
                 gather: float = 0.02) -> None:
        self._write = write
        self._gather = gather
        self._failed = failed
        self._name = name
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._closed = False
        self.rounds = 0                          # write+fsync rounds done (to see the grouping in tests)
        self.committed = 0                       # records those rounds made durable

    def submit(self, line: bytes, entry: Any) -> asyncio.Future:
        """From a coroutine: the future resolves (None) once the line is durable (or kept by `failed`)."""
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        if self._closed:
            raise RuntimeError("group committer is closed")
        if self._thread is None:
            self._start()
        self._queue.put(Pending(line, entry, loop, future))
        return future

    def _start(self) -> None:
        with self._start_lock:        # started at the first submit: classic AGI (a process per call) never needs it
            if self._thread is None:
                thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                thread.start()
                self._thread = thread

    def _run(self) -> None:
        stop = False
        while not stop:
            batch: list[Pending] = []
            item = self._queue.get()
            if item is not _STOP and self._gather > 0:
                time.sleep(self._gather)      # the calls ending meanwhile join this round
            while True:               # everything submitted since the last round
                if item is _STOP:
                    stop = True
                else:
                    batch.append(item)
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
            if batch:
                self._commit(batch)

    def _commit(self, batch: list[Pending]) -> None:
        try:
            self._write([p.line for p in batch])
            durable = len(batch)
        except AppendError as exc:
            durable = exc.durable
            self._keep(batch[durable:], exc.cause)
        except Exception as exc:  # noqa: BLE001 - never let the committer die: its waiters would hang
            durable = 0
            self._keep(batch, exc)
        self.rounds += 1
        self.committed += durable
        _wake(batch)

    def _keep(self, pending: list[Pending], exc: BaseException) -> None:
        try:
            self._failed([p.entry for p in pending], exc)
        except Exception as error:  # noqa: BLE001 - the waiters are woken whatever happens here
            log.error("records.commit_fallback_failed", error=f"{type(error).__name__}: {error}",
                      records=len(pending))

    def close(self, timeout: float = 10.0) -> None:
        """Commit what was submitted, then stop; a later submit raises RuntimeError."""
        self._closed = True
        thread = self._thread
        if thread is not None:
            self._queue.put(_STOP)
            thread.join(timeout)
        late: list[Pending] = []      # submitted while we were closing: committed here, never left waiting
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is not _STOP:
                late.append(item)
        if late:
            self._commit(late)


def _wake(batch: list[Pending]) -> None:
    by_loop: dict[asyncio.AbstractEventLoop, list[asyncio.Future]] = {}
    for p in batch:
        by_loop.setdefault(p.loop, []).append(p.future)
    for loop, futures in by_loop.items():
        try:
            loop.call_soon_threadsafe(_resolve, futures)
        except RuntimeError:          # that loop is closed: nobody waits any more
            pass


def _resolve(futures: list[asyncio.Future]) -> None:
    for future in futures:
        if not future.done():         # a handler cancelled at shutdown no longer waits; its record is written
            future.set_result(None)
