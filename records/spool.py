"""The local durable spool: append-only JSON-lines segment files, fsync'd on every append.

Why files and not a SQLite spool: an append is one write() plus one fsync() on a file only this process
holds, with no lock shared with the database it is protecting us from; a crash can at worst leave a torn
last line, which the reader detects and moves aside; and an admin can read or replay a segment with any
tool. Segments are sealed (closed) before a flush reads them and are deleted only after every record in
them was committed, so a record is on disk from the moment `append` returns until it is in the database.

One spool directory belongs to one process (an exclusive flock on `.lock` enforces it).
Rows here are already masked and hashed: no full caller number is ever written.
"""
from __future__ import annotations

import fcntl
import json
import os
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

SEGMENT_GLOB = "seg-*.jsonl"
REJECTED = "rejected.jsonl"


class SpoolBusy(RuntimeError):
    """Another process holds this spool directory."""


@dataclass(frozen=True)
class Entry:
    kind: str
    row: dict[str, Any]


@dataclass(frozen=True)
class Segment:
    path: Path
    entries: tuple[Entry, ...]
    bad_lines: tuple[str, ...]      # undecodable lines (a torn tail after a crash): moved to rejected.jsonl


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
        self._lock_fd = os.open(self.directory / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._lock_fd)
            raise SpoolBusy(f"spool directory {self.directory} is in use by another process") from None
        existing = [self._seq_of(p) for p in self.directory.glob(SEGMENT_GLOB)]
        self._next_seq = max(existing, default=0) + 1
        self._fd: int | None = None
        self._current: Path | None = None
        self._in_current = 0
        self._closed = False

    @staticmethod
    def _seq_of(path: Path) -> int:
        return int(path.stem.split("-", 1)[1])

    def append(self, kind: str, row: dict[str, Any]) -> None:
        """Durable on return: written and fsync'd. A new process never appends to an old segment."""
        data = (json.dumps({"kind": kind, "row": row}, ensure_ascii=False, separators=(",", ":")) + "\n").encode()
        with self._lock:
            if self._closed:
                raise RuntimeError("spool is closed")
            if self._fd is None:
                self._open_segment()
            assert self._fd is not None
            os.write(self._fd, data)
            os.fsync(self._fd)
            self._in_current += 1
            if self._in_current >= self._segment_records:
                self._seal_locked()

    def _open_segment(self) -> None:
        path = self.directory / f"seg-{self._next_seq:012d}.jsonl"
        self._next_seq += 1
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o600)
        _fsync_dir(self.directory)   # the new name survives a crash too
        self._current = path
        self._in_current = 0

    def _seal_locked(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
        self._fd, self._current, self._in_current = None, None, 0

    def seal(self) -> None:
        """Close the segment being written so a flush can take it; the next append starts a new one."""
        with self._lock:
            self._seal_locked()

    def sealed(self) -> list[Path]:
        with self._lock:
            current = self._current
        return sorted((p for p in self.directory.glob(SEGMENT_GLOB) if p != current), key=self._seq_of)

    def read(self, path: Path) -> Segment:
        entries: list[Entry] = []
        bad: list[str] = []
        with open(path, "rb") as handle:
            for raw in handle:
                try:
                    item = json.loads(raw)
                    entries.append(Entry(kind=str(item["kind"]), row=dict(item["row"])))
                except (ValueError, KeyError, TypeError):
                    bad.append(raw.decode("utf-8", "replace"))
        return Segment(path, tuple(entries), tuple(bad))

    def reject(self, lines: list[str], reason: str) -> None:
        """Keep what cannot be written (a torn line, a row the database refuses) for an admin to inspect."""
        at = datetime.now(timezone.utc).isoformat()
        payload = "".join(json.dumps({"rejected_at": at, "reason": reason, "line": line.rstrip("\n")},
                                     ensure_ascii=False) + "\n" for line in lines)
        fd = os.open(self.directory / REJECTED, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            os.write(fd, payload.encode())
            os.fsync(fd)
        finally:
            os.close(fd)

    def remove(self, path: Path) -> None:
        """Trim a segment: only after every record in it was committed."""
        path.unlink(missing_ok=True)
        _fsync_dir(self.directory)

    def pending_segments(self) -> int:
        return len(list(self.directory.glob(SEGMENT_GLOB)))

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._seal_locked()
            self._closed = True
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            os.close(self._lock_fd)
