"""Audit trail of supervisor actions: who, when, what, result.

With a database configured (HOTLINE_DB_URL, in the environment or the secrets file) the trail is the records
store's `supervisor_actions` table, shared by every supervisor view on PostgreSQL: an action goes through the
records' durable spool (`<HOTLINE_SPOOL_DIR>/supervisor-audit/`) so a database outage never loses one. Without a
database it is a JSON-lines file, one object per line, append-only (default var/supervisor-audit.jsonl,
HOTLINE_SUPERVISOR_AUDIT to move it). Entries hold member interfaces and queue ids, never caller numbers.
"""
from __future__ import annotations

import json
import os
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping

import structlog

log = structlog.get_logger(__name__)

SPOOL_SUBDIR = "supervisor-audit"   # its own segments: a pending audit row never holds back call records


class AuditLog:
    def __init__(self, path: Path, store: Any = None) -> None:
        """`store`: a records.actions.ActionRecorder (started) to write to SQL; None for the JSON-lines file."""
        self.path = Path(path)
        self.store = store
        self._lock = threading.Lock()

    @classmethod
    def for_settings(cls, settings: Any, path: Path) -> "AuditLog":
        """SQL when the settings name a database explicitly (HOTLINE_DB_URL), else the file at `path`."""
        if "db_url" not in getattr(settings, "model_fields_set", ()):
            log.info("supervisor.audit", store="file", path=str(path))
            return cls(path)
        from records.actions import ActionRecorder

        store = ActionRecorder(settings.db_url, Path(settings.spool_dir) / SPOOL_SUBDIR).start()
        log.info("supervisor.audit", store="sql", spool=str(Path(settings.spool_dir) / SPOOL_SUBDIR))
        return cls(path, store)

    def record(self, *, at: float, user: str, role: str, action: str, params: Mapping[str, Any], result: str,
               message: str = "") -> dict[str, Any]:
        instant = datetime.fromtimestamp(at, timezone.utc)
        entry = {"at": instant.isoformat(timespec="milliseconds"),
                 "user": user, "role": role, "action": action, "params": dict(params),
                 "result": result, "message": message}
        if self.store is not None:
            from records.types import SupervisorAction

            self.store.record_action(SupervisorAction(at=instant, user=user, role=role, action=action,
                                                      params=params, result=result, message=message))
            return entry
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
        """The newest `limit` entries, newest first."""
        if self.store is not None:
            return self.store.recent(limit)
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

    def close(self) -> None:
        """Stops the SQL writer (one last bounded flush; the rest stays spooled for the next start)."""
        if self.store is not None:
            self.store.close()
