"""The routing decision: (table, dialed number, caller, instant) -> Route. Pure: no I/O, no clock.

Order of questions, each answered from the table alone:
1. which line and which of its dated rules is in force at `at` (none: 12345's general handling + warning);
2. emergency linkage is decided first and never meets the abuse rule, a schedule or a queue;
3. the abuse rule (listed caller, or too many recent calls as told by `history`);
4. the category's handling (cancelled lines: inside / after their transition window);
5. the active manual switches (`switches`: the names that are on, run-time state passed in): announcement
   first, another queue, opening hours counted as closed, transfers reduced to work orders; never emergency;
6. the landing queue's hours: closed queues hand over to their `when_closed` fallback (acyclic by validation).
"""
from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Collection

from routing.model import (Action, CallerHistory, Category, Line, Overflow, Route, RoutingTable, Rule, Schedule,
                           Switch, TransferKind, Window)


def normalize_number(dialed: str) -> str:
    """Digits only, keeping a leading '+'; carriers may send '12345' as '+8612345' or with separators."""
    text = (dialed or "").strip()
    digits = "".join(ch for ch in text if ch.isdigit())
    if text.startswith("+86") and len(digits) > 2:
        return digits[2:]
    return digits


def rule_in_force(line: Line, at: datetime) -> Rule | None:
    for rule in line.rules:
        if rule.effective.contains(at):
            return rule
    return None


def is_open(table: RoutingTable, schedule_id: str | None, at: datetime, force_closed: bool = False) -> bool:
    """`force_closed` (a night-mode switch): a schedule with opening hours counts as closed; 24/7 stays open."""
    if schedule_id is None:
        return True
    schedule: Schedule = table.schedules[schedule_id]
    if schedule.always_open:
        return True
    if force_closed:
        return False
    local = at.astimezone(table.timezone)
    calendar = table.calendars[schedule.calendar] if schedule.calendar else None
    working = calendar.is_working_day(local.date()) if calendar else local.weekday() < 5
    spans = schedule.workday if working else schedule.restday
    moment = local.time()
    return any(span.contains(moment) for span in spans)


def overflow_chain(table: RoutingTable, queue_id: str) -> tuple[Overflow, ...]:
    chain: list[Overflow] = []
    seen = {queue_id}
    queue = table.queues.get(queue_id)
    while queue is not None and queue.overflow is not None and queue.overflow.to not in seen:
        chain.append(queue.overflow)
        seen.add(queue.overflow.to)
        queue = table.queues.get(queue.overflow.to)
    return tuple(chain)


def decide(table: RoutingTable, dialed: str, caller: str | None, at: datetime,
           history: CallerHistory | None = None, switches: Collection[str] = ()) -> Route:
    """`switches`: the names of the switches that are on now (unknown names are ignored)."""
    if at.tzinfo is None:  # a naive instant is read as the table's local time rather than refused
        at = at.replace(tzinfo=table.timezone)
    active = tuple(s for name, s in table.switches.items() if name in switches)
    number = normalize_number(dialed)
    line = table.lines.get(number)
    rule = rule_in_force(line, at) if line else None
    if rule is None:
        return _finish(table, _general(table, dialed, number, line, at), at, active)

    if rule.category is Category.EMERGENCY_LINKAGE:      # before the abuse rule, the hours and every switch
        return _route(table, dialed, line, rule, Action.DIAL, rule.trunk,
                      reason=f"emergency linkage {number}: dialed at once on trunk {rule.trunk}, "
                             "no hours, no queue")

    abusive = _abuse_reason(table, caller, at, history)
    if abusive:
        return _finish(table, _abuse(table, dialed, line, rule, abusive, at), at, active)

    prompts, action, reason = rule.prompts, Action.QUEUE, f"{rule.category.value} line {number}"
    if rule.category is Category.CANCELLED:
        prompts, action, reason = _cancelled(rule, at)
    route = _route(table, dialed, line, rule, action, rule.queue if action is not Action.HANGUP else None,
                   prompts=prompts, reason=reason)
    return _finish(table, route, at, active)


