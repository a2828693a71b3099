"""`hotline routes`: check, explain and list the routing table. The clock is read here, at the edge."""
from __future__ import annotations

import json
import sys
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import click

from routing.decide import decide, next_change, normalize_number, rule_in_force, switches_changing
from routing.hours import HoursExplanation, explain_hours
from routing.checks import Resolver
from routing.loader import LoadResult, TableError, load_table_with_warnings
from routing.model import CallerHistory, Route, RoutingTable
from routing.privacy import mask_number
from routing.yamlsource import SourceError, load_document
from routing.suggest import close_matches
from scripts import cliopts
from scripts.dnscheck import system_resolver
from scripts.settings import load_settings


def parse_instant(text: str | None, table: RoutingTable) -> datetime:
    """ISO-8601; without an offset it is read in the table's time zone (Asia/Shanghai)."""
    if not text:
        return datetime.now(timezone.utc).astimezone(table.timezone)
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise click.BadParameter(f"'{text}' is not an ISO-8601 instant (e.g. 2021-09-10T03:00)") from None
    return value if value.tzinfo else value.replace(tzinfo=table.timezone)


def menu_references(path: Path) -> set[str]:
    """Every plain value of the IVR menus file: queues it names count as reached."""
    try:  # the bounded loader: a hostile menus file cannot make `routes check` expand an alias bomb
        data = load_document(path).data
    except SourceError:
        return set()
    found: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)
        elif isinstance(node, str):
            found.update(node.split())

    walk(data)
    return found


def load(file: Path | None, menus: Path | None = None, resolve: Resolver | None = None,
         calendar_days: int | None = None) -> LoadResult:
    settings = load_settings()
    path = file or settings.routing_table
    menus = menus or settings.ivr_menus
    try:
        return load_table_with_warnings(path, now=datetime.now(timezone.utc),
                                        external_references=menu_references(menus), resolve=resolve,
                                        calendar_days=calendar_days)
    except TableError as exc:
        for problem in exc.problems:
            click.echo(str(problem), err=True)
        click.echo(f"{path}: {len(exc.problems)} error(s); nothing was loaded", err=True)
        sys.exit(1)


table_option = cliopts.table_option("file")       # --table (old spelling -f/--file still works)


@click.group()
def routes() -> None:
    """Check, explain and list the routing table."""


@routes.command()
@click.argument("file", required=False, type=click.Path(path_type=Path))
@cliopts.table_option("table_path")
@click.option("--menus", type=click.Path(path_type=Path), default=None,
              help="IVR menus whose queue references count as reached (default: conf/ivr.yaml).")
@click.option("--no-dns", "no_dns", is_flag=True,
              help="Do not look trunk host names up (placeholder .invalid hosts are still reported).")
@click.option("--calendar-days", type=click.IntRange(min=0), default=None,
              help="Warn when a calendar in use has no holiday data this many days ahead "
                   "[HOTLINE_CALENDAR_WARN_DAYS, 60].")
def check(file: Path | None, table_path: Path | None, menus: Path | None, no_dns: bool,
          calendar_days: int | None) -> None:
    """Validate the table (--table, or FILE): exit 0 with a summary, or exit 1 with every error as file:line:column. Warnings too
    (exit 0), among them trunk hosts that are placeholders (.invalid) or do not resolve here, and calendars
    whose holidays run out within --calendar-days."""
    days = load_settings().calendar_warn_days if calendar_days is None else calendar_days
    file = cliopts.merge_positional(file, table_path, "--table")
    result = load(file, menus, None if no_dns else system_resolver(), calendar_days=days)
    for warning in result.warnings:
        click.echo(str(warning), err=True)
    t = result.table
    click.echo(f"{t.source}: OK, version {t.version}: {len(t.lines)} lines, {len(t.queues)} queues, "
               f"{len(t.trunks)} trunks, {sum(len(c.holidays) for c in t.calendars.values())} holiday days; "
               f"{len(result.warnings)} warning(s)")


def route_dict(route: Route) -> dict[str, Any]:
    data = asdict(route)
    data["effective"] = {"from": _iso(route.effective.start), "until": _iso(route.effective.end)}
    for transfer in data["transfers"]:
        transfer["kind"] = transfer["kind"].value
    data["category"] = route.category.value
    data["action"] = route.action.value
    return data


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


