"""`hotline serve`, `hotline reload`, `hotline call`: run the FastAGI engine, reload it, place a dry-run call."""
from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import click
import structlog

from scripts.logsetup import batch_log_lines
from scripts.settings import load_settings

log = structlog.get_logger()


def _print_problems(problems) -> None:
    for problem in problems:
        click.echo(str(problem), err=True)


SERVE_EXAMPLES = """\b
Examples:
  hotline serve                                   # production: 127.0.0.1:4573, records, AMI, web view
  hotline serve --dry-run                         # a test engine beside it: port 4599, nothing of production's
  hotline serve --dry-run --records --web         # the dry run with its own records and view (var/dry-run/)
  HOTLINE_AGI_ALLOW=10.0.0.5 hotline serve --host 0.0.0.0 --max-sessions 10000"""


@click.command(epilog=SERVE_EXAMPLES)
@click.option("--host", default=None, help="Listen address [HOTLINE_AGI_HOST].")
@click.option("--port", type=int, default=None,
              help="Listen port [HOTLINE_AGI_PORT; --dry-run: HOTLINE_DRY_RUN_PORT, 4599], 0 = any free port.")
@click.option("--max-sessions", type=int, default=None, help="Concurrent calls [HOTLINE_AGI_MAX_SESSIONS].")
@click.option("--env-timeout", type=float, default=2.0, show_default=True,
              help="Seconds a peer gets to send the agi_* block (Asterisk sends it at once).")
@click.option("--reply-timeout", type=float, default=60.0, show_default=True,
              help="Seconds Asterisk gets to answer one command (a prompt plays within this).")
@click.option("--drain-timeout", type=float, default=10.0, show_default=True,
              help="On SIGTERM/Ctrl-C, seconds calls in flight get to finish.")
@click.option("--dry-run", is_flag=True,
              help="A test engine beside production: its own port (4599), pid file and state "
                   "(HOTLINE_DRY_RUN_DIR, var/dry-run/), test clock allowed, no records, AMI or web view unless "
                   "asked (its records go to its own directory, and never count for the abuse rule).")
@click.option("--allow-test-clock", is_flag=True,
              help="Honour the HOTLINE_AT channel variable (dry runs with `hotline call --at`). Never in production.")
@click.option("--records/--no-records", default=None, help="Record calls (spool + SQL) [on; --dry-run: off].")
@click.option("--ami/--no-ami", default=None,
              help="Connect to Asterisk's AMI (when HOTLINE_AMI_SECRET is set): call outcomes and live queues "
                   "[on; --dry-run: off].")
@click.option("--web/--no-web", default=None,
              help="Serve the supervisors' view beside the engine [on; --dry-run: off].")
@click.option("--web-port", type=int, default=None,
              help="Port of that view [HOTLINE_WEB_PORT; --dry-run: any free port].")
@click.option("--pid-file", type=click.Path(path_type=Path), default=None,
              help="[HOTLINE_PID_FILE, var/hotline.pid; --dry-run: var/dry-run/hotline.pid]")
