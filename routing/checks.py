"""Checks across sections of a schema-valid table: references, overlaps, the routing graph, dead parts.

Each check returns Problems (errors and warnings) with the YAML position of the offending key, so an admin
sees every finding at once. `now` is passed in: "already ended" is relative to the instant asked about.
"""
from __future__ import annotations

import ipaddress
from datetime import date, datetime, timedelta
from typing import Callable, Iterable, Iterator
from zoneinfo import ZoneInfo

from routing.model import CallerId, EmergencyRetry
from routing.suggest import did_you_mean
from routing.schema import CalendarSpec, Dated, TableSpec, TrunkSpec
from routing.yamlsource import Document, Problem

ERROR, WARNING = "error", "warning"


def window_bounds(dated: Dated, tz: ZoneInfo) -> tuple[datetime | None, datetime | None]:
    """A date `from` starts at local midnight; a date `until` includes that whole day."""
    return start_bound(dated.from_, tz), end_bound(dated.until, tz)


def start_bound(value: date | datetime | None, tz: ZoneInfo) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=tz)
    return datetime(value.year, value.month, value.day, tzinfo=tz)


def end_bound(value: date | datetime | None, tz: ZoneInfo) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=tz)
    return datetime(value.year, value.month, value.day, tzinfo=tz) + timedelta(days=1)


def expand_days(first: date, last: date | None) -> Iterator[date]:
    """Every day of an inclusive range, across month and year ends."""
    day = first
    while day <= (last or first):
        yield day
        day += timedelta(days=1)


def check_table(spec: TableSpec, doc: Document, now: datetime | None = None,
                external_references: Iterable[str] = (), present: dict[str, set[str]] | None = None,
                calendar_days: int | None = None) -> list[Problem]:
    """`present`: names written in the file per section, valid or not; a reference to an entry that has its
    own schema error is not reported a second time as undefined. `calendar_days` (with `now`): warn about a
    calendar in use whose data ends within that many days."""
    tz = ZoneInfo(spec.timezone)
    found: list[Problem] = []
    found += _references(spec, doc, present or {})
    found += _calendars(spec, doc)
    found += _rule_windows(spec, doc, tz, now)
    found += _queue_loops(spec, doc)
    found += _unreached(spec, doc, set(external_references))
    found += _caller_ids(spec, doc)
    found += _emergency_retry(spec, doc)
    found += _switches(spec, doc, present or {})
    if now is not None:
        found += _expired_listings(spec, doc, tz, now)
        if calendar_days is not None:
            found += _calendar_horizon(spec, doc, now.astimezone(tz).date(), calendar_days)
    return found


def _references(spec: TableSpec, doc: Document, present: dict[str, set[str]]) -> list[Problem]:
    out: list[Problem] = []

    def need(section: dict, name: str | None, path: tuple, what: str) -> None:
        written = present.get(what + "s", set())
        if name is not None and name not in section and name not in written:
            known = ", ".join(sorted(section)) or "none defined"
            out.append(doc.problem(path, f"{what} '{name}' is not defined" + (did_you_mean(name, section)
                                                                              or f" (known: {known})")))

    need(spec.queues, spec.general_queue, ("general_queue",), "queue")
    for qid, queue in spec.queues.items():
        base = ("queues", qid)
        need(spec.schedules, queue.schedule, base + ("schedule",), "schedule")
        if queue.overflow:
            need(spec.queues, queue.overflow.to, base + ("overflow", "to"), "queue")
        if queue.when_closed:
            need(spec.queues, queue.when_closed.queue, base + ("when_closed", "queue"), "queue")
            need(spec.queues, queue.when_closed.callback, base + ("when_closed", "callback"), "queue")
    for sid, schedule in spec.schedules.items():
        need(spec.calendars, schedule.calendar, ("schedules", sid, "calendar"), "calendar")
    for number, line in spec.lines.items():
        for i, rule in enumerate(line.rules):
            base = ("lines", number, "rules", i)
            need(spec.queues, rule.queue, base + ("queue",), "queue")
            need(spec.trunks, rule.trunk, base + ("trunk",), "trunk")
            if rule.category == "emergency_linkage" and rule.trunk in spec.trunks \
                    and spec.trunks[rule.trunk].kind != "emergency":
                out.append(doc.problem(base + ("trunk",), f"emergency linkage must use an emergency trunk, "
                                                          f"'{rule.trunk}' is {spec.trunks[rule.trunk].kind}"))
            for j, transfer in enumerate(rule.transfers):
                need(spec.trunks, transfer.trunk, base + ("transfers", j, "trunk"), "trunk")
                need(spec.queues, transfer.queue, base + ("transfers", j, "queue"), "queue")
    need(spec.queues, spec.abuse.queue, ("abuse", "queue"), "queue")
    return out


