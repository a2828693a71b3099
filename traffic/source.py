"""The database edge of traffic/: recorded calls of a period in, synthetic calls out (records' own write path,
so a synthetic caller number is masked and hashed exactly like a real one)."""
from __future__ import annotations

from datetime import datetime
from typing import Iterable, Iterator, Sequence

from sqlalchemy import Engine, func, select

from records.rows import call_row, sql_params
from records.schema import calls
from records.store import write_rows
from records.types import CallRecord
from traffic.forecast import CallFact
from traffic.replay import RecordedCall

BATCH = 5000


def _period(start: datetime, end: datetime):
    return (calls.c.arrived_at >= start) & (calls.c.arrived_at < end)


def recorded_calls(engine: Engine, start: datetime, end: datetime) -> Iterator[RecordedCall]:
    query = (select(calls.c.dialed, calls.c.arrived_at, calls.c.caller_hash, calls.c.ivr_path, calls.c.target,
                    calls.c.action).where(_period(start, end)).order_by(calls.c.arrived_at))
    with engine.connect() as conn:
        result = conn.execution_options(stream_results=True, yield_per=BATCH).execute(query)
        for dialed, arrived, hashed, path, target, action in result:
            yield RecordedCall(dialed, arrived, hashed, path, target, action)


def call_facts(engine: Engine, start: datetime, end: datetime) -> Iterator[CallFact]:
    query = (select(calls.c.target, calls.c.arrived_at, calls.c.outcome, calls.c.wait_seconds,
                    calls.c.talk_seconds)
             .where(_period(start, end) & (calls.c.action == "queue") & calls.c.target.is_not(None)))
    with engine.connect() as conn:
        result = conn.execution_options(stream_results=True, yield_per=BATCH).execute(query)
        for target, arrived, outcome, wait, talk in result:
            yield CallFact(target, arrived, outcome, wait, talk)


def period_of(engine: Engine) -> tuple[datetime, datetime] | None:
    """First and last arrival recorded (min/max keep the column's type, so aware UTC datetimes)."""
    with engine.connect() as conn:
        first, last = conn.execute(select(func.min(calls.c.arrived_at), func.max(calls.c.arrived_at))).one()
    return None if first is None else (first, last)


def write_calls(engine: Engine, records: Sequence[CallRecord] | Iterable[CallRecord], key: bytes) -> int:
    written, batch = 0, []
    with engine.begin() as conn:
        for rec in records:
            batch.append(sql_params("call", call_row(rec, key)))
            if len(batch) >= BATCH:
                write_rows(conn, "call", batch)
                written, batch = written + len(batch), []
        write_rows(conn, "call", batch)
    return written + len(batch)
