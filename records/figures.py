"""The one definition of the queue figures (offered, answered, answered within the service level, abandoned,
overflowed, waits), as a pure function of call rows. The live view (seeded from SQL, then kept live from AMI
through records.outcomes), `hotline queues watch`, /metrics and `hotline report` all count through `legs_of` and
`Tally`, so the same calls give the same numbers everywhere.

A call counts in every queue it went through (its `queue_legs`):
- left a queue unanswered because the table moved it on (timeout, nobody logged in) or the queues gave up:
  *overflowed* there, not offered there;
- answered by an agent of a queue: *answered* there, and *within the service level* when the caller's whole
  wait (every queue on the way) was at most the threshold;
- the caller hung up while waiting: *abandoned* there;
- redirected out of the queue by someone (not the caller, not the table): none of these.
Offered = answered + abandoned, so an overflowed call is offered once, where it ended. Service level =
answered within the threshold / offered; abandonment rate = abandoned / offered; waits (average, 90th
percentile) are the whole queue wait of answered calls (the caller's speed of answer).
A line's figures are the sum of its calls' queue figures. A day is the call's arrival day in Asia/Shanghai.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Iterable, Mapping, Sequence

ANSWERED, ABANDONED, OVERFLOWED = "answered", "abandoned", "overflowed"
LEFT = "left"           # taken out of the queue unanswered by someone (a Redirect): none of the three
_RESULT_OF_OUTCOME = {"answered": ANSWERED, "abandoned": ABANDONED, "no_answer": OVERFLOWED}


def leg(queue: str, joined_at: datetime | None, left_at: datetime | None, wait: float | None,
        result: str | None, server: str | None = None) -> dict[str, Any]:
    """One queue on a call's way, JSON-safe (it is stored as is in calls.queue_legs). `server`: the Asterisk
    server (AMI link name) whose queue it was; several boxes may have a queue of the same name."""
    return {"queue": queue, "server": server, "joined_at": joined_at.isoformat() if joined_at else None,
            "left_at": left_at.isoformat() if left_at else None,
            "wait": round(wait, 3) if wait is not None else None, "result": result}


@dataclass(frozen=True)
class CallFigures:
    """What the figures need of one call row (SQL or live)."""

    uniqueid: str
    line: str
    arrived_at: datetime
    outcome: str | None = None
    wait_seconds: float | None = None
    action: str | None = None
    target: str | None = None
    queue_legs: tuple[Mapping[str, Any], ...] = ()

    @classmethod
    def of(cls, row: Any) -> "CallFigures":
        """From a SQL row mapping or a records.types.CallRecord."""
        get = row.get if isinstance(row, Mapping) else (lambda name: getattr(row, name, None))
        outcome = get("outcome")
        action = get("action")
        return cls(uniqueid=get("uniqueid"), line=get("line") or "", arrived_at=get("arrived_at"),
                   outcome=getattr(outcome, "value", outcome), wait_seconds=get("wait_seconds"),
                   action=getattr(action, "value", action), target=get("target"),
                   queue_legs=tuple(get("queue_legs") or ()))

    @property
    def final(self) -> bool:
        return self.outcome is not None


def legs_of(call: CallFigures) -> list[tuple[str, str, str]]:
    """(server, queue, result) for every queue the call left with a result (server "" when not known). Rows
    written before calls kept their queues (or by the engine alone) count in their target queue, by outcome."""
    if call.queue_legs:
        return [(str(item.get("server") or ""), str(item.get("queue") or ""), str(item["result"]))
                for item in call.queue_legs if item.get("result") in (ANSWERED, ABANDONED, OVERFLOWED)]
    result = _RESULT_OF_OUTCOME.get(call.outcome or "")
    if call.action == "queue" and call.target and result:
        return [("", call.target, result)]
    return []


@dataclass
class Tally:
    answered: int = 0
    answered_in_sl: int = 0
    abandoned: int = 0
    overflowed: int = 0
    hold_total: float = 0.0       # seconds of wait over the answered calls (the average wait)

    @property
    def offered(self) -> int:
        return self.answered + self.abandoned

    def service_level(self) -> float | None:
        """Answered within the threshold / offered; None when nothing was offered."""
        return self.answered_in_sl / self.offered if self.offered else None

    def abandonment_rate(self) -> float | None:
        return self.abandoned / self.offered if self.offered else None

    def average_wait(self) -> float | None:
        return self.hold_total / self.answered if self.answered else None

    def add(self, other: "Tally", sign: int = 1) -> None:
        self.answered += sign * other.answered
        self.answered_in_sl += sign * other.answered_in_sl
        self.abandoned += sign * other.abandoned
        self.overflowed += sign * other.overflowed
        self.hold_total += sign * other.hold_total

    def empty(self) -> bool:
        return not (self.answered or self.abandoned or self.overflowed)


def contributions(call: CallFigures, service_level: int) -> list[tuple[str, Tally]]:
    """The call's share of each queue's figures (by queue name): the one place that says what counts."""
    return [(queue, share) for (_server, queue), share in server_contributions(call, service_level)]


def server_contributions(call: CallFigures, service_level: int) -> list[tuple[tuple[str, str], Tally]]:
    """The same, keyed by (server, queue): the live view's tiles are per Asterisk server."""
    out = []
    for server, queue, result in legs_of(call):
        t = Tally()
        if result == ANSWERED:
            wait = call.wait_seconds or 0.0
            t.answered, t.hold_total = 1, wait
            t.answered_in_sl = 1 if wait <= service_level else 0
        elif result == ABANDONED:
            t.abandoned = 1
        else:
            t.overflowed = 1
        out.append(((server, queue), t))
    return out


