"""`hotline db`, `hotline records`, `hotline report`, `hotline workorders`, `hotline callbacks`: the records'
command line.

The clock is read here, at the edge. Times without an offset are read in the routing table's time zone.
"""
from __future__ import annotations

import difflib
import json
import sys
from datetime import date, datetime, timezone, tzinfo
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import click
from sqlalchemy import Engine, make_url, select
from sqlalchemy.exc import SQLAlchemyError

from records import callbacks, reports, workorders
from records.callbacks import CallbackCipher, CallbackError, CallbackKeyError
from records.db import SchemaNotReady, current_revision, make_engine, ready_engine, upgrade
from records.keys import CALLBACK_KEY_FILE_NAME, KEY_FILE_NAME, existing_callback_key, existing_key
from records.schema import table_versions
from records.types import Outcome, WorkOrder
from routing.model import Calendar, RoutingTable
from scripts.cliopts import known_id
from scripts.settings import VAR_DIR, load_settings

DEFAULT_TZ = ZoneInfo("Asia/Shanghai")


class Context:
    def __init__(self, db_url: str | None) -> None:
        self.settings = load_settings()
        self.db_url = db_url or self.settings.db_url
        self._table: RoutingTable | None = None

    def engine(self) -> Engine:
        """The records database, its schema at head (SQLite: created/upgraded as `hotline serve` does)."""
        return ready_engine(self.db_url)

    def raw_engine(self) -> Engine:
        """No schema check: for `hotline db` itself."""
        return make_engine(self.db_url)

    def shown_url(self) -> str:
        return make_url(self.db_url).render_as_string(hide_password=True)

    def table(self) -> RoutingTable | None:
        if self._table is None:
            from routing.loader import TableError, load_table

            try:
                self._table = load_table(self.settings.routing_table)
            except (TableError, OSError):
                return None
        return self._table

    def tz(self) -> tzinfo:
        table = self.table()
        return table.timezone if table else DEFAULT_TZ

    def calendar(self, name: str | None) -> Calendar:
        table = self.table()
        if table is None:
            raise click.ClickException(f"the routing table {self.settings.routing_table} does not load; "
                                       "run `hotline routes check` (the sign deadline needs its calendar)")
        if name is None:
            if len(table.calendars) != 1:
                raise click.ClickException(f"the table has calendars {sorted(table.calendars)}: choose --calendar")
            name = next(iter(table.calendars))
        if name not in table.calendars:
            raise click.ClickException(f"no calendar {name!r}; the table has {sorted(table.calendars)}")
        return table.calendars[name]

    def key(self) -> bytes | None:
        secret = self.settings.caller_hash_key
        return existing_key(secret.get_secret_value() if secret else None, VAR_DIR)


db_option = click.option("--db-url", default=None, help="SQLAlchemy URL (default: HOTLINE_DB_URL).")


def instant(text: str | None, tz: tzinfo) -> datetime | None:
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise click.BadParameter(f"'{text}' is not an ISO-8601 date or instant (e.g. 2021-09-17T17:00)") from None
    return value if value.tzinfo else value.replace(tzinfo=tz)


def now(tz: tzinfo) -> datetime:
    return datetime.now(timezone.utc).astimezone(tz)


def database_errors(func):
    """A database that cannot be reached is a clear one-line error, not a traceback."""
    import functools

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except SQLAlchemyError as exc:
            orig = getattr(exc, "orig", None) or exc
            first = (str(orig).strip().splitlines() or [""])[0]
            raise click.ClickException(f"database error: {type(orig).__name__}: {first}") from None
        except (workorders.WorkOrderError, CallbackError, CallbackKeyError, SchemaNotReady) as exc:
            raise click.ClickException(str(exc)) from None
    return wrapper


# --- hotline db ------------------------------------------------------------------------------------
@click.group("db")
def db() -> None:
    """The records database: schema migrations."""


@db.command("upgrade")
@db_option
@click.option("--revision", default="head", show_default=True)
@database_errors
def db_upgrade(db_url: str | None, revision: str) -> None:
    """Bring the schema up to date (alembic migrations shipped in records/migrations)."""
    ctx = Context(db_url)
    engine = ctx.raw_engine()
    try:
        upgrade(engine, revision)
        click.echo(f"{ctx.shown_url()}: schema at revision {current_revision(engine)}")
    finally:
        engine.dispose()