@routes.command()
@click.argument("number")
@click.option("--at", "at_text", help="Instant, ISO-8601 (default: now). Without offset: Asia/Shanghai.")
@click.option("--caller", help="Caller's number (for the abuse rule); shown masked.")
@click.option("--recent-calls", type=int, default=None, help="Calls from this caller in the abuse window.")
@table_option
@click.option("--switch", "switch_names", multiple=True, metavar="NAME",
              help="Decide with this override switch on (repeatable); the switches on now are not read.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def explain(number: str, at_text: str | None, caller: str | None, recent_calls: int | None, file: Path | None,
            switch_names: tuple[str, ...], as_json: bool) -> None:
    """What happens to a call to NUMBER at an instant, and the rule and dates that decide it; the override
    switches on now (from the records, when readable) and which switches would change it."""
    table = load(file).table
    at = parse_instant(at_text, table)
    history = CallerHistory(recent_calls) if recent_calls is not None else None
    for name in switch_names:
        if name not in table.switches:
            raise click.BadParameter(f"no switch '{name}' (known: {', '.join(table.switches) or 'none'})",
                                     param_hint="--switch")
    active, source = (set(switch_names), "--switch") if switch_names else _switches_on(at)
    route = decide(table, number, caller, at, history, active)
    hours = hours_along(table, route, at)
    changing = switches_changing(table, number, caller, at, history, active)
    if as_json:
        click.echo(json.dumps({"at": at.isoformat(), "table": table.version, "caller": mask_number(caller),
                               "route": route_dict(route), "hours": [hours_dict(q, h) for q, h in hours],
                               "switches_on": sorted(active), "switches_from": source,
                               "switches_changing": {n: route_dict(r) for n, r in changing.items()}},
                              ensure_ascii=False, indent=2))
        return
    line = table.lines.get(route.line)
    lines = [
        f"call to {number} at {at.isoformat()} (table {table.version})" + (f" from {mask_number(caller)}" if caller else ""),
        f"  line:      {route.line} — {route.service}",
        f"  category:  {route.category.value}",
        f"  rule:      {route.rule_id} (in force {_iso(route.effective.start) or 'always'} .. "
        f"{_iso(route.effective.end) or 'open-ended'})",
        f"  prompts:   {', '.join(route.prompts) or '(none)'}",
        f"  menu:      {route.menu or '(none)'}",
        f"  then:      {route.action.value} {route.target or ''}".rstrip(),
    ]
    for step in route.overflow:
        lines.append(f"  overflow:  after {step.after_seconds}s waiting -> {step.to}")
    if route.tags:
        lines.append(f"  tags:      {', '.join(route.tags)}")
    for transfer in route.transfers:
        target = transfer.trunk or transfer.queue or transfer.department
        lines.append(f"  transfer:  {transfer.kind.value} -> {target}"
                     + (f" (no answer in {transfer.no_answer_seconds}s: {transfer.on_no_answer})"
                        if transfer.kind.value in ("attended", "three_way") else ""))
    lines.append(f"  why:       {route.reason}")
    if normalize_number(number) not in table.lines:
        near = close_matches(normalize_number(number), table.lines)
        if near:
            lines.append("  did you mean: " + " or ".join(f"{n} ({table.lines[n].service})" for n in near) + "?")
    for queue_id, h in hours:
        lines += hours_lines(table, queue_id, h)
    if line is not None:
        lines.append(f"  seed:      {line.seed}")
    for warning in route.warnings:
        lines.append(f"  warning:   {warning}")
    lines.append(f"  switches:  on ({source}): {', '.join(sorted(active)) or 'none'}")
    for name, other in changing.items():
        sw = table.switches[name]
        lines.append(f"  switch:    {name} ({sw.name_zh} / {sw.name_en}) {'off' if name in active else 'on'} would "
                     f"give: {', '.join(other.prompts) + ', then ' if other.prompts else ''}{other.action.value} "
                     f"{other.target or ''}".rstrip()
                     + (f", transfers {', '.join(t.kind.value for t in other.transfers) or 'none'}"
                        if other.transfers != route.transfers else ""))
    click.echo("\n".join(lines))