def serve(host, port, max_sessions, env_timeout, reply_timeout, drain_timeout, dry_run, allow_test_clock, records,
          ami, web, web_port, pid_file) -> None:
    """Run the FastAGI server (Asterisk: AGI(agi://HOST:PORT/route,${EXTEN})). SIGHUP reloads the YAML."""
    from ivr.engine import ConfigError, ConfigHolder
    from scripts import enginestate, runtime

    settings = load_settings()
    if dry_run:
        allow_test_clock = True
        port = settings.dry_run_port if port is None else port
        pid_file = pid_file or settings.dry_run_dir / "hotline.pid"
        # Its records (when asked) live in its own directory: production's records and abuse counts stay apart.
        settings = settings.model_copy(update={
            "db_url": f"sqlite:///{settings.dry_run_dir / 'hotline.sqlite3'}",
            "spool_dir": settings.dry_run_dir / "spool",
            "web_port": 0 if web_port is None else web_port})
    elif web_port is not None:
        settings = settings.model_copy(update={"web_port": web_port})
    records = (not dry_run) if records is None else records
    ami = (not dry_run) if ami is None else ami
    web = (not dry_run) if web is None else web
    pid_file = pid_file or settings.pid_file
    host = host or settings.agi_host
    port = settings.agi_port if port is None else port
    problem = enginestate.claim_problem(pid_file) or enginestate.port_problem(host, port, "FastAGI address")
    if web and problem is None:
        problem = enginestate.port_problem(settings.web_host, settings.web_port, "web view address")
        if problem and not dry_run:      # production: the view failing never stops calls, it is said loud
            log.error("supervisor.web_unavailable", error=problem)
            click.echo(f"warning: {problem}; the engine runs without its web view", err=True)
            problem, web = None, False
    if problem:
        raise click.UsageError(problem)
    try:
        holder = ConfigHolder.from_files(settings.routing_table, settings.ivr_menus)
    except ConfigError as exc:
        _print_problems(exc.problems)
        raise SystemExit(1)
    batch_log_lines()                    # the call path's info lines in batches: a write() per line costs the call
    try:
        runtime.run(_serve(holder, settings, host, port, max_sessions or settings.agi_max_sessions, env_timeout,
                           reply_timeout, drain_timeout, allow_test_clock, records, ami, web, pid_file, dry_run),
                    settings.event_loop)
    except ValueError as exc:            # HOTLINE_EVENT_LOOP names no loop we can run
        raise click.ClickException(str(exc)) from None
    except OSError as exc:               # lost a race for the port since the check: still no traceback
        raise click.ClickException(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None


def _recorder(settings, dry_run: bool):
    from records.keys import callback_key_from_settings, key_from_settings
    from records.recorder import CallRecorder

    class DryRunRecorder(CallRecorder):
        """A dry run's records: kept, but its own calls never count for the abuse rule (no caller counts:
        note_arrival answers zero, nothing is read back from SQL)."""

        def __init__(self, *args, **kwargs):
            super().__init__(*args, count_callers=False, **kwargs)

        def caller_history(self, caller, at, minutes):
            from routing.model import CallerHistory
            return CallerHistory(calls_in_window=0)

    cls = DryRunRecorder if dry_run else CallRecorder
    return cls(settings.db_url, settings.spool_dir, key_from_settings(settings),
               callback_key=callback_key_from_settings(settings))


async def _serve(holder, settings, host, port, max_sessions, env_timeout, reply_timeout, drain_timeout,
                 allow_test_clock, records, ami, web, pid_file: Path, dry_run: bool = False) -> None:
    from ivr.engine import Engine
    from ivr.fastagi import ServerLimits, build_server, parse_allow
    from scripts import companions, enginestate
    from scripts.runtime import ensure_descriptors, settle_heap

    # Every call holds a socket: the soft open-files limit is raised so the cap fits (or the cap is what fits).
    max_sessions = ensure_descriptors(max_sessions, settings.agi_max_pending)
    try:                      # bad limits or allow-list: refused before anything starts
        limits = ServerLimits(max_sessions=max_sessions, env_timeout=env_timeout, reply_timeout=reply_timeout,
                              drain_timeout=drain_timeout, max_pending=settings.agi_max_pending,
                              max_pending_per_address=settings.agi_max_pending_per_address)
        allow = parse_allow(settings.agi_allow)
    except ValueError as exc:
        raise click.ClickException(f"HOTLINE_AGI_*: {exc}") from None
    recorder, recorder_task = None, None
    if records:
        from records.callbacks import CallbackCipher, CallbackKeyError
        from records.keys import callback_key_from_settings
        try:  # a malformed key is the admin's to fix now, not a callback lost at the first request
            CallbackCipher(callback_key_from_settings(settings))
        except CallbackKeyError as exc:
            raise click.ClickException(str(exc)) from None
        try:
            recorder = _recorder(settings, dry_run)
            # Before the web view starts: on a first run its queries met an SQLite file without tables yet.
            await asyncio.to_thread(recorder.prepare_schema)
            recorder_task = asyncio.create_task(recorder.run())
        except Exception as exc:       # records are never a reason not to route calls
            log.error("serve.records_unavailable", error=f"{type(exc).__name__}: {exc}")
            recorder = None
    companions.record_config_versions(recorder, holder.current, f"{companions.operator_name()} (serve start)")

    def reload() -> bool:
        loaded_by, request_id = companions.take_reload_note(enginestate.request_file(pid_file))
        previous = holder.current.table.version
        ok = holder.reload()
        if ok:
            companions.record_config_versions(recorder, holder.current, loaded_by)
        try:                   # the answer `hotline reload` waits for (any SIGHUP gets one)
            enginestate.write_reload_result(pid_file, request_id=request_id, ok=ok,
                                            table=holder.current.table.version, menus=holder.current.menus.version,
                                            previous_table=previous, problems=holder.last_problems)
        except OSError as exc:
            log.error("config.reload_result_unwritten", error=str(exc))
        return ok

    clients = companions.ami_clients(settings) if ami else {}
    companions.feed_outcomes(clients, recorder)
    await companions.start_clients(clients)
    if web:
        from scripts.engine_metrics import CalendarCollector
        from supervisor import metrics
        metrics.process_collectors.append(CalendarCollector(holder))
    web_service = await companions.start_web(settings, clients) if web else None
    if web and web_service is None and dry_run:
        await companions.close_clients(clients)
        raise click.ClickException("the dry run's web view could not start (see the log above)")
    # a dry run without --records keeps no state of its own and reads none of production's: no switch is on
    # (try one with `hotline routes explain --switch NAME`)
    board, board_task = await _start_switchboard(settings, pid_file, read_store=records or not dry_run)
    if web_service is not None:          # a flip in this process's web view is in force for the next call at once
        web_service.hub.on_switch_flipped = board.apply
    engine = Engine(holder, recorder=recorder, allow_test_clock=allow_test_clock, switchboard=board)
    from ivr.switchboard import SwitchEntry
    server = build_server(engine, host=host, port=port, limits=limits, allow=allow,
                          scripts={"switch": SwitchEntry(holder, board, engine.clock).handle})
    bound = await server.start()
    settle_heap()
    enginestate.write_pid(pid_file)
    if allow_test_clock:
        log.warning("serve.test_clock_allowed", variable="HOTLINE_AT", advice="dry runs only, never production")
    kind = "dry-run engine" if dry_run else "FastAGI"
    extras = [f"records {'on' if recorder else 'off'}", f"AMI {'on' if clients else 'off'}"]
    if web_service is not None:
        extras.append(f"web http://{settings.web_host}:{web_service.port}/")
    click.echo(f"hotline: {kind} listening on {host}:{bound} (pid {os.getpid()}, pid file {pid_file}, table "
               f"{holder.current.table.version}; {', '.join(extras)}); SIGHUP reloads, SIGTERM/Ctrl-C drains",
               err=True)
    try:
        await server.serve_until_signalled(on_reload=reload)
    finally:
        board_task.cancel()
        await asyncio.gather(board_task, return_exceptions=True)
        asyncio.get_running_loop().remove_signal_handler(signal.SIGUSR1)
        if web_service is not None:
            await web_service.stop()
        await companions.close_clients(clients)
        if recorder_task is not None:
            recorder_task.cancel()
            await asyncio.gather(recorder_task, return_exceptions=True)
        if recorder is not None:
            await asyncio.to_thread(recorder.close)
        enginestate.release_pid(pid_file)


def switch_ack_path(pid_file: Path) -> Path:
    """Where the engine says which switch revision it has read (`hotline switch` waits for it)."""
    return pid_file.parent / "switches-seen.json"


async def _start_switchboard(settings, pid_file: Path, *, read_store: bool = True):
    """The override switches, refreshed from SQL in the background (ivr.switchboard); SIGUSR1 refreshes now.
    Without a readable database (or with `read_store` False) no switch is on, and calls are routed all the same."""
    from ivr.switchboard import SwitchBoard

    store = None
    try:
        if read_store:
            from records.switches import SwitchStore
            store = await asyncio.to_thread(SwitchStore.for_url, settings.db_url)
    except Exception as exc:
        log.error("switches.unavailable", error=f"{type(exc).__name__}: {exc}", effect="no switch is on")
    board = SwitchBoard(store, ack_path=switch_ack_path(pid_file))
    await asyncio.to_thread(board.refresh)          # the state in force before the first call
    asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, board.wake)
    return board, asyncio.create_task(board.run(), name="switchboard")


