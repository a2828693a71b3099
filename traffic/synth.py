"""A synthetic week (or any number of days) of calls, so a fresh install can show a forecast.

Arrivals per line are Poisson within each local hour, shaped like a 12345 day (quiet night, a morning peak, a
lunch dip, an afternoon peak, a tail into the evening); rest days and the table's holidays carry less and a
flatter day. Every call is routed by routing.decide under the table, so its queue is what the table says;
its wait, outcome and talk come from simulating each hour (traffic.simulate) with the agents Erlang C asks
for that hour times `staffing`. Talk times are log-normal (mean `talk_mean`), patience exponential (mean
`patience_mean`). With the menus, callers of a line with a menu press keys as in MENU_CHOICES (recorded as
the call's IVR path, walked by traffic.replay as the IVR would), so the sub-platforms and special seats get
their calls too. One seeded random.Random: the same seed writes the same calls.
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Mapping

from ivr.menus import Menus
from records.types import CallRecord, Outcome
from routing.decide import decide
from routing.model import Action, RoutingTable
from traffic import erlang
from traffic.replay import Replayer
from traffic.simulate import Arrival, QueueSpec, simulate

# Share of a working day's calls per local hour (sums to 1 after normalising): 12345 centres see a morning peak
# 09-11, a dip over lunch, a second peak 14-17 and a long evening tail; nights are quiet but never empty.
WORKDAY_SHAPE = (0.6, 0.4, 0.3, 0.3, 0.3, 0.5, 1.0, 2.2, 4.8, 7.6, 8.2, 7.4, 4.6, 4.4, 6.9, 7.5, 7.2, 6.0,
                 4.2, 3.6, 3.0, 2.3, 1.5, 0.9)
RESTDAY_SHAPE = (0.8, 0.5, 0.4, 0.3, 0.3, 0.5, 0.9, 1.6, 3.0, 4.6, 5.2, 5.0, 3.8, 3.6, 4.4, 4.6, 4.4, 4.0,
                 3.4, 3.2, 2.8, 2.2, 1.6, 1.1)
RESTDAY_FACTOR = 0.55
# Calls a working day per dialed number: 12345 itself carries most; the folded-in lines keep a share.
DAILY_VOLUME: Mapping[str, int] = {
    "12345": 2400, "12320": 260, "12329": 160, "12348": 120, "12333": 240, "12366": 150, "12360": 90,
    "12305": 50, "12318": 80, "12317": 40, "12367": 50, "12349": 40, "12396": 20, "12336": 15, "12312": 15,
    "12301": 15, "12300": 15, "12356": 15, "96119": 10, "12322": 10,
}

# What callers press in each shipped menu, by weight (paths as ivr.session records them: menu ids and keys;
# "t" is a timeout). Menus not named here: the caller waits for the line's own route.
MENU_CHOICES: Mapping[str, tuple[tuple[str, int], ...]] = {
    "main": (("main>1", 46), ("main>0", 10), ("main>2", 14), ("main>3", 4), ("main>4", 2),
             ("main>5>cities>1", 8), ("main>5>cities>2", 5), ("main>5>cities>0", 2), ("main>6", 3),
             ("main>t>t>t", 4), ("main>9>1", 2)),
    "expert-12320": (("expert-12320>1", 65), ("expert-12320>2", 30), ("expert-12320>t>t", 5)),
    "subcenter": (("subcenter>1", 60), ("subcenter>2", 40)),
}


@dataclass(frozen=True)
class Model:
    volumes: Mapping[str, int] = field(default_factory=lambda: dict(DAILY_VOLUME))
    talk_mean: float = 240.0
    talk_sigma: float = 0.6            # of the log-normal's underlying normal
    patience_mean: float = 90.0
    staffing: float = 1.0              # agents = ceil(Erlang C's agents x staffing)
    target: erlang.Target = erlang.Target()


def _lognormal(rng: random.Random, mean: float, sigma: float) -> float:
    return rng.lognormvariate(math.log(mean) - sigma * sigma / 2, sigma)


def is_working(table: RoutingTable, day: date) -> bool:
    calendars = list(table.calendars.values())
    return calendars[0].is_working_day(day) if calendars else day.weekday() < 5


def synthesize(table: RoutingTable, first_day: date, days: int, seed: int, model: Model = Model(),
               menus: Menus | None = None) -> list[CallRecord]:
    rng = random.Random(seed)
    walker = Replayer(table, menus) if menus is not None else None
    tz = table.timezone
    callers = [f"1{rng.randint(3, 9)}{rng.randint(0, 999_999_999):09d}" for _ in range(5000)]
    records: list[CallRecord] = []
    for d in range(days):
        day = first_day + timedelta(days=d)
        working = is_working(table, day)
        shape = WORKDAY_SHAPE if working else RESTDAY_SHAPE
        scale = (1.0 if working else RESTDAY_FACTOR) / sum(shape)
        for hour in range(24):
            start = datetime.combine(day, time(hour), tz)
            records += _one_hour(table, model, rng, start, callers, scale * shape[hour], walker)
    return records


def _one_hour(table: RoutingTable, model: Model, rng: random.Random, start: datetime, callers: list[str],
              share: float, walker: Replayer | None) -> list[CallRecord]:
    calls = []   # (offset, dialed, caller, route, ivr path)
    for dialed, volume in model.volumes.items():
        rate = volume * share / 3600.0
        t = rng.expovariate(rate) if rate > 0 else 3600.0
        while t < 3600.0:
            caller, at = rng.choice(callers), start + timedelta(seconds=t)
            route, path = decide(table, dialed, caller, at), None
            choices = MENU_CHOICES.get(route.menu or "") if walker is not None else None
            if choices:
                path = rng.choices([p for p, _ in choices], [w for _, w in choices])[0]
                route, _gone = walker.after_path(route, path, at)
            calls.append((t, dialed, caller, route, path))
            t += rng.expovariate(rate)
    calls.sort(key=lambda c: c[0])
    queued = [i for i, c in enumerate(calls) if c[3].action is Action.QUEUE and c[3].target in table.queues]
    talks = [_lognormal(rng, model.talk_mean, model.talk_sigma) for _ in queued]
    arrivals = [Arrival(calls[i][0], calls[i][3].target, talk + table.queues[calls[i][3].target].wrapup_seconds,
                        rng.expovariate(1.0 / model.patience_mean)) for i, talk in zip(queued, talks)]
    fates = simulate(_staffing(table, model, [calls[i][3].target for i in queued]), arrivals)
    fate_of = {i: (fate, talk) for i, fate, talk in zip(queued, fates, talks)}
    out = []
    for n, (offset, dialed, caller, route, path) in enumerate(calls):
        at = start + timedelta(seconds=offset)
        base = dict(uniqueid=f"synth-{start:%Y%m%d%H}-{n:05d}", dialed=dialed, line=route.line, caller=caller,
                    arrived_at=at, category=route.category.value, rule_id=route.rule_id,
                    action=route.action.value, target=route.target, tags=route.tags, language="zh",
                    ivr_path=tuple(path.split(">")) if path else (),
                    table_version=table.version, revision=1)
        found = fate_of.get(n)
        if found is None:     # a callback request or an announcement: no queue
            out.append(CallRecord(**base, ended_at=at + timedelta(seconds=20), outcome=None))
            continue
        fate, talk = found
        if fate.answered_in is not None:
            out.append(CallRecord(**base, wait_seconds=fate.wait, answered_by=f"synthetic/{fate.answered_in}",
                                  outcome=Outcome.ANSWERED, talk_seconds=talk,
                                  ended_at=at + timedelta(seconds=fate.wait + talk)))
        else:
            wait = fate.wait if math.isfinite(fate.wait) else 3600.0
            out.append(CallRecord(**base, wait_seconds=wait, outcome=Outcome.ABANDONED,
                                  ended_at=at + timedelta(seconds=wait)))
    return out


def _staffing(table: RoutingTable, model: Model, targets: list[str]) -> dict[str, QueueSpec]:
    counts: dict[str, int] = {}
    for queue_id in targets:
        counts[queue_id] = counts.get(queue_id, 0) + 1
    specs = {}
    for queue_id, queue in table.queues.items():
        handle = model.talk_mean + queue.wrapup_seconds
        need = erlang.agents_needed(counts.get(queue_id, 0), handle, model.target)
        agents = math.ceil(need * model.staffing)
        over = queue.overflow
        specs[queue_id] = QueueSpec(queue_id, agents, over.after_seconds if over else None, over.to if over else None)
    return specs
