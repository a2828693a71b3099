"""`hotline switch list|on|off|history`: the manual override switches of the routing table, flipped from a shell.

A flip is written to SQL (state + audit: who, when, why, optional expiry). Every engine reads the state in the
background (within 2 s, ivr.switchboard); an engine on this host (its pid file) is also signalled (SIGUSR1) and
the command waits, up to --wait seconds, for it to confirm it has read this flip, so the next call is routed
with it before the command returns.
"""
from __future__ import annotations

import json
import os
import re
import signal
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import click

from scripts.cli_engine import switch_ack_path
from scripts import cliopts
from scripts.settings import load_settings

DURATION = re.compile(r"^\+?(\d+)([mhd])$")


def _table(file: Path | None):
    from scripts.cli_routes import load
    return load(file).table


def _store():
    from records.db import SchemaNotReady
    from records.switches import SwitchStore
    try:
        return SwitchStore.for_url(load_settings().db_url)
    except SchemaNotReady as exc:
        raise click.ClickException(str(exc)) from None
    except Exception as exc:
        raise click.ClickException(f"the records database cannot be reached: {type(exc).__name__}: {exc}") from None


def parse_until(text: str | None, now: datetime, tz) -> datetime | None:
    """'+2h', '30m', '1d', or an ISO-8601 instant (without an offset: the table's time zone)."""
    if not text:
        return None
    match = DURATION.match(text.strip())
    if match:
        amount, unit = int(match.group(1)), match.group(2)
        return now + timedelta(**{{"m": "minutes", "h": "hours", "d": "days"}[unit]: amount})
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise click.BadParameter(f"'{text}' is neither a duration (+2h, 30m, 1d) nor an ISO-8601 instant") from None
    return value if value.tzinfo else value.replace(tzinfo=tz)


def _local(value: datetime | None, tz) -> str:
    return value.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S") if value else "-"


def notify_local_engine(revision: int, pid_file: Path, wait: float) -> str:
    """SIGUSR1 to the engine of this host, then wait until it says it has read `revision`."""
    try:
        pid = int(pid_file.read_text(encoding="utf-8").strip())
        os.kill(pid, signal.SIGUSR1)
    except (OSError, ValueError):
        return "no engine runs on this host (no pid file): engines elsewhere read it within 2 s"
    ack = switch_ack_path(pid_file)
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        try:
            seen = json.loads(ack.read_text(encoding="utf-8"))
            if seen.get("pid") == pid and int(seen.get("revision", 0)) >= revision:
                return f"in force on the local engine (pid {pid}) for its next call; other engines within 2 s"
        except (OSError, ValueError):
            pass
        time.sleep(0.05)
    return f"the local engine (pid {pid}) did not confirm within {wait:g} s; every engine reads it within 2 s"


@click.group(name="switch", epilog="\b\nExamples:\n  hotline switch list\n"
                                   "  hotline switch on typhoon --why '台风“摩羯”登陆' --until +12h\n"
                                   "  hotline switch off typhoon --why '台风过境'")
def switch() -> None:
    """Manual override switches (typhoon, a sub-center down, night mode): list, switch on, switch off."""


table_option = cliopts.table_option()


