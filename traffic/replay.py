"""Replay: every recorded call re-decided under a candidate table (and menus), pure and offline.

A call is its dialed number, its instant, its caller's listing state and the IVR path it took. The table's
answer for it can only change at a few instants (rule and transition windows, listed callers' `until`), at a
few times of day (the schedules' span bounds) and from one local day to the next (calendars), so decisions are
cached per (dialed, listed entry, local day, time-of-day segment, absolute segment, IVR path): one decide() per
distinct key instead of one per call. tests/test_traffic_replay.py proves the cache exact against decide().

Not replayed: the abuse rule's rate limit (a caller's recent calls are not in the period's rows, history is
None), so only listed callers meet the abuse rule.
"""
from __future__ import annotations

import bisect
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import datetime, time
from typing import Iterable

from ivr.menus import Destination, Kind, Menus
from routing.decide import decide, to_queue
from routing.model import Action, Category, Route, RoutingTable
from routing.privacy import caller_hash

CLOSED_NOTE = "is closed at this time"   # routing.decide._apply_hours' note when it follows when_closed


@dataclass(frozen=True)
class RecordedCall:
    """What replay needs of one calls row."""

    dialed: str
    arrived_at: datetime                  # aware
    caller_hash: str | None = None
    ivr_path: str | None = None           # menus and keys joined with '>'
    target: str | None = None             # where it went (queue or trunk id) under the table of its day
    action: str | None = None


@dataclass(frozen=True)
class Replayed:
    """One call's fate under the candidate table (cached per key, so shared by many calls)."""

    action: str
    target: str | None
    category: str
    line: str
    closed_queue: str | None = None       # the queue the call met closed (then its when_closed applied)
    path_vanished: bool = False           # the recorded IVR path does not exist in the candidate menus


@dataclass
class ReplayReport:
    calls: int = 0
    moves: Counter = field(default_factory=Counter)          # (hour, from, to) -> calls, from != to
    by_queue: Counter = field(default_factory=Counter)       # (hour, to) -> calls under the candidate
    closed: Counter = field(default_factory=Counter)         # (hour, queue met closed) -> calls
    cancelled: Counter = field(default_factory=Counter)      # line -> calls meeting a cancelled line
    unknown: Counter = field(default_factory=Counter)        # dialed -> calls the table does not know
    vanished_paths: Counter = field(default_factory=Counter)  # recorded IVR path -> calls
    decisions: int = 0                                       # decide() calls made (distinct cache keys)
    listing_unknown: int = 0     # calls with a caller hash but no key to compare listed numbers with

    @property
    def moved(self) -> int:
        return sum(self.moves.values())


class TimeBuckets:
    """Instants that the table cannot tell apart: same local day, same segment of the day between schedule
    bounds, same segment between the table's dated bounds."""

    def __init__(self, table: RoutingTable) -> None:
        self.tz = table.timezone
        bounds: set[datetime] = set()
        for line in table.lines.values():
            for rule in line.rules:
                for window in (rule.effective, rule.transition):
                    if window is not None:
                        bounds.update(b for b in (window.start, window.end) if b is not None)
        bounds.update(c.until for c in table.abuse.listed if c.until is not None)
        self.instants = sorted(bounds)
        moments: set[time] = set()
        for schedule in table.schedules.values():
            for span in (*schedule.workday, *schedule.restday):
                moments.add(span.start)
                if span.end is not None:
                    moments.add(span.end)
        self.moments = sorted(moments)

    def key(self, at: datetime, local: datetime | None = None) -> tuple:
        local = local or at.astimezone(self.tz)
        # Windows are [start, end) and spans [start, end): bisect_right puts a bound in the segment it opens.
        return (local.date(), bisect.bisect_right(self.moments, local.time()),
                bisect.bisect_right(self.instants, at))


