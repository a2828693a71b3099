"""`hotline report daily|weekly|monthly`: per line, per queue, per hour (daily) or day, and in total, from the
records. The queue figures come from records.figures, the definition the live view and /metrics use.

`build()` is pure (rows in, report out); `load()` reads the rows of a period.

Figures of a row: calls (arrivals; for a queue, the calls that went through it), offered (answered + abandoned),
answered, answered within the service level, abandoned, overflowed, service level, abandonment rate, average
and 90th-percentile wait (nearest rank) of answered calls, callbacks requested / done (requests made in the
period, and of those the ones done by now), work orders opened / overdue (dispatched in the period, and of
those the ones past their sign deadline, unsigned, at `as_of`). A work order or callback counts for a queue
through its call (the queue that ended it). Transfers per line: kind -> outcome -> count.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Iterable, Mapping

from sqlalchemy import Engine, select

from records.figures import CallFigures, Tally, answered_wait, contributions, percentile
from records.periods import Period
from records.reports import period_rows
from records.schema import callback_requests, calls, transfers, work_orders


@dataclass
class _Acc:
    calls: int = 0
    tally: Tally = field(default_factory=Tally)
    waits: list[float] = field(default_factory=list)
    callbacks_requested: int = 0
    callbacks_done: int = 0
    work_orders_opened: int = 0
    work_orders_overdue: int = 0
    transfers: dict[str, dict[str, int]] = field(default_factory=dict)


@dataclass(frozen=True)
class ReportRow:
    scope: str                   # line | queue | hour | day | total
    key: str                     # line number, queue id, local ISO start of the hour/day, "all"
    name: str                    # from the routing table ("" when it names none)
    calls: int
    offered: int
    answered: int
    answered_in_sl: int
    abandoned: int
    overflowed: int
    service_level: float | None
    abandonment_rate: float | None
    average_wait: float | None
    p90_wait: float | None
    callbacks_requested: int
    callbacks_done: int
    work_orders_opened: int
    work_orders_overdue: int
    transfers: dict[str, dict[str, int]] = field(default_factory=dict)


FIGURES = ("calls", "offered", "answered", "answered_in_sl", "abandoned", "overflowed", "service_level",
           "abandonment_rate", "average_wait", "p90_wait", "callbacks_requested", "callbacks_done",
           "work_orders_opened", "work_orders_overdue")


@dataclass(frozen=True)
class Report:
    period: Period
    as_of: datetime
    service_level_seconds: int
    lines: list[ReportRow]
    queues: list[ReportRow]
    buckets: list[ReportRow]     # per hour (daily) or per day
    total: ReportRow

    def to_json(self) -> dict[str, Any]:
        tz = self.period.tz
        return {"period": self.period.kind, "first_day": self.period.first.isoformat(),
                "last_day": self.period.last.isoformat(), "timezone": str(tz),
                "start": self.period.start.isoformat(), "end": self.period.end.isoformat(),
                "as_of": self.as_of.astimezone(tz).isoformat(), "service_level_seconds": self.service_level_seconds,
                "lines": [asdict(r) for r in self.lines], "queues": [asdict(r) for r in self.queues],
                "hours" if self.period.kind == "daily" else "days": [asdict(r) for r in self.buckets],
                "total": asdict(self.total)}


def _row(scope: str, key: str, name: str, acc: _Acc) -> ReportRow:
    t = acc.tally
    return ReportRow(scope=scope, key=key, name=name, calls=acc.calls, offered=t.offered, answered=t.answered,
                     answered_in_sl=t.answered_in_sl, abandoned=t.abandoned, overflowed=t.overflowed,
                     service_level=_round(t.service_level()), abandonment_rate=_round(t.abandonment_rate()),
                     average_wait=_round(t.average_wait(), 1), p90_wait=percentile(acc.waits, 0.9),
                     callbacks_requested=acc.callbacks_requested, callbacks_done=acc.callbacks_done,
                     work_orders_opened=acc.work_orders_opened, work_orders_overdue=acc.work_orders_overdue,
                     transfers={k: dict(sorted(v.items())) for k, v in sorted(acc.transfers.items())})


def _round(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)


def build(period: Period, call_rows: Iterable[Any], *, transfer_rows: Iterable[Mapping[str, Any]] = (),
          callback_rows: Iterable[Mapping[str, Any]] = (), order_rows: Iterable[Mapping[str, Any]] = (),
          as_of: datetime, service_level: int, line_names: Mapping[str, str] | None = None,
          queue_names: Mapping[str, str] | None = None) -> Report:
    lines: dict[str, _Acc] = {}
    queues: dict[str, _Acc] = {}
    buckets: dict[datetime, _Acc] = {b: _Acc() for b in period.buckets()}
    total = _Acc()
    call_line: dict[str, str] = {}
    call_queue: dict[str, str] = {}
    for row in call_rows:
        call = row if isinstance(row, CallFigures) else CallFigures.of(row)
        if not (period.start <= call.arrived_at < period.end):
            continue
        parts = contributions(call, service_level)
        wait = answered_wait(call)
        call_line[call.uniqueid] = call.line
        if parts:
            call_queue[call.uniqueid] = parts[-1][0]
        for acc in (lines.setdefault(call.line, _Acc()), buckets.setdefault(period.bucket_of(call.arrived_at),
                                                                            _Acc()), total):
            acc.calls += 1
            for _queue, share in parts:
                acc.tally.add(share)
            if wait is not None:
                acc.waits.append(wait)
        for queue in dict.fromkeys(q for q, _share in parts):
            queues.setdefault(queue, _Acc()).calls += 1
        for queue, share in parts:
            acc = queues[queue]
            acc.tally.add(share)
            if share.answered:
                acc.waits.append(wait or 0.0)
    for row in transfer_rows:
        line = call_line.get(row["uniqueid"])
        if line is None:
            continue        # a transfer counts with its call's line and period
        for acc in (lines[line], total):
            outs = acc.transfers.setdefault(row["kind"], {})
            outs[row["outcome"] or "unknown"] = outs.get(row["outcome"] or "unknown", 0) + 1
    for row in callback_rows:
        at = row["requested_at"]
        done = 1 if row["status"] == "done" else 0
        for acc in (lines.setdefault(row["line"], _Acc()), queues.setdefault(row["queue"], _Acc()),
                    buckets.setdefault(period.bucket_of(at), _Acc()), total):
            acc.callbacks_requested += 1
            acc.callbacks_done += done
    for row in order_rows:
        overdue = 1 if _overdue(row, as_of) else 0
        targets = [lines.setdefault(row["line"], _Acc()), buckets.setdefault(period.bucket_of(row["dispatched_at"]),
                                                                             _Acc()), total]
        queue = call_queue.get(row.get("uniqueid") or "")
        if queue is not None:
            targets.append(queues[queue])
        for acc in targets:
            acc.work_orders_opened += 1
            acc.work_orders_overdue += overdue
    line_names, queue_names = line_names or {}, queue_names or {}
    return Report(
        period=period, as_of=as_of, service_level_seconds=service_level,
        lines=[_row("line", k, line_names.get(k, ""), a) for k, a in sorted(lines.items())],
        queues=[_row("queue", k, queue_names.get(k, ""), a) for k, a in _queue_order(queues, queue_names)],
        buckets=[_row("hour" if period.kind == "daily" else "day", b.isoformat(), "", a)
                 for b, a in sorted(buckets.items())],
        total=_row("total", "all", "", total))


def _queue_order(queues: dict[str, _Acc], names: Mapping[str, str]) -> list[tuple[str, _Acc]]:
    """Queues in the table's order (12345 first), then any the table no longer has."""
    order = {queue: i for i, queue in enumerate(names)}
    return sorted(queues.items(), key=lambda item: (order.get(item[0], len(order)), item[0]))