def _calendars(spec: TableSpec, doc: Document) -> list[Problem]:
    out: list[Problem] = []
    for cid, calendar in spec.calendars.items():
        holidays: dict[date, int] = {}
        for i, holiday in enumerate(calendar.holidays):
            for day in expand_days(holiday.from_, holiday.to):
                if day in holidays:
                    out.append(doc.problem(("calendars", cid, "holidays", i),
                                           f"{day} is already a holiday (item {holidays[day] + 1})"))
                holidays.setdefault(day, i)
        for i, day in enumerate(calendar.working_days):
            path = ("calendars", cid, "working_days", i)
            if day in holidays:
                out.append(doc.problem(path, f"{day} is listed both as a holiday and as a working day"))
            elif day.weekday() < 5:
                out.append(doc.problem(path, f"{day} is a weekday already; adjusted working days (调休) are "
                                             "Saturdays or Sundays", WARNING))
    return out


def covered_until(calendar: CalendarSpec) -> date | None:
    """The last day a calendar's holidays and adjusted working days are complete for: its `covers_until`, else
    31 December of the year of the last day it lists (the State Council publishes one notice per year).
    None: a calendar that lists nothing (every weekday a working day, for ever)."""
    if calendar.covers_until is not None:
        return calendar.covers_until
    days = [h.to or h.from_ for h in calendar.holidays] + list(calendar.working_days)
    return date(max(days).year, 12, 31) if days else None


def calendars_in_use(spec: TableSpec) -> set[str]:
    """Calendars a queue's opening hours depend on."""
    schedules = {q.schedule for q in spec.queues.values() if q.schedule}
    return {spec.schedules[s].calendar for s in schedules if s in spec.schedules and spec.schedules[s].calendar}


def _calendar_horizon(spec: TableSpec, doc: Document, today: date, days: int) -> list[Problem]:
    """A calendar that runs out makes every later holiday an ordinary working day: say so in advance."""
    out: list[Problem] = []
    for cid in sorted(calendars_in_use(spec)):
        calendar = spec.calendars.get(cid)
        last = covered_until(calendar) if calendar is not None else None
        if last is None or (last - today).days >= days:
            continue
        left = (last - today).days
        when = f"ran out {-left} days ago" if left < 0 else f"{left} days from today, {today}; warns at {days}"
        out.append(doc.problem(("calendars", cid), f"calendar '{cid}' has holidays and adjusted working days only "
                               f"until {last} ({when}). After that every weekday counts as a working day and every "
                               "weekend as a rest day, so a public holiday would be served with working-day hours. "
                               "Add the State Council's holiday notice for the next year (and its covers_until) when "
                               "it is published; do not guess it", WARNING, key=True))
    return out


def _rule_windows(spec: TableSpec, doc: Document, tz: ZoneInfo, now: datetime | None) -> list[Problem]:
    out: list[Problem] = []
    for number, line in spec.lines.items():
        spans = []
        for i, rule in enumerate(line.rules):
            base = ("lines", number, "rules", i)
            start, end = window_bounds(rule, tz)
            if start is not None and end is not None and end <= start:
                out.append(doc.problem(base, "this rule's window is empty: it can never match", WARNING))
            if rule.transition is not None:
                t_start, t_end = window_bounds(rule.transition, tz)
                if (start and t_start and t_start < start) or (end and t_end and t_end > end):
                    out.append(doc.problem(base + ("transition",), "the transition lies outside the rule's window"))
            for j, (other_start, other_end) in spans:
                if _overlap(start, end, other_start, other_end):
                    out.append(doc.problem(base, f"rule {i + 1} of line {number} overlaps rule {j + 1}: "
                                                 "windows of one number must not overlap"))
            spans.append((i, (start, end)))
            if now is not None and end is not None and end <= now:
                out.append(doc.problem(base, f"this rule ended on {rule.until}; it no longer applies", WARNING))
    return out