RELOAD_EXAMPLES = """\b
Examples:
  hotline reload                   # the production engine (var/hotline.pid); waits for its answer
  hotline reload --dry-run         # the dry-run engine (var/dry-run/hotline.pid)
  hotline reload --no-wait         # signal and return (the answer is in hotline.reload-result.json)"""


@click.command(epilog=RELOAD_EXAMPLES)
@click.option("--pid-file", type=click.Path(path_type=Path), default=None,
              help="[HOTLINE_PID_FILE, var/hotline.pid; --dry-run: var/dry-run/hotline.pid]")
@click.option("--dry-run", is_flag=True, help="Reload the dry-run engine (`hotline serve --dry-run`).")
@click.option("--pid", type=int, default=None, help="Signal this process instead of the pid file's.")
@click.option("--wait", "wait_seconds", type=float, default=100.0, show_default=True,
              help="Seconds to wait for the engine's answer (its own check is bounded at 90 s).")
@click.option("--no-wait", is_flag=True, help="Signal and return without the engine's answer.")
def reload(pid_file: Path | None, dry_run: bool, pid: int | None, wait_seconds: float, no_wait: bool) -> None:
    """Validate the routing table and menus, then ask a running `hotline serve` to load them (SIGHUP), and
    print its answer: reloaded (the versions) or refused (every problem as file:line).

    A broken file is reported here and nothing is sent; the server would refuse it anyway and keep running
    its current table. The check is the server's own: a bounded child process, with the same limits.
    Exit 0 reloaded, 1 refused (here or by the engine), 2 no running engine, 3 no answer in time."""
    from ivr.configcheck import read_pair, validate_in_child
    from routing.yamlsource import SourceError
    from scripts import enginestate
    from scripts.companions import note_reload_request

    settings = load_settings()
    pid_file = pid_file or (settings.dry_run_dir / "hotline.pid" if dry_run else settings.pid_file)
    try:
        table_text, menus_text = read_pair(settings.routing_table, settings.ivr_menus)
        problems = validate_in_child((settings.routing_table, table_text), (settings.ivr_menus, menus_text))
    except SourceError as exc:
        problems = exc.problems
    if problems:
        _print_problems(problems)
        click.echo("not reloaded: the running engine keeps its current table", err=True)
        raise SystemExit(1)
    if pid is None:
        pid, why = enginestate.running_engine(pid_file)
        if pid is None:
            click.echo(f"error: {why}", err=True)
            raise SystemExit(2)
    request_id = note_reload_request(enginestate.request_file(pid_file))
    try:
        os.kill(pid, signal.SIGHUP)
    except ProcessLookupError:
        click.echo(f"error: no running engine: no process {pid}", err=True)
        raise SystemExit(2)
    if no_wait:
        click.echo(f"reload requested from pid {pid}; the answer: {enginestate.result_file(pid_file)}")
        return
    result = enginestate.wait_reload_result(pid_file, request_id, pid, wait_seconds)
    if result is None:
        click.echo(f"error: pid {pid} gave no answer within {wait_seconds:g} s (is it a hotline serve with "
                   f"pid file {pid_file}?); its log says config.reloaded or config.reload_refused", err=True)
        raise SystemExit(3)
    if result.get("gone"):
        click.echo(f"error: pid {pid} ended before it answered", err=True)
        raise SystemExit(2)
    if result["ok"]:
        same = result["table"] == result["previous_table"]
        click.echo(f"reloaded by pid {pid}: table {result['table']}"
                   + (" (unchanged)" if same else f" (was {result['previous_table']})") + f", menus {result['menus']}")
        return
    for line in result.get("problems") or []:
        click.echo(line, err=True)
    click.echo(f"refused by pid {pid}: it keeps table {result['table']}", err=True)
    raise SystemExit(1)


