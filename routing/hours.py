"""Opening hours explained: what kind of day an instant falls on, the spans that decide, the next opening,
and how many days of calendar data are left. Pure: the instant is an argument, nothing is read or written.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from routing.model import Calendar, RoutingTable, Schedule, TimeSpan

SEARCH_DAYS = 400      # how far ahead the next opening is looked for (a year of holidays and more)


@dataclass(frozen=True)
class DayKind:
    working: bool
    why: str           # "holiday 国庆节", "adjusted working day (调休)", "weekday", "weekend"
    beyond_data: bool = False   # past the calendar's data: a plain weekday/weekend guess


def day_kind(calendar: Calendar | None, day: date) -> DayKind:
    beyond = calendar is not None and calendar.covers_until is not None and day > calendar.covers_until
    if calendar is not None and day in calendar.working_days:
        return DayKind(True, "adjusted working day (调休)")
    if calendar is not None and day in calendar.holidays:
        return DayKind(False, f"public holiday {calendar.holidays[day]}")
    weekday = day.weekday() < 5
    return DayKind(weekday, "weekday" if weekday else "weekend", beyond)


def _spans_text(spans: tuple[TimeSpan, ...]) -> str:
    return ", ".join(f"{s.start:%H:%M}-{s.end:%H:%M}" if s.end else f"{s.start:%H:%M}-24:00" for s in spans) \
        or "closed all day"


@dataclass(frozen=True)
class HoursExplanation:
    schedule: str
    calendar: str | None
    kind: DayKind
    spans: str         # the day's opening spans, as written
    open: bool
    next_open: datetime | None     # None: open now, or no opening within SEARCH_DAYS


def explain_hours(table: RoutingTable, schedule_id: str, at: datetime) -> HoursExplanation:
    schedule: Schedule = table.schedules[schedule_id]
    local = at.astimezone(table.timezone)
    calendar = table.calendars.get(schedule.calendar) if schedule.calendar else None
    if schedule.always_open:
        return HoursExplanation(schedule_id, schedule.calendar, DayKind(True, "always open"), "00:00-24:00", True,
                                None)
    kind = day_kind(calendar, local.date())
    spans = schedule.workday if kind.working else schedule.restday
    is_open = any(span.contains(local.time()) for span in spans)
    return HoursExplanation(schedule_id, schedule.calendar, kind, _spans_text(spans), is_open,
                            None if is_open else next_opening(table, schedule, local))


def next_opening(table: RoutingTable, schedule: Schedule, at: datetime) -> datetime | None:
    """The first instant after `at` at which the schedule opens (days past the calendar's data are guessed
    as plain weekdays/weekends; the caller says so)."""
    local = at.astimezone(table.timezone)
    calendar = table.calendars.get(schedule.calendar) if schedule.calendar else None
    for offset in range(SEARCH_DAYS):
        day = local.date() + timedelta(days=offset)
        spans = schedule.workday if day_kind(calendar, day).working else schedule.restday
        for span in sorted(spans, key=lambda s: s.start):
            start = datetime.combine(day, span.start, tzinfo=table.timezone)
            if start > local:
                return start
            if offset == 0 and span.contains(local.time()):
                return local
    return None


def calendar_days_left(table: RoutingTable, today: date) -> dict[str, tuple[date, int]]:
    """Per calendar a queue's hours depend on: (last day of data, days from today to it; negative: past)."""
    used = {table.schedules[q.schedule].calendar for q in table.queues.values()
            if q.schedule and table.schedules[q.schedule].calendar}
    out = {}
    for cid in sorted(used):
        last = table.calendars[cid].covers_until
        if last is not None:
            out[cid] = (last, (last - today).days)
    return out

