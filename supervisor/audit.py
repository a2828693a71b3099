"""Audit trail of supervisor actions: who, when, what, result. One JSON object per line, append-only.

The records database has no table for it yet, so the trail lives in a file (default var/supervisor-audit.jsonl,
HOTLINE_SUPERVISOR_AUDIT to move it). Entries hold member interfaces and queue ids, never caller numbers.
"""
from __future__ import annotations

import json
import os
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping


class AuditLog:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()

    def record(self, *, at: float, user: str, role: str, action: str, params: Mapping[str, Any], result: str,
               message: str = "") -> dict[str, Any]:
        entry = {"at": datetime.fromtimestamp(at, timezone.utc).isoformat(timespec="milliseconds"),
                 "user": user, "role": role, "action": action, "params": dict(params),
                 "result": result, "message": message}
        line = json.dumps(entry, ensure_ascii=False, sort_keys=True) + "\n"
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # O_APPEND: each line lands whole even with several processes writing the same file
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)
            try:
                os.write(fd, line.encode("utf-8"))
                os.fsync(fd)
            finally:
                os.close(fd)
        return entry

    def tail(self, limit: int = 100) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        lines = self.path.read_text(encoding="utf-8").splitlines()[-limit:]
        out = []
        for line in reversed(lines):
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a torn last line after a crash costs that line only
        return out