@switch.command(name="list", epilog="\b\nExamples:\n  hotline switch list\n  hotline switch list --json")
@table_option
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output (times with their offset).")
def list_switches(file: Path | None, as_json: bool) -> None:
    """Every switch of the table: on or off, who flipped it, when, why, until when, what it does."""
    table = _table(file)
    snapshot = _store().snapshot()
    now = datetime.now(timezone.utc)
    rows = []
    for name, sw in table.switches.items():
        state = snapshot.states.get(name)
        status = "off" if state is None or not state.active else ("on" if state.on_at(now) else "expired")
        rows.append({"name": name, "zh": sw.name_zh, "en": sw.name_en, "state": status,
                     "code": f"*95{sw.code} / *96{sw.code}", "effects": sw.effects(),
                     "by": state.changed_by if state else None, "via": state.via if state else None,
                     "at": state.changed_at.astimezone(table.timezone).isoformat() if state else None,
                     "why": state.why if state else None,
                     "until": state.until.astimezone(table.timezone).isoformat() if state and state.until else None})
    if as_json:
        click.echo(json.dumps({"switches": rows, "revision": snapshot.revision}, ensure_ascii=False, indent=2))
        return
    if not rows:
        click.echo("the routing table declares no switches")
    for row in rows:
        state = snapshot.states.get(row["name"])
        click.echo(f"{row['state'].upper():7} {row['name']} — {row['zh']} ({row['en']}); phone {row['code']}")
        click.echo(f"        {row['effects']}")
        if state is not None:
            click.echo(f"        {'on' if state.active else 'off'} by {state.changed_by} ({state.via}) at "
                       f"{_local(state.changed_at, table.timezone)} {table.timezone.key}: {state.why}"
                       + (f"; until {_local(state.until, table.timezone)}" if state.until else ""))


def _flip(name: str, active: bool, why: str, until: str | None, file: Path | None, pid_file: Path | None,
          wait: float) -> None:
    from records.switches import SwitchError
    from scripts.companions import operator_name

    table = _table(file)
    now = datetime.now(timezone.utc)
    try:
        state, revision = _store().flip(name, active, by=operator_name(), via="cli", why=why, at=now,
                                        until=parse_until(until, now, table.timezone), known=table.switches)
    except SwitchError as exc:
        raise click.ClickException(str(exc)) from None
    sw = table.switches[name]
    click.echo(f"{name} ({sw.name_zh} / {sw.name_en}) is {'ON' if active else 'OFF'} (revision {revision}) "
               f"by {state.changed_by} at {_local(state.changed_at, table.timezone)} {table.timezone.key}"
               + (f", until {_local(state.until, table.timezone)}" if state.until else ""))
    click.echo(notify_local_engine(revision, pid_file or load_settings().pid_file, wait))


def _flip_command(active: bool):
    word = "on" if active else "off"
    example = ("  hotline switch on force-night --why '全省停电预案' --until 2026-12-02T08:00" if active
               else "  hotline switch off force-night --why '恢复正常'")

    doc = (f"Switch NAME {word}: the next call is routed with it (emergency lines never are)."
           + (" --until ends it on its own." if active else ""))

    @switch.command(name=word, help=doc, epilog=f"\b\nExamples:\n{example}")
    @click.argument("name")
    @click.option("--why", required=True, help="Why (kept in the audit trail with who and when).")
    @table_option
    @click.option("--pid-file", type=click.Path(path_type=Path), default=None,
                  help="The local engine to signal (SIGUSR1) and wait for [HOTLINE_PID_FILE, var/hotline.pid].")
    @click.option("--wait", type=float, default=3.0, show_default=True,
                  help="Seconds to wait for the local engine to confirm.")
    def command(name, why, file, pid_file, wait, **extra) -> None:
        _flip(name, active, why, extra.get("until"), file, pid_file, wait)

    if active:
        command = click.option("--until", default=None,
                               help="Ends by itself: +2h, 30m, 1d or an instant (ISO-8601, default zone: the "
                                    "table's).")(command)
    return command


switch_on = _flip_command(True)
switch_off = _flip_command(False)


@switch.command(epilog="\b\nExamples:\n  hotline switch history\n  hotline switch history typhoon --limit 5")
@click.argument("name", required=False)
@click.option("--limit", type=int, default=20, show_default=True)
@table_option
def history(name: str | None, limit: int, file: Path | None) -> None:
    """The audit trail of the flips, newest first: when, switch, on/off, who, via, why."""
    table = _table(file)
    for event in _store().events(limit, name):
        click.echo(f"{_local(event['at'], table.timezone)}  {event['name']:24} {'on ' if event['active'] else 'off'} "
                   f"{event['by']} ({event['via']}): {event['why']}"
                   + (f"; until {_local(event['until'], table.timezone)}" if event["until"] else ""))
