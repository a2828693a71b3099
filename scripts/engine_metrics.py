"""The engine's own Prometheus gauges, served on the view's /metrics by `hotline serve` (read at scrape time)."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Callable, Iterator

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from routing.hours import calendar_days_left


class CalendarCollector(Collector):
    """Days of holiday data left per calendar in use, from the table in force (alert on < 60)."""

    def __init__(self, holder: Any, clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc)) -> None:
        self.holder, self.clock = holder, clock

    def collect(self) -> Iterator[Metric]:
        table = self.holder.current.table
        today = self.clock().astimezone(table.timezone).date()
        left = GaugeMetricFamily("hotline_calendar_days_left",
                                 "Days from today (the table's time zone) to the last day of holiday data of a "
                                 "calendar the queues' hours use; negative: already past", labels=["calendar"])
        for calendar, (_, days) in calendar_days_left(table, today).items():
            left.add_metric([calendar], days)
        yield left
