"""`hotline traffic replay|forecast|synthesize`: what a new table does to each queue's load, how many agents
each queue needs hour by hour, and a synthetic week to try it on (issue 13).

The clock and the database are read here; the maths is traffic/ (pure). Dates are days in the table's time
zone; `--to` includes that whole day. Reports print to the terminal; --html/--csv/--json write files ('-' for
--csv/--json: standard output instead of the table).
"""
from __future__ import annotations

import json
import sys
import time as clock
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path

import click

from scripts.cli_records import Context, database_errors, db_option

EXAMPLES_REPLAY = ("\b\nExamples:\n  hotline traffic replay --from 2026-11-01 --to 2026-11-30 --table new-routing.yaml\n"
                   "  hotline traffic replay --table new.yaml --menus new-ivr.yaml --html /tmp/replay.html")
EXAMPLES_FORECAST = ("\b\nExamples:\n  hotline traffic forecast\n"
                     "  hotline traffic forecast --from 2026-11-01 --to 2026-11-30 --target 80/15 --html /tmp/f.html\n"
                     "  hotline traffic forecast --roster conf/roster.example.csv --json -")
EXAMPLES_SYNTH = ("\b\nExamples:\n  hotline traffic synthesize --days 7\n"
                  "  hotline traffic synthesize --days 7 --start 2026-11-23 --seed 7 --db-url sqlite:////tmp/try.db")

lang_option = click.option("--lang", type=click.Choice(["zh", "en"]), default="zh", show_default=True,
                           help="Language of the tables and the HTML report.")


def _translator(lang: str):
    from supervisor.i18n import text
    return lambda key, **params: text(key, lang, **params)


def _day(text: str | None, what: str) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise click.BadParameter(f"'{text}' is not a date (YYYY-MM-DD)", param_hint=what) from None


def _period(ctx: Context, engine, start: str | None, end: str | None) -> tuple[datetime, datetime]:
    from traffic.source import period_of

    tz = ctx.tz()
    first, last = _day(start, "--from"), _day(end, "--to")
    if first is None or last is None:
        known = period_of(engine)
        if known is None:
            raise click.ClickException("no calls recorded yet: try `hotline traffic synthesize --days 7`")
        first = first or known[0].astimezone(tz).date()
        last = last or known[1].astimezone(tz).date()
    if last < first:
        raise click.BadParameter(f"--to {last} is before --from {first}")
    return (datetime.combine(first, time(0), tz), datetime.combine(last + timedelta(days=1), time(0), tz))


def _table(ctx: Context):
    table = ctx.table()
    if table is None:
        raise click.ClickException(f"the routing table {ctx.settings.routing_table} does not load; "
                                   "run `hotline routes check`")
    return table


def _write(path: str | None, content: str) -> None:
    if path is None:
        return
    if path == "-":
        sys.stdout.write(content)
        return
    Path(path).write_text(content, encoding="utf-8")
    click.echo(f"wrote {path}", err=True)


def _generated(tz) -> str:
    return datetime.now(timezone.utc).astimezone(tz).strftime("%Y-%m-%d %H:%M %Z")


output_options = [
    click.option("--html", "html_path", default=None, help="Write a self-contained HTML report here."),
    click.option("--csv", "csv_path", default=None, help="Write CSV here ('-': standard output)."),
    click.option("--json", "json_path", default=None, help="Write JSON here ('-': standard output)."),
]


def outputs(func):
    for option in reversed(output_options):
        func = option(func)
    return func


@click.group("traffic", epilog="\b\nExamples:\n  hotline traffic forecast\n"
                               "  hotline traffic replay --table new-routing.yaml")
def traffic() -> None:
    """Replay recorded calls under a new table; forecast the agents each queue needs."""


@traffic.command("replay", epilog=EXAMPLES_REPLAY)
@click.option("--from", "start", default=None, help="First day (default: the first recorded).")
@click.option("--to", "end", default=None, help="Last day, included (default: the last recorded).")
@click.option("--table", "table_path", required=True, type=click.Path(exists=True, dir_okay=False),
              help="The candidate routing table.")
@click.option("--menus", "menus_path", default=None, type=click.Path(exists=True, dir_okay=False),
              help="The candidate IVR menus (default: the menus in force).")
@db_option
@lang_option
@outputs
@database_errors
def replay_cmd(start, end, table_path, menus_path, db_url, lang, html_path, csv_path, json_path) -> None:
    """Re-decide every recorded call of the period under a candidate table (pure, offline: no Asterisk)."""
    from ivr.menus import MenuError, load_menus
    from routing.loader import TableError, load_table
    from traffic import report
    from traffic.replay import Replayer
    from traffic.source import recorded_calls

    ctx = Context(db_url)
    try:
        candidate = load_table(table_path)
    except TableError as exc:
        raise click.ClickException(f"the candidate table does not load:\n{exc}") from None
    try:
        menus = load_menus(menus_path or ctx.settings.ivr_menus, candidate)
    except MenuError as exc:
        raise click.ClickException(f"the menus do not load with the candidate table:\n{exc}") from None
    except OSError:
        menus = None
    engine = ctx.engine()
    begin, finish = _period(ctx, engine, start, end)
    started = clock.perf_counter()
    result = Replayer(candidate, menus, ctx.key()).replay(recorded_calls(engine, begin, finish))
    took = clock.perf_counter() - started
    t = _translator(lang)
    if csv_path != "-" and json_path != "-":
        click.echo(report.replay_text(result, candidate, t))
        click.echo(f"\n{result.calls} calls, {result.decisions} decisions, {took:.1f} s", err=True)
        if result.listing_unknown:
            click.echo(f"{result.listing_unknown} calls have a caller hash but there is no caller-hash key here: "
                       "listed callers were not matched", err=True)
    _write(csv_path, report.replay_csv(result))
    _write(json_path, json.dumps(report.replay_dict(result), ensure_ascii=False, indent=1, default=str) + "\n")
    if html_path:
        _write(html_path, report.replay_html(result, candidate, t, lang, _generated(candidate.timezone)))


