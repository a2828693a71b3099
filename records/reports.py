"""Searches, CSV export and the daily report over the records (the plan's regular data analysis).

Nothing here can show a full caller number: the database holds only masked numbers and keyed hashes.
"""
from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, tzinfo
from typing import IO, Any, Iterable, Sequence

from sqlalchemy import Engine, func, select

from routing.privacy import caller_hash

from records.schema import calls, transfers
from records.types import Outcome


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


def write_csv(rows: Iterable[dict[str, Any]], out: IO[str]) -> int:
    writer = csv.DictWriter(out, fieldnames=EXPORT_COLUMNS, extrasaction="ignore")
    writer.writeheader()
    count = 0
    for row in rows:
        writer.writerow({k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in row.items()})
        count += 1
    return count


@dataclass(frozen=True)
class LineReport:
    line: str
    calls: int
    answered: int
    answered_share: float                     # answered / calls
    waits: int                                # calls with a recorded queue wait
    average_wait: float | None                # seconds, over calls with a recorded wait
    p90_wait: float | None                    # nearest-rank 90th percentile
    outcomes: dict[str, int] = field(default_factory=dict)
    transfers: dict[str, dict[str, int]] = field(default_factory=dict)   # kind -> outcome -> count
    abandoned: int = 0                        # the caller hung up while waiting in a queue
    queue_gave_up: int = 0                    # queued, never answered, the caller did not hang up (moved on)


def percentile(values: Sequence[float], fraction: float) -> float | None:
    """Nearest-rank percentile: the smallest value with at least `fraction` of the values at or below it."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def day_bounds(day: date, tz: tzinfo) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time(0), tzinfo=tz)
    return start, datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz)


def daily(engine: Engine, day: date, tz: tzinfo) -> list[LineReport]:
    """Per legacy line, for calls arriving on `day` in `tz`: volume, answered share, waits, transfers.

    Abandoned (the caller hung up in a queue) and "queue gave up" (a queued call that no agent answered and whose
    caller did not hang up: the overflow chain ended, or a Redirect moved it on) are told apart; an overflow that
    was answered in the next queue is an answered call.

    Transfers are counted with their call's line and day (the first line stays responsible).
    """
    start, end = day_bounds(day, tz)
    with engine.connect() as conn:
        call_rows = conn.execute(select(calls.c.line, calls.c.outcome, calls.c.wait_seconds, calls.c.action)
                                 .where(calls.c.arrived_at >= start, calls.c.arrived_at < end)).all()
        transfer_rows = conn.execute(
            select(calls.c.line, transfers.c.kind, transfers.c.outcome)
            .join(transfers, transfers.c.uniqueid == calls.c.uniqueid)
            .where(calls.c.arrived_at >= start, calls.c.arrived_at < end)).all()
    by_line: dict[str, list[Any]] = {}
    for row in call_rows:
        by_line.setdefault(row.line, []).append(row)
    transfer_counts: dict[str, dict[str, dict[str, int]]] = {}
    for row in transfer_rows:
        kinds = transfer_counts.setdefault(row.line, {})
        outcomes = kinds.setdefault(row.kind, {})
        outcome = row.outcome or "unknown"
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    return [_line_report(line, by_line[line], transfer_counts.get(line, {})) for line in sorted(by_line)]


def _line_report(line: str, rows: Sequence[Any], transfer_counts: dict[str, dict[str, int]]) -> LineReport:
    waits = [r.wait_seconds for r in rows if r.wait_seconds is not None]
    outcomes: dict[str, int] = {}
    for r in rows:
        outcomes[r.outcome or "unknown"] = outcomes.get(r.outcome or "unknown", 0) + 1
    answered = outcomes.get(Outcome.ANSWERED.value, 0)
    return LineReport(
        line=line, calls=len(rows), answered=answered, answered_share=answered / len(rows) if rows else 0.0,
        waits=len(waits), average_wait=sum(waits) / len(waits) if waits else None,
        p90_wait=percentile(waits, 0.9), outcomes=dict(sorted(outcomes.items())),
        transfers={k: dict(sorted(v.items())) for k, v in sorted(transfer_counts.items())},
        abandoned=outcomes.get(Outcome.ABANDONED.value, 0),
        queue_gave_up=sum(1 for r in rows if r.outcome == Outcome.NO_ANSWER.value and r.action == "queue"))


def total(reports: Sequence[LineReport]) -> LineReport:
    """All lines together; a day without calls is all zeros. The pooled 90th percentile cannot be derived from
    the lines' figures: it is given only when a single line had waits (then it is that line's)."""
    calls_ = sum(r.calls for r in reports)
    answered = sum(r.answered for r in reports)
    waits = sum(r.waits for r in reports)
    wait_sum = sum((r.average_wait or 0.0) * r.waits for r in reports)
    outcomes: dict[str, int] = {}
    transfers_: dict[str, dict[str, int]] = {}
    for r in reports:
        for name, count in r.outcomes.items():
            outcomes[name] = outcomes.get(name, 0) + count
        for kind, outs in r.transfers.items():
            into = transfers_.setdefault(kind, {})
            for name, count in outs.items():
                into[name] = into.get(name, 0) + count
    with_waits = [r for r in reports if r.waits]
    return LineReport(
        line="all", calls=calls_, answered=answered, answered_share=answered / calls_ if calls_ else 0.0,
        waits=waits, average_wait=wait_sum / waits if waits else None,
        p90_wait=with_waits[0].p90_wait if len(with_waits) == 1 else None,
        outcomes=dict(sorted(outcomes.items())),
        transfers={k: dict(sorted(v.items())) for k, v in sorted(transfers_.items())},
        abandoned=sum(r.abandoned for r in reports), queue_gave_up=sum(r.queue_gave_up for r in reports))


def format_daily(reports: Sequence[LineReport], day: date) -> str:
    lines = [f"Daily report {day.isoformat()}",
             f"{'line':<8} {'calls':>6} {'answered':>9} {'abandoned':>9} {'gave up':>7} {'avg wait':>9} "
             f"{'p90 wait':>9}  transfers"]
    for r in [*reports, total(reports)]:
        avg = f"{r.average_wait:.1f}s" if r.average_wait is not None else "-"
        p90 = f"{r.p90_wait:.1f}s" if r.p90_wait is not None else "-"
        moved = "; ".join(f"{kind}: " + ", ".join(f"{o} {n}" for o, n in outs.items())
                          for kind, outs in r.transfers.items()) or "-"
        lines.append(f"{r.line:<8} {r.calls:>6} {r.answered_share:>8.1%} {r.abandoned:>9} {r.queue_gave_up:>7} "
                     f"{avg:>9} {p90:>9}  {moved}")
    if not reports:
        lines.append("(no calls that day)")
    return "\n".join(lines)