CALL_EXAMPLES = """\b
Examples:
  hotline serve --dry-run &                       # once: the dry-run engine these calls go to
  hotline call 12320 --dtmf 1                     # 12320, key 1: the expert seat
  hotline call 12345 --dtmf 9,2 --at 2027-01-01T03:00   # English menu, key 2, at that instant
  hotline call 12345 --port 4573                  # the production engine: recorded there, counts for abuse"""


@click.command(epilog=CALL_EXAMPLES)
@click.argument("number")
@click.option("--dtmf", default="", help="Keys the caller presses, comma separated: 1,2 / 12# / timeout / hangup.")
@click.option("--at", "at", default=None, help="Test instant (ISO 8601); needs serve --allow-test-clock.")
@click.option("--caller", default="13800138000", show_default=True, help="Calling number.")
@click.option("--caller-name", default="Dry Run", show_default=True)
@click.option("--host", default=None, help="Engine address [HOTLINE_AGI_HOST].")
@click.option("--port", type=int, default=None,
              help="Engine port [HOTLINE_DRY_RUN_PORT, 4599: the dry-run engine]. The production engine's port "
                   "(4573) is for when you mean it: that engine records the call and counts it for the abuse rule.")
@click.option("--hangup-after", type=int, default=None,
              help="The caller hangs up at the N-th AGI command (0-based): during it if it plays or listens, "
                   "right after it otherwise.")