def _overlap(a_start, a_end, b_start, b_end) -> bool:
    return (a_start is None or b_end is None or a_start < b_end) and (b_start is None or a_end is None
                                                                      or b_start < a_end)


def _queue_loops(spec: TableSpec, doc: Document) -> list[Problem]:
    """Overflow and closed-hours fallbacks form a graph; any cycle would bounce a caller forever."""
    edges: dict[str, list[tuple[str, tuple]]] = {qid: [] for qid in spec.queues}
    for qid, queue in spec.queues.items():
        if queue.overflow and queue.overflow.to in spec.queues:
            edges[qid].append((queue.overflow.to, ("queues", qid, "overflow", "to")))
        if queue.when_closed and queue.when_closed.queue in spec.queues:
            edges[qid].append((queue.when_closed.queue, ("queues", qid, "when_closed", "queue")))
    out: list[Problem] = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(qid: str, path: list[str]) -> None:
        state[qid] = 1
        for target, where in edges[qid]:
            if state.get(target) == 1:
                cycle = (path[path.index(target):] if target in path else []) + [qid, target]
                out.append(doc.problem(where, "fallback loop: " + " -> ".join(cycle)))
            elif state.get(target) is None:
                visit(target, path + [qid])
        state[qid] = 2

    for qid in sorted(edges):
        if qid not in state:
            visit(qid, [])
    return out


def _unreached(spec: TableSpec, doc: Document, external: set[str]) -> list[Problem]:
    used_queues = {spec.general_queue, spec.abuse.queue} | external
    used_trunks: set[str] = set()
    for line in spec.lines.values():
        for rule in line.rules:
            used_queues.add(rule.queue)
            used_trunks.add(rule.trunk)
            for transfer in rule.transfers:
                used_queues.add(transfer.queue)
                used_trunks.add(transfer.trunk)
    for queue in spec.queues.values():
        if queue.overflow:
            used_queues.add(queue.overflow.to)
        if queue.when_closed:
            used_queues |= {queue.when_closed.queue, queue.when_closed.callback}
    used_trunks |= {route.next for route in spec.emergency.trunks.values()}
    used_queues |= {switch.queue for switch in spec.switches.values()}
    used_schedules = {q.schedule for q in spec.queues.values()}
    used_calendars = {s.calendar for s in spec.schedules.values()}
    out = []
    for section, used, what in (("queues", used_queues, "queue"), ("schedules", used_schedules, "schedule"),
                                ("calendars", used_calendars, "calendar")):
        for name in getattr(spec, section):
            if name not in used:
                out.append(doc.problem((section, name), f"{what} '{name}' is defined but nothing reaches it",
                                       WARNING, key=True))
    for name, trunk in spec.trunks.items():
        if name not in used_trunks and trunk.kind != "carrier":
            out.append(doc.problem(("trunks", name), f"trunk '{name}' is defined but nothing reaches it",
                                   WARNING, key=True))
    return out


def _expired_listings(spec: TableSpec, doc: Document, tz: ZoneInfo, now: datetime) -> list[Problem]:
    out = []
    for i, listed in enumerate(spec.abuse.listed):
        end = end_bound(listed.until, tz)
        if end is not None and end <= now:
            out.append(doc.problem(("abuse", "listed", i), f"this listing expired on {listed.until}", WARNING))
    return out


# ---------------------------------------------------------------------------------------------- trunks

Resolver = Callable[[str], bool]          # a host name -> does it resolve (DNS); given by the CLIs, the edge


def caller_id_of(trunk: TrunkSpec) -> CallerId:
    given = trunk.caller_id
    if given is None:
        return CallerId.for_kind(trunk.kind)
    return CallerId.for_kind(trunk.kind, given.from_, given.identity, given.withheld)


