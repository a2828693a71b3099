"""Discrete-event simulation of the table's queues with abandonment and overflow (simpy).

Erlang C knows one queue whose callers never hang up; the table's seats overflow into each other (expert-12320
-> general-12345 after 90 s) and callers do hang up. Here every caller waits in its queue (FIFO, as
app_queue's rrmemory serves the longest waiting) until an agent takes it, its patience runs out (abandoned)
or the queue's overflow time passes (on to the next queue, its patience still running, the wait counted).
Pure: arrivals in, fates out; the randomness is the caller's seeded random.Random.
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Mapping, Sequence

import simpy


@dataclass(frozen=True)
class QueueSpec:
    id: str
    agents: int
    overflow_after: float | None = None
    overflow_to: str | None = None


@dataclass(frozen=True)
class Arrival:
    at: float              # seconds from the start
    queue: str             # where the table sends it first
    handle: float          # seconds an agent is busy with it (talk + wrap-up)
    patience: float        # seconds it is willing to wait in all (math.inf: never hangs up)


@dataclass(frozen=True)
class Fate:
    wait: float
    answered_in: str | None
    abandoned: bool
    overflowed: bool


def simulate(queues: Mapping[str, QueueSpec], arrivals: Sequence[Arrival]) -> list[Fate]:
    env = simpy.Environment()
    seats = {q.id: simpy.Resource(env, capacity=q.agents) for q in queues.values() if q.agents > 0}
    fates: list[Fate | None] = [None] * len(arrivals)

    def caller(index: int, call: Arrival):
        yield env.timeout(call.at)
        start, queue_id, overflowed = env.now, call.queue, False
        seen = set()
        while True:
            seen.add(queue_id)
            spec = queues[queue_id]
            left = call.patience - (env.now - start)
            moves_on = (spec.overflow_after is not None and spec.overflow_to in queues
                        and spec.overflow_to not in seen)
            limit = min(left, spec.overflow_after) if moves_on else left
            seat = seats.get(queue_id)
            request = seat.request() if seat is not None else None
            waits = [env.timeout(limit)] if math.isfinite(limit) else []
            got = yield simpy.AnyOf(env, ([request] if request is not None else []) + waits) \
                if (request is not None or waits) else env.timeout(0)
            if request is not None and (request in got or request.triggered):
                fates[index] = Fate(env.now - start, queue_id, False, overflowed)
                yield env.timeout(call.handle)
                seat.release(request)
                return
            if request is not None:
                request.cancel()
            if not waits:          # no agents, no patience limit, no overflow: waits for ever
                fates[index] = Fate(math.inf, None, False, overflowed)
                return
            if moves_on and spec.overflow_after <= left:
                queue_id, overflowed = spec.overflow_to, True
                continue
            fates[index] = Fate(env.now - start, None, True, overflowed)
            return

    for index, call in enumerate(arrivals):
        env.process(caller(index, call))
    env.run()
    return [f if f is not None else Fate(math.inf, None, False, False) for f in fates]


def poisson_arrivals(rng: random.Random, queue: str, calls_per_hour: float, hours: float, mean_handle: float,
                     mean_patience: float | None, start: float = 0.0) -> list[Arrival]:
    """A Poisson stream with exponential handle times and patience (None: callers never hang up)."""
    out: list[Arrival] = []
    if calls_per_hour <= 0:
        return out
    t, end, rate = start, start + hours * 3600.0, calls_per_hour / 3600.0
    while True:
        t += rng.expovariate(rate)
        if t >= end:
            return out
        patience = rng.expovariate(1.0 / mean_patience) if mean_patience else math.inf
        out.append(Arrival(t, queue, rng.expovariate(1.0 / mean_handle), patience))


@dataclass(frozen=True)
class Outlook:
    """Simulated service of the calls that the table sends first to one queue."""

    offered: int
    service_level: float      # answered within the target seconds, in any queue of the chain
    abandoned: float
    overflowed: float
    waited: float             # share that waited at all


def outlook(arrivals: Sequence[Arrival], fates: Sequence[Fate], seconds: float, after: float = 0.0
            ) -> dict[str, Outlook]:
    """Per first queue, over the arrivals at or after `after` (a warm-up before it is left out)."""
    groups: dict[str, list[Fate]] = {}
    for call, fate in zip(arrivals, fates):
        if call.at >= after:
            groups.setdefault(call.queue, []).append(fate)
    out = {}
    for queue, group in groups.items():
        n = len(group)
        out[queue] = Outlook(
            offered=n,
            service_level=sum(1 for f in group if f.answered_in is not None and f.wait <= seconds) / n,
            abandoned=sum(1 for f in group if f.abandoned) / n,
            overflowed=sum(1 for f in group if f.overflowed) / n,
            waited=sum(1 for f in group if f.wait > 1e-9) / n)
    return out