class Replayer:
    def __init__(self, table: RoutingTable, menus: Menus | None = None, key: bytes | None = None) -> None:
        self.table, self.menus, self.buckets = table, menus, TimeBuckets(table)
        self.key = key
        # caller hash -> the listed number it belongs to (decide() compares numbers; we pass it the listed one)
        self.listed = {caller_hash(c.number, key): c.number for c in table.abuse.listed} if key else {}
        self._cache: dict[tuple, Replayed] = {}

    def decide_one(self, call: RecordedCall) -> Replayed:
        """Uncached: the reference the cache is checked against."""
        caller = self.listed.get(call.caller_hash) if call.caller_hash else None
        route = decide(self.table, call.dialed, caller, call.arrived_at)
        return self._with_path(route, call.ivr_path, call.arrived_at)

    def replay_one(self, call: RecordedCall, local: datetime | None = None) -> Replayed:
        listed = self.listed.get(call.caller_hash) if call.caller_hash else None
        cache_key = (call.dialed, listed, self.buckets.key(call.arrived_at, local), call.ivr_path)
        found = self._cache.get(cache_key)
        if found is None:
            found = self._cache[cache_key] = self.decide_one(call)
        return found

    def replay(self, calls: Iterable[RecordedCall]) -> ReplayReport:
        report = ReplayReport()
        tz = self.table.timezone
        for call in calls:
            local = call.arrived_at.astimezone(tz)
            out = self.replay_one(call, local)
            hour = local.hour
            report.calls += 1
            report.by_queue[hour, out.target] += 1
            if out.target != call.target:
                report.moves[hour, call.target, out.target] += 1
            if out.closed_queue:
                report.closed[hour, out.closed_queue] += 1
            if out.category == Category.CANCELLED.value:
                report.cancelled[out.line] += 1
            elif out.category == Category.UNKNOWN.value:
                report.unknown[call.dialed] += 1
            if out.path_vanished:
                report.vanished_paths[call.ivr_path] += 1
            if call.caller_hash and self.key is None:
                report.listing_unknown += 1
        report.decisions = len(self._cache)
        return report

    # ---- the IVR path, walked in the candidate menus as ivr.session walks a caller's keys ----------------
    def after_path(self, route: Route, path: str | None, at: datetime) -> tuple[Route, bool]:
        """The route once the caller's recorded keys are walked in the menus; True: the path is gone."""
        tokens = path.split(">") if path else []
        if not tokens:
            return route, False
        followed, vanished = self._follow(route, tokens, at)
        return followed or route, vanished   # a path gone from its start: the call's own route

    def _with_path(self, route: Route, path: str | None, at: datetime) -> Replayed:
        return _replayed(*self.after_path(route, path, at))

    def _follow(self, route: Route, tokens: list[str], at: datetime) -> tuple[Route | None, bool]:
        """(where the recorded keys lead now, whether the recorded path is gone). Gone: the line has no menu
        or another one, a menu entered is not the one recorded, or the keys end somewhere before the recording
        did (then the call goes where its keys now lead)."""
        menus = self.menus
        if menus is None or route.menu is None or route.category is Category.ABUSE or route.menu not in menus:
            return None, True
        if tokens[0] != route.menu:
            return None, True
        stack, menu = [route.menu], menus[route.menu]
        failures, plays, i = 0, 0, 1
        while i < len(tokens):
            if plays >= menus.max_menu_plays:
                return route, False
            plays += 1
            key, i = tokens[i], i + 1
            if key != "t" and key in menu.options:
                dest = menu.options[key]
            else:
                failures += 1
                if failures <= menu.retries:
                    continue
                dest = menu.after_retries
            entered: str | None = None
            if dest.kind in (Kind.REPEAT, Kind.LANGUAGE):
                failures = 0
            elif dest.kind is Kind.PREVIOUS:
                failures = 0
                if len(stack) > 1:
                    stack.pop()
                    entered = stack[-1]
            elif dest.kind is Kind.MENU:
                failures = 0
                stack.append(dest.target or "")
                entered = dest.target
            else:
                return self._terminal(route, dest, ">".join(tokens[:i]), at), i < len(tokens)
            if entered is not None:
                if i >= len(tokens) or tokens[i] != entered or entered not in menus:
                    return None, True   # the recorded caller heard another menu here: the path is gone
                menu, i = menus[entered], i + 1
        return replace(route, action=Action.HANGUP, target=None), False   # hung up inside the menus

    def _terminal(self, route: Route, dest: Destination, walked: str, at: datetime) -> Route:
        tags = tuple(dict.fromkeys(route.tags + dest.tags))
        if dest.kind is Kind.ROUTE:
            return replace(route, tags=tags)
        if dest.kind is Kind.QUEUE:
            return to_queue(self.table, replace(route, tags=tags), dest.target or "", at,
                            f"IVR {walked}: queue {dest.target}")
        if dest.kind is Kind.CALLBACK:
            return replace(route, action=Action.CALLBACK, target=dest.target, tags=tags, overflow=())
        return replace(route, action=Action.HANGUP, target=None, overflow=())


def _replayed(route: Route, vanished: bool) -> Replayed:
    closed = None
    if CLOSED_NOTE in route.reason:
        first = route.reason.split(CLOSED_NOTE)[0].rsplit("queue ", 1)[-1].strip()
        closed = first or None
    return Replayed(action=route.action.value, target=route.target, category=route.category.value,
                    line=route.line, closed_queue=closed, path_vanished=vanished)