def _overdue(row: Mapping[str, Any], at: datetime) -> bool:
    def by(moment: datetime | None) -> bool:
        return moment is not None and moment <= at
    return row["sign_deadline"] <= at and not by(row["signed_at"]) and not by(row["closed_at"])


def load(engine: Engine, period: Period, *, as_of: datetime, service_level: int,
         line_names: Mapping[str, str] | None = None, queue_names: Mapping[str, str] | None = None) -> Report:
    start, end = period.start, period.end
    call_rows = period_rows(engine, start, end)
    with engine.connect() as conn:
        transfer_rows = conn.execute(
            select(transfers.c.uniqueid, transfers.c.kind, transfers.c.outcome)
            .join(calls, transfers.c.uniqueid == calls.c.uniqueid)
            .where(calls.c.arrived_at >= start, calls.c.arrived_at < end)).mappings().all()
        callback_rows = conn.execute(
            select(callback_requests.c.line, callback_requests.c.queue, callback_requests.c.requested_at,
                   callback_requests.c.status)
            .where(callback_requests.c.requested_at >= start, callback_requests.c.requested_at < end)
        ).mappings().all()
        order_rows = conn.execute(
            select(work_orders.c.uniqueid, work_orders.c.line, work_orders.c.dispatched_at,
                   work_orders.c.sign_deadline, work_orders.c.signed_at, work_orders.c.closed_at)
            .where(work_orders.c.dispatched_at >= start, work_orders.c.dispatched_at < end)).mappings().all()
    return build(period, call_rows, transfer_rows=transfer_rows, callback_rows=callback_rows,
                 order_rows=order_rows, as_of=as_of, service_level=service_level, line_names=line_names,
                 queue_names=queue_names)
