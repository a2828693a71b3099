"""Prometheus /metrics: read from the live state at scrape time (no numbers, only aggregates).

Gauges per server and queue: waiting callers, longest wait, members by state, service level today, answered,
abandoned (the caller hung up) and overflowed (moved on to the next queue by the table) today. Counters
answered/abandoned/overflowed count since this process started (Prometheus counters never go back; use increase()
for a day).
"""
from __future__ import annotations

from typing import Callable, Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from supervisor.state import LiveState

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class QueueCollector(Collector):
    def __init__(self, state: LiveState, clock: Callable[[], float]) -> None:
        self.state, self.clock = state, clock

    def collect(self) -> Iterator[Metric]:
        view = self.state.view(self.clock(), full_numbers=False)
        q_labels = ["server", "queue"]
        waiting = GaugeMetricFamily("hotline_queue_waiting_callers", "Callers waiting in the queue now", labels=q_labels)
        longest = GaugeMetricFamily("hotline_queue_longest_wait_seconds", "Wait of the longest-waiting caller",
                                    labels=q_labels)
        members = GaugeMetricFamily("hotline_queue_members", "Queue members by state", labels=q_labels + ["state"])
        sl = GaugeMetricFamily("hotline_queue_service_level_ratio",
                               f"Calls answered within {view['service_level_seconds']} s / calls offered, today "
                               "(Asia/Shanghai)", labels=q_labels)
        answered_today = GaugeMetricFamily("hotline_queue_answered_today", "Calls answered today", labels=q_labels)
        abandoned_today = GaugeMetricFamily("hotline_queue_abandoned_today", "Calls abandoned today", labels=q_labels)
        overflowed_today = GaugeMetricFamily("hotline_queue_overflowed_today",
                                             "Calls moved on to the next queue today (timeout, nobody logged in)",
                                             labels=q_labels)
        answered = CounterMetricFamily("hotline_queue_answered", "Calls answered since start", labels=q_labels)
        abandoned = CounterMetricFamily("hotline_queue_abandoned", "Calls abandoned since start", labels=q_labels)
        overflowed = CounterMetricFamily("hotline_queue_overflowed", "Calls moved on to the next queue since start",
                                         labels=q_labels)
        connected = GaugeMetricFamily("hotline_ami_connected", "1 when the AMI link to the server is up",
                                      labels=["server"])
        for server in view["servers"]:
            connected.add_metric([server["name"]], 1 if server["connected"] else 0)
            for q in server["queues"]:
                labels = [server["name"], q["name"]]
                waiting.add_metric(labels, q["waiting"])
                longest.add_metric(labels, q["longest_wait"])
                for state, count in q["members_by_state"].items():
                    members.add_metric(labels + [state], count)
                if q["service_level"] is not None:
                    sl.add_metric(labels, q["service_level"])
                answered_today.add_metric(labels, q["answered"])
                abandoned_today.add_metric(labels, q["abandoned"])
                overflowed_today.add_metric(labels, q["overflowed"])
                answered.add_metric(labels, q["answered_total"])
                abandoned.add_metric(labels, q["abandoned_total"])
                overflowed.add_metric(labels, q["overflowed_total"])
        yield from (waiting, longest, members, sl, answered_today, abandoned_today, overflowed_today, answered,
                    abandoned, overflowed, connected)


# Collectors of the process hosting the view (`hotline serve` adds the engine's, e.g. calendar data left),
# registered by that host before the view starts and read at every scrape.
process_collectors: list[Collector] = []


def make_registry(state: LiveState, clock: Callable[[], float]) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(QueueCollector(state, clock))
    for collector in process_collectors:
        registry.register(collector)
    return registry


def render(registry: CollectorRegistry) -> bytes:
    return generate_latest(registry)
