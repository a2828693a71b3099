"""Searches, CSV export and the daily / weekly / monthly reports over the records (the plan's regular data
analysis). The queue figures are records.figures' (the same definition as the live view and /metrics).

Nothing here can show a full caller number: the database holds only masked numbers and keyed hashes.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import date, datetime, tzinfo
from typing import IO, Any, Iterable

from sqlalchemy import Engine, func, select

from routing.privacy import caller_hash

from records.periods import day_bounds
from records.schema import calls, transfers
from records.types import Outcome

FIGURE_COLUMNS = ("uniqueid", "line", "arrived_at", "outcome", "wait_seconds", "action", "target", "queue_legs")


def day_rows(engine: Engine, day: date, tz: tzinfo) -> list[dict[str, Any]]:
    """The calls that arrived on `day` in `tz`, with what records.figures needs: the live view's seed."""
    start, end = day_bounds(day, tz)
    return period_rows(engine, start, end)


def period_rows(engine: Engine, start: datetime, end: datetime) -> list[dict[str, Any]]:
    query = (select(*[calls.c[name] for name in FIGURE_COLUMNS])
             .where(calls.c.arrived_at >= start, calls.c.arrived_at < end))
    with engine.connect() as conn:
        return [dict(row) for row in conn.execute(query).mappings()]


@dataclass(frozen=True)
class CallFilter:
    line: str | None = None
    since: datetime | None = None
    until: datetime | None = None          # exclusive
    caller: str | None = None              # a full number, looked up by keyed hash, never stored
    outcome: str | None = None
    limit: int | None = None


EXPORT_COLUMNS = ("uniqueid", "arrived_at", "ended_at", "dialed", "line", "caller_masked", "category", "rule_id",
                  "action", "target", "tags", "ivr_path", "language", "wait_seconds", "answered_by", "outcome",
                  "hangup_cause", "transfers", "table_version")


def search(engine: Engine, filt: CallFilter, key: bytes | None = None) -> list[dict[str, Any]]:
    """Calls matching the filter, oldest first, with their number of transfers. No caller hash in the rows."""
    transfer_count = (select(func.count()).select_from(transfers)
                      .where(transfers.c.uniqueid == calls.c.uniqueid).correlate(calls).scalar_subquery())
    columns = [calls.c[name] for name in EXPORT_COLUMNS if name != "transfers"]
    query = select(*columns, transfer_count.label("transfers")).order_by(calls.c.arrived_at, calls.c.uniqueid)
    if filt.line:
        query = query.where(calls.c.line == filt.line)
    if filt.since:
        query = query.where(calls.c.arrived_at >= filt.since)
    if filt.until:
        query = query.where(calls.c.arrived_at < filt.until)
    if filt.outcome:
        query = query.where(calls.c.outcome == Outcome(filt.outcome).value)
    if filt.caller:
        if key is None:
            raise ValueError("looking up a caller needs the caller-hash key")
        query = query.where(calls.c.caller_hash == caller_hash(filt.caller, key))
    if filt.limit:
        query = query.limit(filt.limit)
    with engine.connect() as conn:
        return [dict(row) for row in conn.execute(query).mappings()]


def write_csv(rows: Iterable[dict[str, Any]], out: IO[str], tz: tzinfo | None = None) -> int:
    """Instants in `tz` (the table's zone) with their offset, e.g. 2021-09-17T10:00:00+08:00."""
    writer = csv.DictWriter(out, fieldnames=EXPORT_COLUMNS, extrasaction="ignore")
    writer.writeheader()
    count = 0
    for row in rows:
        writer.writerow({k: ((v.astimezone(tz) if tz else v).isoformat() if isinstance(v, datetime) else v)
                         for k, v in row.items()})
        count += 1
    return count


