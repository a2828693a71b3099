"""Load conf/routing.yaml: parse with positions, validate the schema, check across sections, build values.

`load_table` either returns a complete immutable RoutingTable or raises TableError with every problem found;
there is no half-loaded table, so a caller holding the running table keeps it when a new file is broken.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import MappingProxyType
from typing import Iterable
from zoneinfo import ZoneInfo

from pydantic import ValidationError

from routing import model as m
from routing.checks import (ERROR, Resolver, caller_id_of, check_table, covered_until, end_bound, expand_days, trunk_host_problems,
                            window_bounds)
from routing.schema import ClosedSpec, RuleSpec, TableSpec
from routing.yamlsource import Problem, SourceError, load_document, problems_from


class TableError(Exception):
    def __init__(self, problems: list[Problem]):
        self.problems = sorted(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


@dataclass(frozen=True)
class LoadResult:
    table: m.RoutingTable
    warnings: tuple[Problem, ...]
    hosts: tuple[Problem, ...] = ()       # the warnings about trunk hosts (placeholders, names that do not resolve)


def load_table(path: str | Path, *, text: str | None = None, now: datetime | None = None,
               external_references: Iterable[str] = ()) -> m.RoutingTable:
    return load_table_with_warnings(path, text=text, now=now, external_references=external_references).table


def load_table_with_warnings(path: str | Path, *, text: str | None = None, now: datetime | None = None,
                             external_references: Iterable[str] = (), resolve: Resolver | None = None,
                             calendar_days: int | None = None) -> LoadResult:
    """`now` only affects warnings ("this rule already ended"); the table itself answers for any instant.
    `resolve` (name -> resolves?, given by the CLIs) adds a warning for each trunk host name that does not."""
    try:
        doc = load_document(path, text)
    except SourceError as exc:
        raise TableError(exc.problems) from None
    problems = list(doc.problems)
    spec, schema_problems = _validate_salvaging(doc.data)
    problems += [p for e in schema_problems for p in problems_from(doc, e, TableSpec)]
    if spec is None:
        raise TableError(problems)
    present = {section: set(doc.data.get(section) or {}) for section in SECTIONS} if isinstance(doc.data, dict) else {}
    problems += check_table(spec, doc, now, external_references, present, calendar_days)
    hosts = trunk_host_problems(spec, doc, resolve)
    problems += hosts
    errors = [p for p in problems if p.severity == ERROR]
    if errors:
        raise TableError(errors)
    table = build_table(spec, source=doc.file, version=hashlib.sha256(doc.text.encode()).hexdigest()[:12],
                        rule_lines={k: v[0] for k, v in doc.positions.items()})
    return LoadResult(table, tuple(sorted(p for p in problems if p.severity != ERROR)), tuple(sorted(hosts)))


SECTIONS = ("calendars", "schedules", "queues", "trunks", "lines", "switches")


def _validate_salvaging(data: object) -> tuple[TableSpec | None, list[ValidationError]]:
    """Validate; on errors inside named entries, drop those entries and validate the rest, so the checks
    across sections still run and the admin sees every problem in one go."""
    try:
        return TableSpec.model_validate(data), []
    except ValidationError as exc:
        first = exc
    if not isinstance(data, dict):
        return None, [first]
    broken = {(e["loc"][0], e["loc"][1]) for e in first.errors() if len(e["loc"]) >= 2 and e["loc"][0] in SECTIONS}
    salvaged = {key: ({name: entry for name, entry in value.items() if (key, name) not in broken}
                      if key in SECTIONS and isinstance(value, dict) else value) for key, value in data.items()}
    try:
        return TableSpec.model_validate(salvaged), [first]
    except ValidationError:
        return None, [first]


def _window(dated, tz: ZoneInfo) -> m.Window:
    return m.Window(*window_bounds(dated, tz))


def _closed(spec: ClosedSpec | None) -> m.ClosedHandling | None:
    if spec is None:
        return None
    if spec.queue:
        return m.ClosedHandling(m.Action.QUEUE, spec.queue, tuple(spec.prompts))
    if spec.callback:
        return m.ClosedHandling(m.Action.CALLBACK, spec.callback, tuple(spec.prompts))
    return m.ClosedHandling(m.Action.HANGUP, None, tuple(spec.prompts))


def _rule(number: str, index: int, spec: RuleSpec, tz: ZoneInfo, line_no: int) -> m.Rule:
    rule_id = spec.id or f"{number}/{spec.category}" + (f"@{spec.from_}" if spec.from_ else "")
    after = {"connect": m.Action.QUEUE, "hangup": m.Action.HANGUP, None: None}[spec.after_transition]
    return m.Rule(
        id=rule_id, line=number, category=m.Category(spec.category), effective=_window(spec, tz),
        queue=spec.queue, trunk=spec.trunk, prompts=tuple(spec.prompts), menu=spec.menu, tags=tuple(spec.tags),
        transfers=tuple(m.Transfer(m.TransferKind(t.kind), t.trunk, t.queue, t.no_answer_seconds, t.on_no_answer,
                                   t.department) for t in spec.transfers),
        transition=_window(spec.transition, tz) if spec.transition else None,
        after_transition=after, after_prompts=tuple(spec.after_prompts), source_line=line_no)


def build_table(spec: TableSpec, *, source: str, version: str, rule_lines: dict | None = None) -> m.RoutingTable:
    tz = ZoneInfo(spec.timezone)
    rule_lines = rule_lines or {}
    calendars = {
        cid: m.Calendar(
            cid,
            MappingProxyType({day: h.name for h in c.holidays for day in expand_days(h.from_, h.to)}),
            frozenset(c.working_days), covered_until(c))
        for cid, c in spec.calendars.items()}
    schedules = {
        sid: m.Schedule(sid, s.always, s.calendar, tuple(_span(x) for x in s.workday), tuple(_span(x) for x in s.restday))
        for sid, s in spec.schedules.items()}
    queues = {
        qid: m.Queue(qid, q.name, q.kind, q.schedule,
                     m.Overflow(q.overflow.after_seconds, q.overflow.to) if q.overflow else None,
                     _closed(q.when_closed), q.strategy, q.member_timeout, q.wrapup_seconds,
                     q.service_level_seconds or spec.service_level_seconds, q.announce_holdtime, tuple(q.members))
        for qid, q in spec.queues.items()}
    trunks = {tid: m.Trunk(tid, t.name, t.kind, t.host, t.port, t.auth, t.dial, t.username, t.secret_env,
                           tuple(t.match), caller_id_of(t))
              for tid, t in spec.trunks.items()}
    lines = {}
    for number, line in spec.lines.items():
        rules = [_rule(number, i, r, tz, rule_lines.get(("lines", number, "rules", i), 0))
                 for i, r in enumerate(line.rules)]
        rules.sort(key=lambda r: r.effective.start or datetime.min.replace(tzinfo=tz))
        lines[number] = m.Line(number, line.service, line.seed, tuple(rules))
    a = spec.abuse
    abuse = m.AbusePolicy(
        listed=tuple(m.ListedCaller(x.number, end_bound(x.until, tz), x.reason)
                     for x in a.listed),
        max_calls=a.max_calls, per_minutes=a.per_minutes,
        action=m.Action.HANGUP if a.hangup else m.Action.QUEUE, queue=a.queue, prompts=tuple(a.prompts))
    return m.RoutingTable(
        version=version, source=source, timezone=tz, general_queue=spec.general_queue,
        service_level_seconds=spec.service_level_seconds, calendars=MappingProxyType(calendars),
        schedules=MappingProxyType(schedules), queues=MappingProxyType(queues), trunks=MappingProxyType(trunks),
        lines=MappingProxyType(lines), abuse=abuse, unknown_prompts=tuple(spec.unknown_number.prompts),
        emergency_retry=_emergency_retry(spec), switches=_switches(spec, rule_lines))


def _switches(spec: TableSpec, positions: dict) -> MappingProxyType:
    return MappingProxyType({
        sid: m.Switch(sid, s.name.zh, s.name.en, s.code, s.pin_env, tuple(s.lines), tuple(s.prompts), s.queue,
                      s.closed, s.work_orders_only, positions.get(("switches", sid), 0))
        for sid, s in spec.switches.items()})


def _emergency_retry(spec: TableSpec) -> MappingProxyType:
    """Every emergency trunk's retry: its own entry over `emergency.retry` over the model's defaults."""
    base = {k: v for k, v in spec.emergency.retry.model_dump().items() if v is not None}
    out = {}
    for tid, trunk in spec.trunks.items():
        if trunk.kind != "emergency":
            continue
        own = spec.emergency.trunks.get(tid)
        values = {**base, **({k: v for k, v in own.model_dump().items() if v is not None} if own else {})}
        out[tid] = m.EmergencyRetry(**values)
    return MappingProxyType(out)


def _span(text: str) -> m.TimeSpan:
    start, end = text.split("-")
    return m.TimeSpan(datetime.strptime(start, "%H:%M").time(),
                      None if end == "24:00" else datetime.strptime(end, "%H:%M").time())
