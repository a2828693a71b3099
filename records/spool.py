"""The local durable spool: append-only JSON-lines segment files, fsync'd before an append returns.

Why files and not a SQLite spool: an append is one write() plus one fsync() on a file only this writer
holds, with no lock shared with the database it protects us from; a crash can at worst leave a torn last
line, which the reader detects and sets aside; and an admin can read or replay a segment with any tool.
`append_lines` writes many records with that same one write() and one fsync() (the group commit of
records.group_commit); a failed write is cut off whole, so no half line stays either way.

Several processes may share one spool directory (the FastAGI daemon and classic-AGI processes, one per
call): every segment is flock'ed by whoever uses it. A writer holds the lock on its open segment; it is
created under a temporary name and renamed only once locked, so no flusher can take it half-born. A
flusher takes a segment only if it gets the lock (LOCK_NB), deletes it only after its records were
committed, and adopts the segments of a process that died (the kernel released its lock).

Rows here are already masked and hashed: no full caller number is ever written.
"""
from __future__ import annotations

import fcntl
import itertools
import json
import os
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator, Sequence

import orjson

SEGMENT_GLOB = "seg-*.jsonl"
REJECTED = "rejected.jsonl"


class AppendError(OSError):
    """`append_lines` failed part-way: the first `durable` lines are on disk, the rest are not (see `cause`)."""

    def __init__(self, durable: int, cause: BaseException) -> None:
        super().__init__(getattr(cause, "errno", None), str(cause))
        self.durable, self.cause = durable, cause


@dataclass(frozen=True)
class Entry:
    kind: str
    row: dict[str, Any]


@dataclass(frozen=True)
class Segment:
    path: Path
    entries: tuple[Entry, ...]
    bad_lines: tuple[str, ...]      # undecodable lines (a torn tail after a crash): set aside in rejected.jsonl


