"""Forecast: per queue and hour of the week, the offered load, handle time, patience and agents needed.

From the records of a period (pure: facts in, a Forecast out):
- offered load: the calls the table sent to the queue first (calls.target), per hour of the week, divided by
  how many times that hour of the week occurs in the period;
- average handle time: the agents' talk time (calls.talk_seconds, from AMI) plus the queue's wrap-up time;
- patience: exponential, by maximum likelihood from censored waits: total time callers spent waiting (answered
  and abandoned alike) over the number who abandoned; none when nobody abandoned;
- agents needed: Erlang C for the target, queue by queue;
- with a roster or `simulate`, the simulated service level, abandonment and overflow of each hour with the
  agents scheduled (traffic.simulate: abandonment and the table's overflow chains).
"""
from __future__ import annotations

import math
import random
from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Iterable, Mapping

from routing.model import RoutingTable
from traffic import erlang
from traffic.erlang import Target
from traffic.simulate import QueueSpec, outlook, poisson_arrivals, simulate

HOURS_OF_WEEK = 168
SIM_HOURS, SIM_WARMUP = 3.0, 0.5     # each simulated hour: its rates held for 3 h, the first 30 min left out


@dataclass(frozen=True)
class CallFact:
    """One recorded call, as the forecast reads it."""

    queue: str                 # the first queue the table sent it to (calls.target where action = queue)
    arrived_at: datetime
    outcome: str | None = None
    wait: float | None = None
    talk: float | None = None


@dataclass(frozen=True)
class Cell:
    queue: str
    how: int                           # hour of the week: Monday 00-01 is 0, Sunday 23-24 is 167 (local)
    calls_per_hour: float
    aht: float                         # seconds, talk + wrap-up
    load: float                        # Erlangs
    agents: int                        # Erlang C for the target
    service_level: float               # Erlang C at `agents`
    prob_wait: float
    asa: float
    rostered: int | None = None
    rostered_service_level: float | None = None      # Erlang C with the rostered agents
    sim_service_level: float | None = None           # simulated with the rostered (else the needed) agents
    sim_abandoned: float | None = None
    sim_overflowed: float | None = None


@dataclass
class QueueSummary:
    id: str
    name: str
    calls: int
    aht: float | None
    patience: float | None             # mean seconds, None: nobody abandoned
    abandoned: int
    peak_agents: int = 0


@dataclass
class Forecast:
    start: datetime
    end: datetime
    target: Target
    queues: dict[str, QueueSummary]
    cells: dict[tuple[str, int], Cell] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def agents(self, queue: str) -> list[int]:
        return [self.cells[queue, h].agents if (queue, h) in self.cells else 0 for h in range(HOURS_OF_WEEK)]


def hour_of_week(at: datetime, tz) -> int:
    local = at.astimezone(tz)
    return local.weekday() * 24 + local.hour


def occurrences(start: datetime, end: datetime, tz) -> list[int]:
    """How many times each hour of the week starts within [start, end)."""
    counts = [0] * HOURS_OF_WEEK
    at = start.astimezone(tz).replace(minute=0, second=0, microsecond=0)
    if at < start:
        at += timedelta(hours=1)
    while at < end:
        counts[hour_of_week(at, tz)] += 1
        at += timedelta(hours=1)
    return counts


def estimate_patience(waits_of_all: float, abandoned: int) -> float | None:
    return waits_of_all / abandoned if abandoned else None