@traffic.command("forecast", epilog=EXAMPLES_FORECAST)
@click.option("--from", "start", default=None, help="First day (default: the first recorded).")
@click.option("--to", "end", default=None, help="Last day, included (default: the last recorded).")
@click.option("--target", default=None, help="PERCENT/SECONDS answered within (default: 80/<table's SL>).")
@click.option("--roster", default=None, type=click.Path(exists=True, dir_okay=False),
              help="CSV or YAML of agents per queue and hour: adds their service level and abandonment.")
@click.option("--simulate", is_flag=True, help="Simulate every hour (abandonment, overflow) with the agents needed.")
@click.option("--talk", type=float, default=None,
              help="Talk seconds to assume where no talk times are recorded.")
@click.option("--seed", type=int, default=12345, show_default=True, help="Seed of the simulation.")
@db_option
@lang_option
@outputs
@database_errors
def forecast_cmd(start, end, target, roster, simulate, talk, seed, db_url, lang, html_path, csv_path,
                 json_path) -> None:
    """Per queue and hour of the week: offered load, handle time, patience, agents needed for the target."""
    from traffic import report
    from traffic.erlang import Target
    from traffic.forecast import build
    from traffic.roster import RosterError, load_roster
    from traffic.source import call_facts

    ctx = Context(db_url)
    table = _table(ctx)
    try:
        goal = Target.parse(target) if target else Target(0.80, float(table.service_level_seconds))
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--target") from None
    try:
        scheduled = load_roster(roster, table.queues) if roster else None
    except (RosterError, OSError) as exc:
        raise click.ClickException(str(exc)) from None
    engine = ctx.engine()
    begin, finish = _period(ctx, engine, start, end)
    fc = build(table, call_facts(engine, begin, finish), begin, finish, goal, roster=scheduled,
               simulate_hours=simulate, seed=seed, default_talk=talk)
    t = _translator(lang)
    if csv_path != "-" and json_path != "-":
        click.echo(report.forecast_text(fc, table, t))
    _write(csv_path, report.forecast_csv(fc))
    _write(json_path, json.dumps(report.forecast_dict(fc, table), ensure_ascii=False, indent=1, default=str)
           + "\n")
    if html_path:
        _write(html_path, report.forecast_html(fc, table, t, lang, _generated(table.timezone)))


@traffic.command("synthesize", epilog=EXAMPLES_SYNTH)
@click.option("--days", type=click.IntRange(1, 366), default=7, show_default=True)
@click.option("--start", default=None, help="First day (default: the Monday of last week).")
@click.option("--seed", type=int, default=1, show_default=True, help="The same seed writes the same calls.")
@click.option("--talk-mean", type=float, default=240.0, show_default=True, help="Mean talk seconds (log-normal).")
@click.option("--patience-mean", type=float, default=90.0, show_default=True,
              help="Mean patience seconds (exponential).")
@click.option("--staffing", type=float, default=1.0, show_default=True,
              help="Agents on duty as a share of what Erlang C asks for 80/15 (below 1: understaffed).")
@db_option
@database_errors
def synthesize_cmd(days, start, seed, talk_mean, patience_mean, staffing, db_url) -> None:
    """Write a realistic synthetic period of calls into the database (a 12345 day's shape, the table's
    holidays), so a fresh install can show a forecast."""
    from ivr.menus import MenuError, load_menus
    from records.keys import key_from_settings
    from traffic.source import write_calls
    from traffic.synth import Model, synthesize

    ctx = Context(db_url)
    table = _table(ctx)
    first = _day(start, "--start")
    if first is None:
        today = datetime.now(timezone.utc).astimezone(table.timezone).date()
        first = today - timedelta(days=today.weekday() + 7)
    model = Model(talk_mean=talk_mean, patience_mean=patience_mean, staffing=staffing)
    try:
        menus = load_menus(ctx.settings.ivr_menus, table)
    except (MenuError, OSError) as exc:
        raise click.ClickException(f"the menus {ctx.settings.ivr_menus} do not load: {exc}") from None
    records = synthesize(table, first, days, seed, model, menus)
    written = write_calls(ctx.engine(), records, key_from_settings(ctx.settings))
    click.echo(f"wrote {written} synthetic calls, {first} to {first + timedelta(days=days - 1)} "
               f"({table.timezone}), seed {seed}, into {ctx.shown_url()}")