def answered_wait(call: CallFigures) -> float | None:
    """The wait that enters the average and the 90th percentile: answered calls only."""
    if any(result == ANSWERED for _s, _q, result in legs_of(call)):
        return call.wait_seconds or 0.0
    return None


@dataclass
class Figures:
    """Tallies per (server, queue), per line and per (server, queue, line), summed from calls."""

    queues: dict[tuple[str, str], Tally] = field(default_factory=dict)
    lines: dict[str, Tally] = field(default_factory=dict)
    queue_lines: dict[tuple[str, str, str], Tally] = field(default_factory=dict)

    def add_call(self, call: CallFigures, service_level: int, sign: int = 1
                 ) -> list[tuple[tuple[str, str], Tally]]:
        parts = server_contributions(call, service_level)
        for (server, queue), t in parts:
            for table, key in ((self.queues, (server, queue)), (self.lines, call.line or "?"),
                               (self.queue_lines, (server, queue, call.line or "?"))):
                table.setdefault(key, Tally()).add(t, sign)
        return parts


def figures(rows: Iterable[Any], service_level: int) -> Figures:
    """The pure function: call rows in, figures per queue and per line out."""
    out = Figures()
    for row in rows:
        out.add_call(row if isinstance(row, CallFigures) else CallFigures.of(row), service_level)
    return out


def percentile(values: Sequence[float], fraction: float) -> float | None:
    """Nearest-rank percentile: the smallest value with at least `fraction` of the values at or below it."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


class DayFigures:
    """Today's figures, kept live: one row per call (by uniqueid), so a call seeded from SQL and seen again live
    is counted once; a row replaced takes its old share out of the tallies first. Pure: time passed in.

    `totals` only ever grow (the Prometheus counters since start): live changes' positive shares per queue.
    A queue's figures are its server's legs; legs whose server is not known (rows of older records) count for
    the queue of that name when the view has a single server (`sole_server`), else nowhere in the tiles."""

    def __init__(self, service_level: int, tz: Any) -> None:
        self.service_level, self.tz = service_level, tz
        self.day: Any = None
        self.calls: dict[str, CallFigures] = {}
        self.figures = Figures()
        self.totals: dict[str, Tally] = {}
        self.seeded_at: float | None = None     # when today's rows were last read from SQL (None: live only)
        self.seed_error: str | None = None
        self.sole_server: str | None = None

    def start_day(self, day: Any) -> bool:
        """A new local day: figures start from zero (then the caller seeds that day's rows)."""
        if day == self.day:
            return False
        self.day, self.calls, self.figures, self.seeded_at = day, {}, Figures(), None
        return True

    def put(self, call: CallFigures, *, live: bool) -> bool:
        """Fold one call in; True when its figures changed. A row from SQL never replaces what the live events
        already know, unless SQL has the call's end and the live side does not."""
        if call.arrived_at is None or call.arrived_at.astimezone(self.tz).date() != self.day:
            return False
        old = self.calls.get(call.uniqueid)
        if old == call or (not live and old is not None and (old.final or not call.final)):
            return False
        old_parts = self.figures.add_call(old, self.service_level, -1) if old is not None else []
        before = dict(old_parts)
        new_parts = self.figures.add_call(call, self.service_level)
        for queue, share in new_parts:
            if live:
                grown = Tally()
                prior = before.get(queue, Tally())
                for name in ("answered", "answered_in_sl", "abandoned", "overflowed"):
                    setattr(grown, name, max(0, getattr(share, name) - getattr(prior, name)))
                self.totals.setdefault(queue, Tally()).add(grown)
        self.calls[call.uniqueid] = call
        return new_parts != old_parts      # a new wait or leg of a call still waiting changes no figure

    def seed(self, rows: Iterable[Any], at: float) -> int:
        changed = sum(1 for row in rows if self.put(CallFigures.of(row), live=False))
        self.seeded_at, self.seed_error = at, None
        return changed

    def _servers(self, server: str) -> tuple[str, ...]:
        return (server, "") if server == self.sole_server else (server,)

    def queue(self, server: str, name: str) -> Tally:
        out = Tally()
        for key in self._servers(server):
            out.add(self.figures.queues.get((key, name)) or Tally())
        return out

    def queue_lines(self, server: str, name: str) -> dict[str, Tally]:
        out: dict[str, Tally] = {}
        servers = self._servers(server)
        for (key, queue, line), t in self.figures.queue_lines.items():
            if queue == name and key in servers and not t.empty():
                out.setdefault(line, Tally()).add(t)
        return out

    def total(self, server: str, name: str) -> Tally:
        out = Tally()
        for key in self._servers(server):
            out.add(self.totals.get((key, name)) or Tally())
        return out