@db.command("current")
@db_option
@database_errors
def db_current(db_url: str | None) -> None:
    """Show the schema revision the database is at."""
    ctx = Context(db_url)
    engine = ctx.raw_engine()
    try:
        click.echo(f"{ctx.shown_url()}: schema at revision {current_revision(engine) or '(none: run hotline db upgrade)'}")
    finally:
        engine.dispose()


# --- hotline records -------------------------------------------------------------------------------
def call_filters(func):
    for option in reversed([
        click.option("--line", help="Legacy line that decided, e.g. 12320.", callback=known_id("line")),
        click.option("--since", help="From this date/instant (inclusive)."),
        click.option("--until", help="Up to this date/instant (exclusive)."),
        click.option("--caller", metavar="NUMBER", help="A caller's full number: looked up by keyed hash."),
        click.option("--outcome", type=click.Choice([o.value for o in Outcome])),
        click.option("--limit", type=int, default=None),
        db_option,
    ]):
        func = option(func)
    return func


def build_filter(ctx: Context, line, since, until, caller, outcome, limit) -> reports.CallFilter:
    tz = ctx.tz()
    if caller and ctx.key() is None:
        raise click.ClickException(f"no caller-hash key (HOTLINE_CALLER_HASH_KEY or {VAR_DIR / KEY_FILE_NAME}): "
                                   "no call can have been recorded with one, so none can be found by number")
    return reports.CallFilter(line=line, since=instant(since, tz), until=instant(until, tz), caller=caller,
                              outcome=outcome, limit=limit)


@click.group("records", epilog="\b\nExamples:\n  hotline records search --line 12320 --since 2021-09-17\n"
                                "  hotline records show 1764122400.1")
def records() -> None:
    """Call records: search and export. Caller numbers are stored masked plus a keyed hash, never in full."""


@records.command("search")
@call_filters
@click.option("--full", is_flag=True, help="(admin) Ask for full caller numbers: refused, none are stored.")
@database_errors
def records_search(line, since, until, caller, outcome, limit, db_url, full) -> None:
    """List calls, oldest first (masked callers)."""
    if full:
        raise click.ClickException(
            "--full: caller numbers are never stored in full (only masked, e.g. 138****5678, plus a keyed hash), "
            "so they cannot be shown to anyone, admins included. To find a known number's calls, pass "
            "--caller NUMBER.")
    ctx = Context(db_url)
    filt = build_filter(ctx, line, since, until, caller, outcome, limit)
    engine = ctx.engine()
    try:
        rows = reports.search(engine, filt, ctx.key())
    finally:
        engine.dispose()
    tz = ctx.tz()
    click.echo(f"{'arrived':<19} {'uniqueid':<20} {'line':<6} {'caller':<13} {'action':<8} {'target':<20} "
               f"{'wait':>6} {'outcome':<10} transfers")
    for row in rows:
        wait = f"{row['wait_seconds']:.0f}s" if row["wait_seconds"] is not None else "-"
        click.echo(f"{row['arrived_at'].astimezone(tz):%Y-%m-%d %H:%M:%S} {row['uniqueid']:<20} {row['line']:<6} "
                   f"{row['caller_masked'] or '-':<13} {row['action'] or '-':<8} {row['target'] or '-':<20} "
                   f"{wait:>6} {row['outcome'] or '-':<10} {row['transfers']}")
    click.echo(f"{len(rows)} call(s)", err=True)


