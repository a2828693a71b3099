"""Supervisor actions (and agents taking callbacks) in SQL, through the durable spool like every record.

`ActionRecorder.record_action` is one local append + fsync (the web view never waits for the database); its own
flusher thread writes to `supervisor_actions` in the background, backing off while the database is down, so an
action is never lost to an outage. `recent()` reads the trail from SQL plus what is still spooled.
"""
from __future__ import annotations

import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping

import structlog
from sqlalchemy import Connection, select
from sqlalchemy.exc import DBAPIError

from records.recorder import SpooledWriter, _short
from records.rows import sql_params, supervisor_action_row
from records.schema import supervisor_actions
from records.store import write_rows
from records.types import SupervisorAction

log = structlog.get_logger("records")

KIND = "supervisor_action"


def as_entry(row: Mapping[str, Any]) -> dict[str, Any]:
    """The audit entry as supervisor.audit has always shown it (UTC ISO time to the millisecond)."""
    at = row["at"]
    if isinstance(at, str):
        at = datetime.fromisoformat(at)
    return {"at": at.astimezone(timezone.utc).isoformat(timespec="milliseconds"), "user": row["user"],
            "role": row["role"], "action": row["action"], "params": dict(row["params"] or {}),
            "result": row["result"], "message": row["message"] or ""}


def write_action(conn: Connection, action: SupervisorAction) -> None:
    """Straight into SQL, in the caller's transaction (for commands that are online anyway, e.g. callbacks)."""
    write_rows(conn, KIND, [sql_params(KIND, supervisor_action_row(action))])


class ActionRecorder(SpooledWriter):
    def __init__(self, db_url: str, spool_dir: Path, *, flush_interval: float = 1.0, max_backoff: float = 30.0,
                 op_timeout: float = 5.0, read_timeout: float = 2.0, auto_upgrade: bool | None = None) -> None:
        super().__init__(db_url, spool_dir, flush_interval=flush_interval, max_backoff=max_backoff,
                         op_timeout=op_timeout, auto_upgrade=auto_upgrade)
        self._read_timeout = read_timeout
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._closed = False

    def record_action(self, action: SupervisorAction) -> None:
        self._append(KIND, supervisor_action_row(action))
        if self._healthy:
            self._wake.set()     # write it now; while the database is down the back-off decides

    # --- the flusher thread ------------------------------------------------------------------------
    def start(self) -> "ActionRecorder":
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="records-actions", daemon=True)
            self._thread.start()
        return self

    def _loop(self) -> None:
        delay = self._interval
        while not self._stopping.is_set():
            self.flush()
            delay = self._interval if self._healthy else min(max(delay, self._interval) * 2, self._max_backoff)
            self._wake.wait(delay)
            self._wake.clear()

    def close(self) -> None:
        """Stop the thread; one last bounded flush; what the database did not take stays spooled."""
        if self._closed:
            return
        self._closed = True
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=self._op_timeout * 3)
        super().close()

    # --- reading -----------------------------------------------------------------------------------
    def recent(self, limit: int = 100) -> list[dict[str, Any]]:
        """Newest first: SQL's rows and the actions still spooled (not in SQL yet). While the database is
        down, only the spooled ones (a warning says the trail is partial)."""
        spooled = {e.row["record_id"]: e.row for e in self._spool.peek() if e.kind == KIND}
        with self._unspooled_lock:
            spooled.update({e.row["record_id"]: e.row for e in self._unspooled if e.kind == KIND})
        rows: dict[str, Mapping[str, Any]] = {}
        if self._healthy:
            query = (select(supervisor_actions)
                     .order_by(supervisor_actions.c.at.desc(), supervisor_actions.c.record_id.desc()).limit(limit))
            try:
                if not self._schema_ready:
                    self.flush()
                found = self._read(query)
                rows = {row["record_id"]: row for row in found}
            except Exception as exc:  # noqa: BLE001 - show what we have; the flusher notices the outage too
                log.warning("records.audit_read_failed", error=_short(exc), effect="showing spooled actions only")
        else:
            log.warning("records.audit_read_partial", effect="database unavailable: showing spooled actions only")
        merged = {**spooled, **rows}
        ordered = sorted(merged.items(), key=lambda item: (_instant(item[1]["at"]), item[0]), reverse=True)
        return [as_entry(row) for _, row in ordered[:limit]]

    def _read(self, query: Any) -> list[Any]:
        def run() -> list[Any]:
            return self._guarded(lambda conn: conn.execute(query).mappings().all(), self._read_timeout, False)

        try:
            return run()
        except DBAPIError as exc:
            if not exc.connection_invalidated:
                raise
            return run()   # a pooled connection the outage killed: the pool is renewed, one more try


def _instant(value: Any) -> datetime:
    return datetime.fromisoformat(value) if isinstance(value, str) else value
