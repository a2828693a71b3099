"""Work orders to sub-centers and departments: dispatch, sign, close, and the sign deadline.

The deadline counts working days on the routing table's calendar (holidays skipped, 调休 Saturdays and
Sundays counted): the clock runs only on working days, so "one working day" from Friday 17:00 before a
working Saturday ends Saturday 17:00, and from the eve of a holiday week it ends after the holiday.
"""
from __future__ import annotations

from datetime import date, datetime, time, timedelta, tzinfo
from typing import Any, Iterator

from sqlalchemy import Connection, Engine, and_, func, or_, select, update
from sqlalchemy.exc import IntegrityError

from routing.model import Calendar

from records.schema import work_orders
from records.types import WorkOrder, WorkOrderStatus

MAX_DAYS_SCANNED = 3660   # a calendar that never works again is a configuration error, not an endless loop


class WorkOrderError(ValueError):
    """A work-order action that the order's state does not allow (clear message for the CLI and web view)."""


def deadline(dispatched_at: datetime, calendar: Calendar, working_days: int = 1, tz: tzinfo | None = None) -> datetime:
    """The instant `working_days` full working days after `dispatched_at`, counting only working-day time.

    Days are the calendar's days in `tz` (default: dispatched_at's own zone; pass the routing table's).
    Dispatched on a rest day, the clock starts at the next working day's midnight. Pure: no clock read.
    """
    if dispatched_at.tzinfo is None:
        raise ValueError("dispatched_at must be timezone-aware")
    if working_days < 0:
        raise ValueError("working_days must not be negative")
    zone = tz or dispatched_at.tzinfo
    cursor = dispatched_at.astimezone(zone)
    remaining = timedelta(days=working_days)
    for _ in range(MAX_DAYS_SCANNED):
        day_end = datetime.combine(cursor.date() + timedelta(days=1), time(0), tzinfo=zone)
        if calendar.is_working_day(cursor.date()):
            available = day_end - cursor
            if remaining <= available:
                return cursor + remaining
            remaining -= available
        cursor = day_end
    raise ValueError(f"calendar {calendar.id!r} has no working day within {MAX_DAYS_SCANNED} days")


def overdue_clause(at: datetime) -> Any:
    """SQL: past the sign deadline at `at` and neither signed nor closed by then."""
    return and_(work_orders.c.sign_deadline <= at,
                or_(work_orders.c.signed_at.is_(None), work_orders.c.signed_at > at),
                or_(work_orders.c.closed_at.is_(None), work_orders.c.closed_at > at))


def _number_prefix(day: date) -> str:
    return f"WO-{day:%Y%m%d}-"


def _next_number(conn: Connection, day: date) -> str:
    prefix = _number_prefix(day)
    last = conn.execute(select(func.max(work_orders.c.number)).where(work_orders.c.number.like(prefix + "%"))).scalar()
    sequence = int(last.rsplit("-", 1)[1]) + 1 if last else 1
    if sequence > 9999:
        raise WorkOrderError(f"more than 9999 work orders on {day}: widen the number format")
    return f"{prefix}{sequence:04d}"


def dispatch(engine: Engine, *, line: str, category: str, target: str, at: datetime, calendar: Calendar,
             tz: tzinfo, department: str | None = None, uniqueid: str | None = None,
             dispatched_by: str | None = None, summary: str | None = None, working_days: int = 1) -> WorkOrder:
    """Create a work order numbered WO-<local date>-NNNN; two dispatchers racing get consecutive numbers."""
    due = deadline(at, calendar, working_days, tz)
    day = at.astimezone(tz).date()
    for _attempt in range(20):
        try:
            with engine.begin() as conn:
                number = _next_number(conn, day)
                values = dict(number=number, uniqueid=uniqueid, line=line, category=category, target=target,
                              department=department, summary=summary, status=WorkOrderStatus.DISPATCHED.value,
                              dispatched_at=at, dispatched_by=dispatched_by, sign_deadline=due)
                conn.execute(work_orders.insert().values(**values))
            return get(engine, number)
        except IntegrityError:
            continue   # another dispatcher took this number: take the next
    raise WorkOrderError("could not allocate a work-order number (20 collisions)")


def get(engine: Engine, number: str) -> WorkOrder:
    with engine.connect() as conn:
        row = conn.execute(select(work_orders).where(work_orders.c.number == number)).mappings().first()
    if row is None:
        raise WorkOrderError(f"no work order {number}")
    return WorkOrder(**dict(row))


def sign(engine: Engine, number: str, *, at: datetime, by: str) -> WorkOrder:
    return _transition(engine, number, WorkOrderStatus.DISPATCHED, WorkOrderStatus.SIGNED,
                       {"signed_at": at, "signed_by": by})


def close(engine: Engine, number: str, *, at: datetime, by: str) -> WorkOrder:
    order = get(engine, number)
    frm = order.status if order.status != WorkOrderStatus.CLOSED else WorkOrderStatus.SIGNED
    return _transition(engine, number, frm, WorkOrderStatus.CLOSED, {"closed_at": at, "closed_by": by})


def _transition(engine: Engine, number: str, frm: WorkOrderStatus, to: WorkOrderStatus,
                values: dict[str, Any]) -> WorkOrder:
    with engine.begin() as conn:
        changed = conn.execute(update(work_orders)
                               .where(work_orders.c.number == number, work_orders.c.status == frm.value)
                               .values(status=to.value, **values)).rowcount
    if not changed:
        current = get(engine, number)   # raises if it does not exist
        raise WorkOrderError(f"{number} is {current.status.value}; cannot change it to {to.value}")
    return get(engine, number)


def list_orders(engine: Engine, *, overdue_at: datetime | None = None, status: str | None = None,
                line: str | None = None) -> Iterator[WorkOrder]:
    query = select(work_orders).order_by(work_orders.c.dispatched_at)
    if overdue_at is not None:
        query = query.where(overdue_clause(overdue_at))
    if status:
        query = query.where(work_orders.c.status == WorkOrderStatus(status).value)
    if line:
        query = query.where(work_orders.c.line == line)
    with engine.connect() as conn:
        rows = conn.execute(query).mappings().all()
    return (WorkOrder(**dict(row)) for row in rows)