def _write_all(fd: int, data: bytes) -> None:
    """os.write may write less than asked (a signal, a nearly full disk): go on until all of it is written;
    an error (ENOSPC, EIO) is raised with whatever part was written left for the caller to undo."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        if written <= 0:        # not expected from a regular file; never loop forever on it
            raise OSError(f"write returned {written}")
        view = view[written:]


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Spool:
    def __init__(self, directory: Path, segment_records: int = 1000) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._segment_records = segment_records
        self._lock = threading.Lock()
        self._numbers = itertools.count(1)
        self._fd: int | None = None
        self._current: Path | None = None
        self._in_current = 0
        self._size = 0              # bytes of whole records in the open segment
        self._closed = False

    # --- writing ---------------------------------------------------------------------------------
    @staticmethod
    def encode(kind: str, row: dict[str, Any]) -> bytes:
        """One record as its spool line (what `append_lines` takes): compact UTF-8 JSON. orjson: a tenth of the
        stdlib encoder's cost per call on the call path; a value JSON cannot hold raises TypeError, as there."""
        return orjson.dumps({"kind": kind, "row": row}) + b"\n"

    def append(self, kind: str, row: dict[str, Any]) -> None:
        """Durable on return: all of the line written and fsync'd. Raises OSError otherwise (a full disk), with
        nothing of the record left in the segment: the caller keeps it elsewhere (SpooledWriter: in memory)."""
        data = self.encode(kind, row)
        with self._lock:
            self._write_locked(data, 1)

    def append_lines(self, lines: Sequence[bytes]) -> None:
        """Many encoded records, durable on return, with one write() and one fsync() per segment they fill (one,
        unless a segment is full). On a failure raises AppendError: its `durable` first lines are on disk, the
        others are not, nothing of them stays in the segment (the caller keeps them elsewhere)."""
        with self._lock:
            done = 0
            while done < len(lines):
                room = max(1, self._segment_records - self._in_current)
                chunk = lines[done:done + room]
                try:
                    self._write_locked(b"".join(chunk), len(chunk))
                except (OSError, RuntimeError) as exc:
                    raise AppendError(done, exc) from exc
                done += len(chunk)

    def _write_locked(self, data: bytes, records: int) -> None:
        if self._closed:
            raise RuntimeError("spool is closed")
        if self._fd is None:
            self._open_segment()
        assert self._fd is not None
        start = self._size
        try:
            _write_all(self._fd, data)
            os.fsync(self._fd)
        except OSError:
            self._undo_locked(start)
            raise
        self._size = start + len(data)
        self._in_current += records
        if self._in_current >= self._segment_records:
            self._seal_locked()

    def _undo_locked(self, start: int) -> None:
        """A record that did not fully reach the disk: cut its torn part off so no half line stays (and no next
        record is glued to it), then seal the segment; if even the cut fails, the torn tail is what the reader
        sets aside (the record itself is kept by the caller)."""
        try:
            os.ftruncate(self._fd, start)   # type: ignore[arg-type]
            os.fsync(self._fd)              # type: ignore[arg-type]
        except OSError:
            pass
        self._seal_locked()

    def _open_segment(self) -> None:
        # Names sort by creation time; pid and a counter keep concurrent writers apart.
        name = f"seg-{time.time_ns():020d}-{os.getpid()}-{next(self._numbers)}.jsonl"
        temporary = self.directory / f".{name}.new"
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o600)
        path = self.directory / name
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)      # held as long as we write it
            os.rename(temporary, path)
            _fsync_dir(self.directory)          # the name survives a crash too
        except OSError:
            os.close(fd)
            for leftover in (temporary, path):
                leftover.unlink(missing_ok=True)
            raise
        self._fd, self._current, self._in_current, self._size = fd, path, 0, 0

    def _seal_locked(self) -> None:
        if self._fd is not None:
            os.close(self._fd)                  # releases the lock: flushers may take it now
        self._fd, self._current, self._in_current = None, None, 0

    def seal(self) -> None:
        """Close the segment being written so a flush can take it; the next append starts a new one."""
        with self._lock:
            self._seal_locked()

    # --- flushing --------------------------------------------------------------------------------
    def segments(self) -> list[Path]:
        """Segment files, oldest first (some may be locked by a writer or another flusher)."""
        return sorted(self.directory.glob(SEGMENT_GLOB))

    @contextmanager
    def take(self, path: Path) -> Iterator[Segment | None]:
        """The segment's records if we got its lock (None if someone else holds it or it is gone)."""
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            yield None
            return
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield None
                return
            if not path.exists():               # another flusher finished it while we waited
                yield None
                return
            with os.fdopen(os.dup(fd), "rb") as handle:
                yield self._parse(path, handle)
        finally:
            os.close(fd)

    @staticmethod
    def _parse(path: Path, handle) -> Segment:
        entries: list[Entry] = []
        bad: list[str] = []
        for raw in handle:
            try:
                item = orjson.loads(raw)
                entries.append(Entry(kind=str(item["kind"]), row=dict(item["row"])))
            except (ValueError, KeyError, TypeError):
                bad.append(raw.decode("utf-8", "replace"))
        return Segment(path, tuple(entries), tuple(bad))

    def peek(self) -> list[Entry]:
        """Every record still spooled (whole lines only), oldest first, without taking any segment: to show what
        has not reached the database yet."""
        entries: list[Entry] = []
        for path in self.segments():
            try:
                with open(path, "rb") as handle:
                    entries.extend(self._parse(path, handle).entries)
            except FileNotFoundError:    # flushed meanwhile: it is in the database now
                continue
        return entries

    def remove(self, path: Path) -> None:
        """Trim a segment (while holding it): only after every record in it was committed."""
        path.unlink(missing_ok=True)
        _fsync_dir(self.directory)

    def reject(self, lines: list[str], reason: str) -> None:
        """Keep what cannot be written (a torn line, a row the database refuses) for an admin to inspect."""
        at = datetime.now(timezone.utc).isoformat()
        payload = "".join(json.dumps({"rejected_at": at, "reason": reason, "line": line.rstrip("\n")},
                                     ensure_ascii=False) + "\n" for line in lines)
        fd = os.open(self.directory / REJECTED, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            _write_all(fd, payload.encode())
            os.fsync(fd)
        finally:
            os.close(fd)

    def pending_segments(self) -> int:
        return len(self.segments())

    def close(self) -> None:
        with self._lock:
            self._seal_locked()
            self._closed = True
