"""What the live view reads besides AMI, slowly and off the event loop: the routing table's names and the
records' backlog (pending callbacks, overdue work orders).

Both change in minutes, not seconds, and both do blocking I/O (a YAML file, SQL), so one task polls them every
`interval` seconds (30 by default) in a worker thread; a slow or broken database makes the backlog tiles say
so and never holds up the queues. The names are reloaded only when the table file changed (mtime).
"""
from __future__ import annotations

import asyncio
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import structlog

from supervisor.names import Directory
from supervisor.state import LiveState

log = structlog.get_logger(__name__)
DEFAULT_INTERVAL = 30.0


def count_backlog(engine: Any, at: datetime) -> dict[str, Any]:
    """Pending callbacks (all, and per queue) and work orders past their sign deadline at `at`."""
    from records.callbacks import list_callbacks
    from records.workorders import list_orders

    pending = list_callbacks(engine, status="pending")
    per_queue: dict[str, int] = {}
    for callback in pending:
        per_queue[callback.queue or "?"] = per_queue.get(callback.queue or "?", 0) + 1
    overdue = sum(1 for _ in list_orders(engine, overdue_at=at))
    return {"callbacks_pending": len(pending), "callbacks_by_queue": per_queue, "workorders_overdue": overdue}


class Refresher:
    def __init__(self, state: LiveState, *, table_path: str | Path | None = None, db_url: str | None = None,
                 interval: float = DEFAULT_INTERVAL, clock: Callable[[], float] | None = None,
                 on_change: Callable[[], None] | None = None) -> None:
        self.state = state
        self.table_path = Path(table_path) if table_path else None
        self.db_url = db_url
        self.interval = interval
        self.clock = clock
        self.on_change = on_change
        self.backlog: dict[str, Any] = {"available": False, "error": False, "at": None}
        self._table_mtime: float | None = None
        self._engine: Any = None
        self._task: asyncio.Task | None = None

    # ---- one round, in a worker thread ------------------------------------------------------------------
    def refresh_names(self) -> bool:
        if self.table_path is None:
            return False
        try:
            mtime = self.table_path.stat().st_mtime
        except OSError:
            mtime = None
        if mtime is not None and mtime == self._table_mtime:
            return False
        self._table_mtime = mtime
        self.state.directory = Directory.load(self.table_path)
        return True

    def refresh_backlog(self) -> None:
        if not self.db_url:
            return
        now = self.clock() if self.clock else datetime.now(timezone.utc).timestamp()
        try:
            if self._engine is None:
                from records.db import make_engine
                self._engine = make_engine(self.db_url)
            figures = count_backlog(self._engine, datetime.fromtimestamp(now, timezone.utc))
        except Exception as exc:  # an outage or a schema not yet migrated: say so on the tile, keep going
            log.warning("supervisor.backlog_unavailable", error=f"{type(exc).__name__}: {exc}")
            self.backlog = {**self.backlog, "available": True, "error": True}
            return
        self.backlog = {**figures, "available": True, "error": False, "at": now}

    def refresh(self) -> None:
        self.refresh_names()
        self.refresh_backlog()

    # ---- life cycle -----------------------------------------------------------------------------------------
    async def start(self) -> None:
        await asyncio.to_thread(self.refresh)  # the first page already has names and figures
        self._task = asyncio.get_running_loop().create_task(self._run(), name="supervisor-refresh")

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            await asyncio.to_thread(self.refresh)
            if self.on_change is not None:
                self.on_change()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        if self._engine is not None:
            self._engine.dispose()