def build(table: RoutingTable, facts: Iterable[CallFact], start: datetime, end: datetime,
          target: Target = Target(), *, roster: Mapping[tuple[str, int], int] | None = None,
          simulate_hours: bool = False, seed: int = 12345, default_talk: float | None = None) -> Forecast:
    tz = table.timezone
    seen = occurrences(start, end, tz)
    arrivals: dict[tuple[str, int], int] = defaultdict(int)
    talk_cell: dict[tuple[str, int], list[float]] = defaultdict(list)
    talk_queue: dict[str, list[float]] = defaultdict(list)
    waited: dict[str, float] = defaultdict(float)
    abandoned: dict[str, int] = defaultdict(int)
    calls: dict[str, int] = defaultdict(int)
    for fact in facts:
        if not (start <= fact.arrived_at < end):
            continue
        how = hour_of_week(fact.arrived_at, tz)
        arrivals[fact.queue, how] += 1
        calls[fact.queue] += 1
        if fact.talk is not None and fact.outcome == "answered":
            talk_cell[fact.queue, how].append(fact.talk)
            talk_queue[fact.queue].append(fact.talk)
        if fact.wait is not None and math.isfinite(fact.wait):
            waited[fact.queue] += fact.wait
        if fact.outcome == "abandoned":
            abandoned[fact.queue] += 1

    everything = [t for ts in talk_queue.values() for t in ts]
    overall = sum(everything) / len(everything) if everything else default_talk
    result = Forecast(start, end, target, {})
    if overall is None and arrivals:
        result.notes.append("no talk times recorded: pass --talk SECONDS")
        return result
    ordered = [q for q in table.queues if q in calls] + sorted(q for q in calls if q not in table.queues)
    for queue in ordered:
        wrapup = table.queues[queue].wrapup_seconds if queue in table.queues else 0
        own = talk_queue.get(queue)
        queue_talk = sum(own) / len(own) if own else overall
        name = table.queues[queue].name if queue in table.queues else queue
        result.queues[queue] = QueueSummary(queue, name, calls[queue], queue_talk + wrapup,
                                            estimate_patience(waited[queue], abandoned[queue]), abandoned[queue])
        if queue not in table.queues:
            result.notes.append(f"queue {queue!r} of the records is not in the table")
        for how in range(HOURS_OF_WEEK):
            if not seen[how] or not arrivals.get((queue, how)):
                continue
            talks = talk_cell.get((queue, how))
            aht = (sum(talks) / len(talks) if talks else queue_talk) + wrapup
            rate = arrivals[queue, how] / seen[how]
            result.cells[queue, how] = _cell(queue, how, rate, aht, target, roster)
        result.queues[queue].peak_agents = max(result.agents(queue), default=0)
    if simulate_hours or roster:
        _simulate_all(table, result, roster, random.Random(seed))
    return result


def _cell(queue: str, how: int, rate: float, aht: float, target: Target,
          roster: Mapping[tuple[str, int], int] | None) -> Cell:
    load = rate * aht / 3600.0
    agents = erlang.agents_needed(rate, aht, target)
    rostered = roster.get((queue, how), 0) if roster is not None else None
    return Cell(queue, how, rate, aht, load, agents,
                erlang.service_level(load, agents, aht, target.seconds), erlang.prob_wait(load, agents),
                erlang.average_speed_of_answer(load, agents, aht), rostered,
                erlang.service_level(load, rostered, aht, target.seconds) if rostered is not None else None)


def _simulate_all(table: RoutingTable, result: Forecast, roster, rng: random.Random) -> None:
    """Every hour of the week with its rates held: the table's overflow chains and the callers' patience."""
    for how in range(HOURS_OF_WEEK):
        present = {q: c for (q, h), c in result.cells.items() if h == how}
        if not present:
            continue
        specs = {}
        for queue_id in table.queues:
            queue = table.queues[queue_id]
            cell = present.get(queue_id)
            agents = (roster.get((queue_id, how), 0) if roster is not None else cell.agents if cell else 0)
            over = queue.overflow
            specs[queue_id] = QueueSpec(queue_id, agents, over.after_seconds if over else None,
                                        over.to if over else None)
        arrivals = []
        for queue_id, cell in present.items():
            if queue_id not in specs:
                continue
            patience = result.queues[queue_id].patience
            arrivals += poisson_arrivals(rng, queue_id, cell.calls_per_hour, SIM_HOURS, cell.aht, patience)
        arrivals.sort(key=lambda a: a.at)
        fates = simulate(specs, arrivals)
        for queue_id, seen in outlook(arrivals, fates, result.target.seconds, SIM_WARMUP * 3600).items():
            cell = present[queue_id]
            result.cells[queue_id, how] = _with_sim(cell, seen)


def _with_sim(cell: Cell, seen) -> Cell:
    return replace(cell, sim_service_level=seen.service_level, sim_abandoned=seen.abandoned,
                   sim_overflowed=seen.overflowed)