def _finish(table: RoutingTable, route: Route, at: datetime, active: tuple[Switch, ...]) -> Route:
    """The switches that apply to the call's line, then the landing queue's hours (closed if a switch says so)."""
    applied = tuple(s for s in active if s.applies_to(route.line))
    for switch in applied:
        notes = []
        if switch.queue and route.category is not Category.ABUSE:   # abusive callers stay in their review queue
            route = replace(route, action=Action.QUEUE, target=switch.queue, menu=None,
                            overflow=overflow_chain(table, switch.queue))
            notes.append(f"to {switch.queue}")
        if switch.prompts:
            route = replace(route, prompts=switch.prompts + route.prompts)
            notes.append("announce " + ", ".join(switch.prompts))
        if switch.closed:
            notes.append("opening hours count as closed")
        if switch.work_orders_only:
            route = replace(route, transfers=tuple(t for t in route.transfers if t.kind is TransferKind.WORK_ORDER))
            notes.append("transfers: work orders only")
        route = replace(route, reason=f"{route.reason}; switch {switch.id} is on: {', '.join(notes)}")
    if applied:
        route = replace(route, switches=tuple(s.id for s in applied))
    if route.action is not Action.QUEUE:
        return route
    return _apply_hours(table, route, at, any(s.closed for s in applied))


def _cancelled(rule: Rule, at: datetime) -> tuple[tuple[str, ...], Action, str]:
    transition = rule.transition or Window()
    if transition.contains(at):
        return rule.prompts, Action.QUEUE, "cancelled line inside its transition window: announce, then 12345"
    if transition.start is not None and at < transition.start:
        return (), Action.QUEUE, "cancelled line before its transition window: straight to 12345"
    prompts = rule.after_prompts or rule.prompts
    if rule.after_transition is Action.HANGUP:
        return prompts, Action.HANGUP, "cancelled line after its transition window: announce, then hang up"
    return prompts, Action.QUEUE, "cancelled line after its transition window: announce, then 12345"


def _route(table: RoutingTable, dialed: str, line: Line, rule: Rule, action: Action, target: str | None, *,
           prompts: tuple[str, ...] = (), reason: str = "", warnings: tuple[str, ...] = ()) -> Route:
    return Route(
        dialed=dialed, line=line.number, service=line.service, category=rule.category, action=action,
        target=target, rule_id=rule.id, effective=rule.effective, prompts=prompts,
        menu=rule.menu if action is Action.QUEUE else None, tags=rule.tags, transfers=rule.transfers,
        overflow=overflow_chain(table, target) if action is Action.QUEUE and target else (),
        reason=reason, warnings=warnings)


def _apply_hours(table: RoutingTable, route: Route, at: datetime, force_closed: bool = False) -> Route:
    """Follow closed queues' fallbacks until an open queue, a callback or a hang-up (the graph is acyclic)."""
    target, prompts, notes = route.target, route.prompts, []
    for _ in range(len(table.queues) + 1):
        queue = table.queues[target]
        if is_open(table, queue.schedule, at, force_closed) or queue.when_closed is None:
            break
        closed = queue.when_closed
        notes.append(f"queue {queue.id} is closed at this time")
        prompts = prompts + closed.prompts
        if closed.action is not Action.QUEUE:
            return replace(route, action=closed.action, target=closed.queue, prompts=prompts, menu=None,
                           overflow=(), reason=route.reason + "; " + "; ".join(notes)
                           + (": callback request" if closed.action is Action.CALLBACK else ": announce, hang up"))
        target = closed.queue
    if target == route.target:
        return route
    # The line's menu offered choices of the closed queue's service: skip it rather than offer what is shut.
    return replace(route, target=target, prompts=prompts, overflow=overflow_chain(table, target), menu=None,
                   reason=route.reason + "; " + "; ".join(notes) + f": on to {target}")