@click.option("--timeout", type=float, default=30.0, show_default=True)
def call(number, dtmf, at, caller, caller_name, host, port, hangup_after, timeout) -> None:
    """Place an emulated call (Asterisk 22 as recorded) against a running engine and print what happened.

    By default it calls the dry-run engine (`hotline serve --dry-run`), which records nothing and counts
    nothing for the abuse rule, so dry runs never touch production's records."""
    from ivr.emulator import place_call

    settings = load_settings()
    keys = [k.strip() for k in dtmf.split(",") if k.strip()]
    variables = {"HOTLINE_AT": at} if at else {}
    host = host or settings.agi_host
    to_dry_run = port is None
    port = settings.dry_run_port if port is None else port
    t = asyncio.run(place_call(host, port,
                               dialed=number, caller=caller, caller_name=caller_name, dtmf=keys,
                               hangup_at=hangup_after, variables=variables, timeout=timeout,
                               exit_on_hangup=True))   # as the generated dialplan (AGIEXITONHANGUP=yes)
    if t.error and to_dry_run and not t.exchanges and "Connect" in t.error:
        click.echo(f"error: no dry-run engine on {host}:{port}: start one with `hotline serve --dry-run` "
                   f"(or give --port of the engine you mean)", err=True)
        sys.exit(1)
    click.echo(t.render())
    if at and not any(cmd.startswith("GET VARIABLE HOTLINE_AT") for cmd, _ in t.exchanges):
        click.echo("note: the engine ignored --at (start it with `hotline serve --dry-run`, which allows the "
                   "test clock); the call was routed for the current time", err=True)
    if t.error:
        click.echo(f"error: {t.error}", err=True)
        sys.exit(1)