def hours_along(table: RoutingTable, route: Route, at: datetime) -> list[tuple[str, HoursExplanation]]:
    """The opening hours of each queue with a schedule the call met: where its rule (or the abuse rule, or
    the general handling) sent it, then each closed queue's fallback, as decide() followed them."""
    line = table.lines.get(route.line)
    rule = rule_in_force(line, at) if line is not None else None
    first = {"abuse": table.abuse.queue, "unknown-number": table.general_queue}.get(
        route.rule_id, rule.queue if rule is not None else None)
    out, seen, queue_id = [], set(), first
    while queue_id and queue_id in table.queues and queue_id not in seen:
        seen.add(queue_id)
        queue = table.queues[queue_id]
        if queue.schedule is None:
            break
        explained = explain_hours(table, queue.schedule, at)
        out.append((queue_id, explained))
        if explained.open or queue.when_closed is None:
            break
        queue_id = queue.when_closed.queue
    return out


def hours_dict(queue_id: str, h: HoursExplanation) -> dict[str, Any]:
    return {"queue": queue_id, "schedule": h.schedule, "calendar": h.calendar, "day": h.kind.why,
            "working_day": h.kind.working, "beyond_calendar_data": h.kind.beyond_data, "spans": h.spans,
            "open": h.open, "next_open": _iso(h.next_open)}


def hours_lines(table: RoutingTable, queue_id: str, h: HoursExplanation) -> list[str]:
    queue = table.queues[queue_id]
    hours = "working-day hours" if h.kind.working else "rest-day hours"
    day = h.kind.why + (f" (calendar {h.calendar})" if h.calendar else "")
    out = [f"  hours:     {queue.name} ({queue_id}) {'open' if h.open else 'closed'}: {day}, "
           f"{hours} {h.spans} (schedule {h.schedule}, {table.timezone.key})"]
    if h.kind.beyond_data:
        calendar = table.calendars[h.calendar]
        out.append(f"  warning:   past the calendar's data (it ends {calendar.covers_until}): holidays after that "
                   "are not known, this day is taken as a plain " + ("weekday" if h.kind.working else "weekend"))
    if not h.open:
        calendar = table.calendars.get(h.calendar) if h.calendar else None
        guessed = bool(h.next_open and calendar and calendar.covers_until
                       and h.next_open.date() > calendar.covers_until)
        out.append(f"  opens:     {h.next_open:%Y-%m-%d %H:%M} ({table.timezone.key})"
                   + (" (past the calendar's data: holidays unknown)" if guessed else "") if h.next_open
                   else "  opens:     not within a year")
    return out
def _switches_on(at: datetime) -> tuple[set[str], str]:
    """The switches on at `at` per the records (the edge: a read of SQL); none when the records cannot be read."""
    try:
        from records.switches import SwitchStore
        return set(SwitchStore.for_url(load_settings().db_url).snapshot().active_names(at)), "records"
    except Exception as exc:
        return set(), f"records unreadable: {type(exc).__name__}"


@routes.command(name="list")
@click.option("--at", "at_text", help="Instant, ISO-8601 (default: now).")
@table_option
@click.option("--json", "as_json", is_flag=True)
def list_lines(at_text: str | None, file: Path | None, as_json: bool) -> None:
    """Every line: number, service, category, state at the instant, next scheduled change."""
    table = load(file).table
    at = parse_instant(at_text, table)
    rows = []
    for number in sorted(table.lines, key=lambda n: (len(n), n)):
        line = table.lines[number]
        rule = rule_in_force(line, at)
        route = decide(table, number, None, at)
        state = f"{route.action.value} {route.target or ''}".strip()
        if route.prompts:
            state = "announce, " + state
        upcoming = next_change(line, at)
        rows.append({"number": number, "service": line.service,
                     "category": rule.category.value if rule else "not in force",
                     "state": state, "next_change": _iso(upcoming)})
    if as_json:
        click.echo(json.dumps({"at": at.isoformat(), "lines": rows}, ensure_ascii=False, indent=2))
        return
    click.echo(f"lines at {at.isoformat()} (table {table.version})")
    header = ("number", "category", "state", "next change", "service")
    table_rows = [(r["number"], r["category"], r["state"], (r["next_change"] or "-")[:16], r["service"])
                  for r in rows]
    widths = [max(len(str(x[i])) for x in [header, *table_rows]) for i in range(4)]
    for row in [header, *table_rows]:
        click.echo("  ".join(str(v).ljust(w) for v, w in zip(row[:4], widths)) + "  " + row[4])