def _abuse_reason(table: RoutingTable, caller: str | None, at: datetime, history: CallerHistory | None) -> str:
    policy = table.abuse
    number = normalize_number(caller or "")
    if number:
        for listed in policy.listed:
            if normalize_number(listed.number) == number and (listed.until is None or at < listed.until):
                return f"listed caller ({listed.reason})"
    if policy.max_calls is not None and history is not None and history.calls_in_window > policy.max_calls:
        return f"{history.calls_in_window} calls within {policy.per_minutes} min (limit {policy.max_calls})"
    return ""


def _abuse(table: RoutingTable, dialed: str, line: Line, rule: Rule, why: str, at: datetime) -> Route:
    policy = table.abuse
    action = policy.action
    route = Route(dialed=dialed, line=line.number, service=line.service, category=Category.ABUSE, action=action,
                  target=policy.queue, rule_id="abuse", effective=rule.effective, prompts=policy.prompts,
                  tags=rule.tags + ("abuse",), reason=f"abuse rule: {why}")
    if action is Action.QUEUE:
        route = replace(route, overflow=overflow_chain(table, policy.queue))
    return route


UNKNOWN_TAG = "unknown-line"      # a number the table does not know; the dialplan's fail-open uses it too


def _general(table: RoutingTable, dialed: str, number: str, line: Line | None, at: datetime) -> Route:
    if line is None:
        warning = f"number '{dialed}' is not in the routing table: 12345 general handling"
        service = "unknown"
    else:
        starts = [r.effective.start for r in line.rules if r.effective.start and r.effective.start > at]
        warning = (f"no rule of line {number} is in force at {at.isoformat()}"
                   + (f" (next starts {min(starts).isoformat()})" if starts else "") + ": 12345 general handling")
        service = line.service
    route = Route(dialed=dialed, line=number if line else "12345", service=service, category=Category.UNKNOWN,
                  action=Action.QUEUE, target=table.general_queue, rule_id="unknown-number", effective=Window(),
                  prompts=table.unknown_prompts, tags=(UNKNOWN_TAG,), reason=warning,
                  overflow=overflow_chain(table, table.general_queue), warnings=(warning,))
    return route


def next_change(line: Line, at: datetime) -> datetime | None:
    """The next instant after `at` at which this line's handling changes by date (rule or transition bounds)."""
    bounds = []
    for rule in line.rules:
        for window in (rule.effective, rule.transition):
            if window is not None:
                bounds += [b for b in (window.start, window.end) if b is not None and b > at]
    return min(bounds, default=None)


def to_queue(table: RoutingTable, route: Route, queue_id: str, at: datetime, why: str) -> Route:
    """The call's route sent to another queue (an IVR choice), keeping its line, rule and tags; the new
    queue's hours apply, so a closed seat hands over to its fallback as a routed call would."""
    moved = replace(route, action=Action.QUEUE, target=queue_id, menu=None, prompts=(),
                    overflow=overflow_chain(table, queue_id), reason=f"{route.reason}; {why}")
    night = any(table.switches[n].closed for n in route.switches if n in table.switches)
    return _apply_hours(table, moved, at, night)


def switches_changing(table: RoutingTable, dialed: str, caller: str | None, at: datetime,
                      history: CallerHistory | None = None, active: Collection[str] = ()) -> dict[str, Route]:
    """Each declared switch whose flip (on if off, off if on) changes this call's handling, with the route it
    would give then (for `routes explain`). Compared on what the caller meets, not on the reason text."""
    base = decide(table, dialed, caller, at, history, active)
    out = {}
    for name in table.switches:
        flipped = set(active) ^ {name}
        other = decide(table, dialed, caller, at, history, flipped)
        if _handling(other) != _handling(base):
            out[name] = other
    return out


def _handling(route: Route) -> tuple:
    return (route.action, route.target, route.prompts, route.menu, route.transfers)