def _caller_ids(spec: TableSpec, doc: Document) -> list[Problem]:
    """Every trunk the hotline dials must carry the citizen's number somewhere; emergency trunks in PAI,
    withheld or not (only send_pai with trust_id_outbound delivers it in every case, NOTES-2.md)."""
    out: list[Problem] = []
    for tid, trunk in spec.trunks.items():
        base = ("trunks", tid, "caller_id")
        cid = caller_id_of(trunk)
        if trunk.kind == "carrier":
            if trunk.caller_id is not None:
                out.append(doc.problem(base, f"trunk '{tid}' is a carrier trunk: it only brings calls in, so "
                                             "caller_id (for trunks the hotline dials) does not apply", key=True))
            continue
        if trunk.kind == "emergency" and cid.identity != "pai":
            out.append(doc.problem(base + ("identity",), f"emergency trunk '{tid}' must send the caller's number "
                                                         "in P-Asserted-Identity (identity: pai)"))
        if trunk.kind == "emergency" and cid.withheld != "send":
            out.append(doc.problem(base + ("withheld",), f"emergency trunk '{tid}' must send a withheld number "
                                                         "too (withheld: send): the emergency service needs it"))
        if cid.identity == "none" and cid.from_user == "trunk":
            out.append(doc.problem(base, f"trunk '{tid}': with from: trunk and identity: none the caller's number "
                                         "reaches the far end nowhere; use from: caller or identity: pai",
                                   key=True))
        elif cid.identity == "none" and cid.withheld == "send":
            out.append(doc.problem(base + ("withheld",), f"trunk '{tid}': withheld: send needs identity pai or "
                                                         "rpid (the number travels there, marked Privacy: id)"))
    return out


PLACEHOLDER_SUFFIX = ".invalid"   # RFC 6761: never resolves, anywhere; the shipped table's placeholder hosts


def is_placeholder(host: str) -> bool:
    name = host.lower().rstrip(".")
    return name == PLACEHOLDER_SUFFIX[1:] or name.endswith(PLACEHOLDER_SUFFIX)


def is_address(entry: str) -> bool:
    """An IP address or network (what needs no DNS); anything else is a host name."""
    try:
        ipaddress.ip_network(entry, strict=False)
    except ValueError:
        return False
    return True


def trunk_host_problems(spec: TableSpec, doc: Document, resolve: Resolver | None = None) -> list[Problem]:
    """Warnings for trunk hosts and match entries that Asterisk cannot use: a placeholder (.invalid; the rendered
    config leaves its contact, identify and registration out, see dialplan.pjsip) or, when `resolve` is given, a
    name that does not resolve here (Asterisk would refuse to load an identify matching it)."""
    out: list[Problem] = []
    for tid, trunk in spec.trunks.items():
        base = ("trunks", tid)
        consequence = {"emergency": "emergency calls over it get the unreachable announcement",
                       "carrier": "no call from it is recognised"}.get(trunk.kind, "calls over it fail")
        if is_placeholder(trunk.host):
            parts = ["contact"]
            if trunk.auth == "registration":
                parts.append("registration")
            matches = trunk.match or ((trunk.host,) if trunk.auth == "ip" else ())
            if matches and all(is_placeholder(m) for m in matches):
                parts.append("identify")
            left_out = "its " + " and ".join(parts)
            out.append(doc.problem(base + ("host",), f"trunk '{tid}': host {trunk.host} is a placeholder (.invalid "
                                   f"never resolves): {consequence} until the real address is set; the rendered "
                                   f"config leaves {left_out} out", WARNING))
        elif resolve is not None and not is_address(trunk.host) and not resolve(trunk.host):
            out.append(doc.problem(base + ("host",), f"trunk '{tid}': host {trunk.host} does not "
                                   f"resolve (DNS): {consequence} while it does not", WARNING))
        for i, entry in enumerate(trunk.match):
            if is_placeholder(entry):
                if not is_placeholder(trunk.host):
                    out.append(doc.problem(base + ("match", i), f"trunk '{tid}': match {entry} is a placeholder "
                                           "(.invalid never resolves): left out of the rendered identify", WARNING))
            elif resolve is not None and not is_address(entry) and not resolve(entry):
                out.append(doc.problem(base + ("match", i), f"trunk '{tid}': match {entry} does not resolve (DNS): "
                                       f"Asterisk refuses to load the identify {tid}-identify, so calls from this "
                                       "trunk are not recognised", WARNING))
    return out

