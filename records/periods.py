"""Report periods in the table's time zone: a day, a week (Monday to Sunday), a month. Pure."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo

KINDS = ("daily", "weekly", "monthly")


def day_bounds(day: date, tz: tzinfo) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time(0), tzinfo=tz)
    return start, datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz)


@dataclass(frozen=True)
class Period:
    kind: str               # daily | weekly | monthly
    first: date             # first local day
    last: date              # last local day (inclusive)
    tz: tzinfo

    @property
    def start(self) -> datetime:
        return datetime.combine(self.first, time(0), tzinfo=self.tz)

    @property
    def end(self) -> datetime:      # exclusive
        return datetime.combine(self.last + timedelta(days=1), time(0), tzinfo=self.tz)

    @property
    def label(self) -> str:
        return self.first.isoformat() if self.first == self.last else f"{self.first.isoformat()} – {self.last.isoformat()}"

    def buckets(self) -> list[datetime]:
        """Per hour for a day, per day otherwise: the local start of each bucket."""
        if self.kind == "daily":
            return [datetime.combine(self.first, time(h), tzinfo=self.tz) for h in range(24)]
        days = (self.last - self.first).days + 1
        return [datetime.combine(self.first + timedelta(days=i), time(0), tzinfo=self.tz) for i in range(days)]

    def bucket_of(self, at: datetime) -> datetime:
        local = at.astimezone(self.tz)
        if self.kind == "daily":
            return local.replace(minute=0, second=0, microsecond=0)
        return datetime.combine(local.date(), time(0), tzinfo=self.tz)


def period(kind: str, day: date, tz: tzinfo) -> Period:
    """The period of `kind` that contains `day`."""
    if kind == "daily":
        return Period(kind, day, day, tz)
    if kind == "weekly":
        monday = day - timedelta(days=day.weekday())
        return Period(kind, monday, monday + timedelta(days=6), tz)
    if kind == "monthly":
        first = day.replace(day=1)
        following = (first + timedelta(days=32)).replace(day=1)
        return Period(kind, first, following - timedelta(days=1), tz)
    raise ValueError(f"unknown report period {kind!r}: one of {', '.join(KINDS)}")


def previous(kind: str, today: date, tz: tzinfo) -> Period:
    """The last complete period before `today`: yesterday, last week, last month."""
    current = period(kind, today, tz)
    return period(kind, current.first - timedelta(days=1), tz)