@records.command("export", epilog="\b\nExamples:\n  hotline records export --csv calls.csv --since 2021-09-17")
@click.option("--csv", "csv_file", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Output file ('-' for stdout).")
@call_filters
@database_errors
def records_export(csv_file: Path, line, since, until, caller, outcome, limit, db_url) -> None:
    """Export calls as CSV (masked callers, no hashes; instants in the table's time zone, with the offset)."""
    ctx = Context(db_url)
    filt = build_filter(ctx, line, since, until, caller, outcome, limit)
    engine = ctx.engine()
    try:
        rows = reports.search(engine, filt, ctx.key())
    finally:
        engine.dispose()
    if str(csv_file) == "-":
        count = reports.write_csv(rows, sys.stdout, ctx.tz())
    else:
        with open(csv_file, "w", newline="", encoding="utf-8") as out:
            count = reports.write_csv(rows, out, ctx.tz())
    click.echo(f"exported {count} call(s) to {csv_file}", err=True)


@records.command("show", epilog="\b\nExamples:\n  hotline records show 1764122400.1\n"
                                 "  hotline records show 1764122400.1 --lang en --json")
@click.argument("uniqueid")
@click.option("--lang", type=click.Choice(["zh", "en"]), default="zh", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="The call's records as JSON (masked numbers).")
@click.option("--full", is_flag=True, help="(admin) Ask for the full caller number: refused, none is stored.")
@db_option
@database_errors
def records_show(uniqueid: str, lang: str, as_json: bool, full: bool, db_url: str | None) -> None:
    """One call's timeline: arrival, route and rule, IVR path, queues joined and left with their waits,
    transfers, callbacks, work orders, outcome."""
    from records import timeline

    t = _translator(lang)
    if full:
        raise click.ClickException(t("reports.timeline.full_refused"))
    ctx = Context(db_url)
    engine = ctx.engine()
    try:
        found = timeline.load(engine, uniqueid)
    finally:
        engine.dispose()
    if found is None:
        raise click.ClickException(t("reports.timeline.not_found", uniqueid=uniqueid))
    if as_json:
        click.echo(json.dumps(found, ensure_ascii=False, indent=2,
                              default=lambda v: v.astimezone(ctx.tz()).isoformat()))
        return
    line_names, queue_names, _sl = _names(ctx)
    click.echo(timeline.format_text(found, t, ctx.tz(), line_names=line_names, queue_names=queue_names), nl=False)


@records.command("versions")
@db_option
@click.option("--limit", type=int, default=20, show_default=True)
@click.option("--diff", "diff_versions", nargs=2, metavar="OLD NEW",
              help="Show what changed between two loaded versions (hash prefixes from the listing).")
@database_errors
def records_versions(db_url: str | None, limit: int, diff_versions: tuple[str, str] | None) -> None:
    """The routing-table and menus audit trail: which version was loaded, by whom, when, from where."""
    ctx = Context(db_url)
    engine = ctx.engine()
    try:
        with engine.connect() as conn:
            query = select(table_versions).order_by(table_versions.c.loaded_at.desc())
            rows = conn.execute(query if diff_versions else query.limit(limit)).mappings().all()
    finally:
        engine.dispose()
    if diff_versions:
        click.echo(version_diff(rows, *diff_versions), nl=False)
        return
    for row in rows:
        click.echo(f"{row['loaded_at'].astimezone(ctx.tz()):%Y-%m-%d %H:%M:%S} {row['version'][:12]} "
                   f"{row['loaded_by']} {row['source']}")


def version_diff(rows, old: str, new: str) -> str:
    """Unified diff of the texts two loads put in force (the newest load of each version)."""
    def find(prefix: str):
        match = next((r for r in rows if r["version"].startswith(prefix)), None)
        if match is None:
            raise click.ClickException(f"no loaded version starts with {prefix!r} (see `hotline records versions`)")
        if match["content"] is None:
            raise click.ClickException(f"version {match['version']} was recorded without its text")
        return match
    before, after = find(old), find(new)
    if Path(before["source"]).name != Path(after["source"]).name:
        raise click.ClickException(f"{before['version']} is {before['source']}, {after['version']} is "
                                   f"{after['source']}: compare versions of the same file")
    return "".join(difflib.unified_diff(
        before["content"].splitlines(keepends=True), after["content"].splitlines(keepends=True),
        fromfile=f"{before['version']} ({before['loaded_by']}, {before['loaded_at']:%Y-%m-%d %H:%M})",
        tofile=f"{after['version']} ({after['loaded_by']}, {after['loaded_at']:%Y-%m-%d %H:%M})"))


# --- hotline report --------------------------------------------------------------------------------
@click.group("report", epilog="\b\nExamples:\n  hotline report daily --date 2021-09-17\n"
                               "  hotline report weekly --html week.html --lang en")
def report() -> None:
    """Traffic reports from the call records: per line, per queue, per hour (daily) or day, and totals."""


def _translator(lang: str):
    from supervisor import i18n

    return lambda key, **params: i18n.text(key, lang, **params)


def _names(ctx: Context) -> tuple[dict[str, str], dict[str, str], int]:
    """Line services and queue names from the table (table order), and its service level threshold."""
    table = ctx.table()
    if table is None:
        return {}, {}, 15
    return ({number: line.service for number, line in table.lines.items()},
            {qid: q.name for qid, q in table.queues.items()}, table.service_level_seconds)


def _write(path: Path, write) -> None:
    if str(path) == "-":
        write(sys.stdout)
        return
    with open(path, "w", newline="", encoding="utf-8") as out:
        write(out)
    click.echo(f"wrote {path}", err=True)


def _run_report(kind: str, day: str | None, lang: str, as_json: bool, csv_file: Path | None,
                html_file: Path | None, db_url: str | None) -> None:
    from records import period_report, report_output
    from records.periods import period, previous

    ctx = Context(db_url)
    tz = ctx.tz()
    at = now(tz)
    try:
        chosen = period(kind, date.fromisoformat(day), tz) if day else previous(kind, at.date(), tz)
    except ValueError:
        raise click.BadParameter(f"'{day}' is not a date (YYYY-MM-DD)", param_hint="--date") from None
    line_names, queue_names, sl = _names(ctx)
    engine = ctx.engine()
    try:
        result = period_report.load(engine, chosen, as_of=at, service_level=sl, line_names=line_names,
                                    queue_names=queue_names)
    finally:
        engine.dispose()
    t = _translator(lang)
    if csv_file is not None:
        _write(csv_file, lambda out: report_output.write_csv(result, out))
    if html_file is not None:
        _write(html_file, lambda out: out.write(report_output.format_html(result, t, lang, at)))
    if as_json:
        click.echo(json.dumps(result.to_json(), ensure_ascii=False, indent=2))
    elif csv_file is None and html_file is None:
        click.echo(report_output.format_text(result, t), nl=False)


def report_command(kind: str, what: str, default: str, example: str):
    summary = (f"Figures of the {what} per line, per queue, per {'hour' if kind == 'daily' else 'day'} and in "
               "total: offered, answered (within the service level), abandoned, overflowed, rates, waits, "
               "callbacks, work orders. Times in the table's time zone.")

    @report.command(kind, help=summary, epilog=f"\b\nExamples:\n  hotline report {kind}{example}")
    @click.option("--date", "day", default=None,
                  help=f"A day (YYYY-MM-DD) in the {what}, in the table's time zone; default {default}.")
    @click.option("--lang", type=click.Choice(["zh", "en"]), default="zh", show_default=True,
                  help="Language of the text and HTML.")
    @click.option("--json", "as_json", is_flag=True, help="Machine-readable output on stdout.")
    @click.option("--csv", "csv_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
                  help="Write CSV: one row per line, queue, hour/day and the total ('-': stdout).")
    @click.option("--html", "html_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
                  help="Write a self-contained HTML report with charts, to send on.")
    @db_option
    @database_errors
    def command(day, lang, as_json, csv_file, html_file, db_url) -> None:
        _run_report(kind, day, lang, as_json, csv_file, html_file, db_url)
    return command


report_daily = report_command("daily", "day", "yesterday", " --date 2021-09-17 --csv day.csv")
report_weekly = report_command("weekly", "week (Monday to Sunday)", "last week", " --lang en --json")
report_monthly = report_command("monthly", "month", "last month", " --date 2021-09-01 --html sept.html")


# --- hotline workorders ----------------------------------------------------------------------------
@click.group("workorders")
def workorders_group() -> None:
    """Work orders to sub-centers and departments: dispatch, sign, close, overdue."""


def show_order(order: WorkOrder, tz: tzinfo, at: datetime) -> str:
    late = "  OVERDUE" if order.is_overdue(at) else ""
    return (f"{order.number}  {order.status.value:<10} line {order.line:<6} -> {order.target:<18} "
            f"dispatched {order.dispatched_at.astimezone(tz):%Y-%m-%d %H:%M}  "
            f"sign by {order.sign_deadline.astimezone(tz):%Y-%m-%d %H:%M}{late}")


@workorders_group.command("list")
@click.option("--overdue", is_flag=True, help="Only orders past their sign deadline and not signed.")
@click.option("--at", "at_text", default=None, help="As of this instant (default now).")
@click.option("--status", type=click.Choice(["dispatched", "signed", "closed"]))
@click.option("--line", help="Only orders from this legacy line, e.g. 12366.", callback=known_id("line"))
@db_option
@database_errors
def workorders_list(overdue: bool, at_text: str | None, status: str | None, line: str | None,
                    db_url: str | None) -> None:
    """Work orders with their status and sign deadline (working days of the table's calendar), oldest first;
    OVERDUE marks those past the deadline and not signed."""
    ctx = Context(db_url)
    tz = ctx.tz()
    at = instant(at_text, tz) or now(tz)
    engine = ctx.engine()
    try:
        orders = list(workorders.list_orders(engine, overdue_at=at if overdue else None, status=status, line=line))
    finally:
        engine.dispose()
    for order in orders:
        click.echo(show_order(order, tz, at))
    click.echo(f"{len(orders)} work order(s)", err=True)


@workorders_group.command("dispatch")
@click.option("--line", required=True, help="The legacy line the call came in on.", callback=known_id("line"))
@click.option("--category", required=True, help="e.g. subcenter, retained_seat.")
@click.option("--target", required=True, help="Sub-center trunk id or department id, e.g. subcenter-12366.")
@click.option("--department")
@click.option("--uniqueid", help="The call this order comes from.")
@click.option("--by", "by", help="Who dispatches.")
@click.option("--summary")
@click.option("--days", type=int, default=1, show_default=True, help="Working days to sign.")
@click.option("--calendar", "calendar_id", help="Calendar id in the routing table (default: its only one).")
@click.option("--at", "at_text", help="Dispatch instant (default now).")
@db_option
@database_errors
def workorders_dispatch(line, category, target, department, uniqueid, by, summary, days, calendar_id, at_text,
                        db_url) -> None:
    """Open a work order for a sub-center or department (e.g. a specialist question the agent cannot answer);
    prints its number and the sign deadline, counted in working days of the table's calendar."""
    ctx = Context(db_url)
    tz = ctx.tz()
    at = instant(at_text, tz) or now(tz)
    calendar = ctx.calendar(calendar_id)
    engine = ctx.engine()
    try:
        order = workorders.dispatch(engine, line=line, category=category, target=target, department=department,
                                    uniqueid=uniqueid, dispatched_by=by, summary=summary, at=at,
                                    calendar=calendar, tz=tz, working_days=days)
    finally:
        engine.dispose()
    click.echo(show_order(order, tz, at))
    if calendar is not None and calendar.covers_until and order.sign_deadline.astimezone(tz).date() > \
            calendar.covers_until:
        click.echo(f"note: the sign deadline lies past the holiday data of calendar {calendar.id} (it ends "
                   f"{calendar.covers_until}): holidays there are not counted", err=True)


def _transition(action, number: str, by: str, at_text: str | None, db_url: str | None) -> None:
    ctx = Context(db_url)
    tz = ctx.tz()
    at = instant(at_text, tz) or now(tz)
    engine = ctx.engine()
    try:
        order = action(engine, number, at=at, by=by)
    finally:
        engine.dispose()
    click.echo(show_order(order, tz, at))


@workorders_group.command("sign")
@click.argument("number")
@click.option("--by", "by", required=True, help="Who signs (the receiving desk).")
@click.option("--at", "at_text", help="Instant (default now).")
@db_option
@database_errors
def workorders_sign(number: str, by: str, at_text: str | None, db_url: str | None) -> None:
    """The receiving desk confirms it has work order NUMBER (dispatched -> signed); who and when are kept on the order."""
    _transition(workorders.sign, number, by, at_text, db_url)


@workorders_group.command("close")
@click.argument("number")
@click.option("--by", "by", required=True, help="Who closes it.")
@click.option("--at", "at_text", help="Instant (default now).")
@db_option
@database_errors
def workorders_close(number: str, by: str, at_text: str | None, db_url: str | None) -> None:
    """Work order NUMBER is dealt with (-> closed); who and when are kept on the order."""
    _transition(workorders.close, number, by, at_text, db_url)


# --- hotline callbacks -----------------------------------------------------------------------------
@click.group("callbacks")
def callbacks_group() -> None:
    """Callback requests: list (masked numbers), take one (its number is shown once, to you), mark it done."""


def show_callback(cb: callbacks.Callback, tz: tzinfo) -> str:
    taken = f"  {cb.taken_by} {cb.taken_at.astimezone(tz):%H:%M}" if cb.taken_by and cb.taken_at else ""
    return (f"{cb.requested_at.astimezone(tz):%Y-%m-%d %H:%M:%S} {cb.uniqueid:<20} {cb.queue:<20} {cb.line:<6} "
            f"{cb.number_masked:<13} {cb.language or '-':<3} {cb.status.value:<8}{taken}")


@callbacks_group.command("list")
@click.option("--queue", help="Only this queue's requests.", callback=known_id("queue"))
@click.option("--status", default="pending", show_default=True,
              type=click.Choice([s.value for s in callbacks.CallbackStatus] + ["all"]))
@click.option("--limit", type=int, default=None)
@db_option
@database_errors
def callbacks_list(queue: str | None, status: str, limit: int | None, db_url: str | None) -> None:
    """Oldest first, numbers masked. Take one by its uniqueid (or full id when a call has several)."""
    ctx = Context(db_url)
    engine = ctx.engine()
    try:
        found = callbacks.list_callbacks(engine, queue=queue, status=None if status == "all" else status, limit=limit)
    finally:
        engine.dispose()
    click.echo(f"{'requested':<19} {'uniqueid':<20} {'queue':<20} {'line':<6} {'number':<13} {'lng':<3} status")
    for cb in found:
        click.echo(show_callback(cb, ctx.tz()))
    click.echo(f"{len(found)} callback request(s)", err=True)


@callbacks_group.command("take")
@click.argument("ident", metavar="ID")
@click.option("--agent", required=True, help="Who calls back: the number is shown to this agent, once.")
@click.option("--at", "at_text", help="Instant (default now).")
@db_option
@database_errors
def callbacks_take(ident: str, agent: str, at_text: str | None, db_url: str | None) -> None:
    """Take a pending request: it is marked taken by AGENT and its full number is printed, this once."""
    ctx = Context(db_url)
    key = existing_callback_key(ctx.settings, VAR_DIR)
    if key is None:
        raise click.ClickException(f"no callback key (HOTLINE_CALLBACK_KEY or {VAR_DIR / CALLBACK_KEY_FILE_NAME}): "
                                   "the numbers were encrypted with a key this machine does not have")
    cipher = CallbackCipher(key)
    tz = ctx.tz()
    at = instant(at_text, tz) or now(tz)
    engine = ctx.engine()
    try:
        cb, number = callbacks.take(engine, ident, agent=agent, at=at, cipher=cipher)
    finally:
        engine.dispose()
    click.echo(f"{cb.record_id}: taken by {agent}; queue {cb.queue}, line {cb.line}, language {cb.language or '-'}, "
               f"requested {cb.requested_at.astimezone(tz):%Y-%m-%d %H:%M}")
    click.echo(f"call back: {number}")
    click.echo("(shown once: it will not be shown again; run `hotline callbacks done ID` when settled)", err=True)


@callbacks_group.command("done")
@click.argument("ident", metavar="ID")
@click.option("--agent", help="Who settled it.")
@click.option("--at", "at_text", help="Instant (default now).")
@db_option
@database_errors
def callbacks_done(ident: str, agent: str | None, at_text: str | None, db_url: str | None) -> None:
    """Mark a request done (called back, or a duplicate); its encrypted number is erased."""
    ctx = Context(db_url)
    tz = ctx.tz()
    at = instant(at_text, tz) or now(tz)
    engine = ctx.engine()
    try:
        cb = callbacks.done(engine, ident, at=at, by=agent)
    finally:
        engine.dispose()
    click.echo(show_callback(cb, tz))