def _emergency_retry(spec: TableSpec, doc: Document) -> list[Problem]:
    """emergency.trunks names emergency trunks; `next` chains end (no loop); each retry fits its bound."""
    out: list[Problem] = []
    routes = spec.emergency.trunks
    base = spec.emergency.retry

    def is_emergency(name: str | None, path: tuple, key: bool = False) -> bool:
        trunk = spec.trunks.get(name or "")
        if trunk is None:
            known = ", ".join(sorted(t for t, x in spec.trunks.items() if x.kind == "emergency")) or "none defined"
            out.append(doc.problem(path, f"emergency trunk '{name}' is not defined (known: {known})", key=key))
            return False
        if trunk.kind != "emergency":
            out.append(doc.problem(path, f"'{name}' is a {trunk.kind} trunk; emergency retry applies to "
                                         "emergency trunks only", key=key))
            return False
        return True

    for tid, route in routes.items():
        path = ("emergency", "trunks", tid)
        is_emergency(tid, path, key=True)
        if route.next is not None:
            if route.next == tid:
                out.append(doc.problem(path + ("next",), f"'{tid}' cannot be its own next route"))
            else:
                is_emergency(route.next, path + ("next",))
    for tid in sorted(routes):                      # a loop would ring the caller round forever
        seen, current = [tid], routes[tid].next
        while current in routes and current not in seen:
            seen.append(current)
            current = routes[current].next
        if current == tid and len(seen) > 1:
            out.append(doc.problem(("emergency", "trunks", tid, "next"),
                                   "emergency routes loop: " + " -> ".join(seen + [tid])))

    defaults = EmergencyRetry()

    def value(route, name: str) -> int:
        for source in (route, base, defaults):
            if source is not None and getattr(source, name) is not None:
                return getattr(source, name)
        raise AssertionError(name)

    for where, route in [(("emergency", "retry"), None)] + [(("emergency", "trunks", t), r) for t, r in routes.items()]:
        ring, within = value(route, "ring_seconds"), value(route, "within_seconds")
        attempts, pause = value(route, "attempts"), value(route, "pause_seconds")
        if within < ring:
            out.append(doc.problem(where, f"within_seconds ({within}) is shorter than one attempt's ring_seconds "
                                          f"({ring})"))
        elif attempts * ring + (attempts - 1) * pause > within:
            fit = 1 + (within - ring) // (ring + pause)
            out.append(doc.problem(where, f"{attempts} attempts of {ring} s with {pause} s pauses take longer "
                                          f"than within_seconds ({within}): a gateway that rings out gets {fit} "
                                          "full attempt(s), the rest are cut short", WARNING))
    return out


def _switches(spec: TableSpec, doc: Document, present: dict[str, set[str]]) -> list[Problem]:
    """A switch names existing lines and queues, never an emergency line; codes are unique (one phone code
    each); work_orders_only lines have a work order to fall back on."""
    out: list[Problem] = []
    codes: dict[str, str] = {}
    for sid, switch in spec.switches.items():
        base = ("switches", sid)
        if switch.code in codes:
            out.append(doc.problem(base + ("code",), f"code {switch.code} is already used by switch '{codes[switch.code]}'"))
        codes.setdefault(switch.code, sid)
        if switch.queue is not None and switch.queue not in spec.queues and switch.queue not in present.get("queues", ()):
            out.append(doc.problem(base + ("queue",), f"queue '{switch.queue}' is not defined "
                                                      f"(known: {', '.join(sorted(spec.queues))})"))
        for i, number in enumerate(switch.lines):
            line = spec.lines.get(number)
            if line is None:
                if number not in present.get("lines", ()):
                    out.append(doc.problem(base + ("lines", i), f"line {number} is not in the table"))
                continue
            if any(rule.category == "emergency_linkage" for rule in line.rules):
                out.append(doc.problem(base + ("lines", i), f"line {number} is emergency linkage: no switch may "
                                                            "touch it (dialed at once, always)"))
            elif switch.work_orders_only and not any(t.kind == "work_order" for r in line.rules for t in r.transfers):
                out.append(doc.problem(base + ("lines", i), f"line {number} has no work_order transfer: "
                                                            "work_orders_only would leave its agents nothing"))
    return out
