"""`hotline serve`, `hotline reload`, `hotline call`: run the FastAGI engine, reload it, place a dry-run call."""
from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import click
import structlog

from scripts.settings import VAR_DIR, load_settings

log = structlog.get_logger()
PID_FILE = VAR_DIR / "hotline.pid"


def _print_problems(problems) -> None:
    for problem in problems:
        click.echo(str(problem), err=True)


@click.command()
@click.option("--host", default=None, help="Listen address [HOTLINE_AGI_HOST].")
@click.option("--port", type=int, default=None, help="Listen port [HOTLINE_AGI_PORT], 0 = any free port.")
@click.option("--max-sessions", type=int, default=None, help="Concurrent calls [HOTLINE_AGI_MAX_SESSIONS].")
@click.option("--env-timeout", type=float, default=2.0, show_default=True,
              help="Seconds a peer gets to send the agi_* block (Asterisk sends it at once).")
@click.option("--reply-timeout", type=float, default=60.0, show_default=True,
              help="Seconds Asterisk gets to answer one command (a prompt plays within this).")
@click.option("--drain-timeout", type=float, default=10.0, show_default=True,
              help="On SIGTERM/Ctrl-C, seconds calls in flight get to finish.")
@click.option("--allow-test-clock", is_flag=True,
              help="Honour the HOTLINE_AT channel variable (dry runs with `hotline call --at`). Never in production.")
@click.option("--records/--no-records", default=True, show_default=True, help="Record calls (spool + SQL).")
@click.option("--ami/--no-ami", default=True, show_default=True,
              help="Connect to Asterisk's AMI (when HOTLINE_AMI_SECRET is set): call outcomes and live queues.")
@click.option("--web/--no-web", default=True, show_default=True,
              help="Serve the supervisors' view beside the engine [HOTLINE_WEB_HOST:HOTLINE_WEB_PORT].")
@click.option("--pid-file", type=click.Path(path_type=Path), default=PID_FILE, show_default=True)
def serve(host, port, max_sessions, env_timeout, reply_timeout, drain_timeout, allow_test_clock, records, ami,
          web, pid_file) -> None:
    """Run the FastAGI server (Asterisk: AGI(agi://HOST:PORT/route,${EXTEN})). SIGHUP reloads the YAML."""
    from ivr.engine import ConfigError, ConfigHolder

    settings = load_settings()
    try:
        holder = ConfigHolder.from_files(settings.routing_table, settings.ivr_menus)
    except ConfigError as exc:
        _print_problems(exc.problems)
        raise SystemExit(1)
    asyncio.run(_serve(holder, settings, host or settings.agi_host,
                       settings.agi_port if port is None else port,
                       max_sessions or settings.agi_max_sessions, env_timeout, reply_timeout, drain_timeout,
                       allow_test_clock, records, ami, web, pid_file))


async def _serve(holder, settings, host, port, max_sessions, env_timeout, reply_timeout, drain_timeout,
                 allow_test_clock, records, ami, web, pid_file: Path) -> None:
    from ivr.engine import Engine
    from ivr.fastagi import ServerLimits, build_server, parse_allow
    from scripts import companions

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
            from records.keys import callback_key_from_settings, key_from_settings
            from records.recorder import CallRecorder
            recorder = CallRecorder(settings.db_url, settings.spool_dir, key_from_settings(settings),
                                    callback_key=callback_key_from_settings(settings))
            recorder_task = asyncio.create_task(recorder.run())
        except Exception as exc:       # records are never a reason not to route calls
            log.error("serve.records_unavailable", error=f"{type(exc).__name__}: {exc}")
            recorder = None
    companions.record_config_versions(recorder, holder.current, f"{companions.operator_name()} (serve start)")

    def reload() -> bool:
        loaded_by = companions.take_reload_request()
        ok = holder.reload()
        if ok:
            companions.record_config_versions(recorder, holder.current, loaded_by)
        return ok

    clients = companions.ami_clients(settings) if ami else {}
    companions.feed_outcomes(clients, recorder)
    await companions.start_clients(clients)
    web_service = await companions.start_web(settings, clients) if web else None
    board, board_task = await _start_switchboard(settings, pid_file)
    if web_service is not None:          # a flip in this process's web view is in force for the next call at once
        web_service.hub.on_switch_flipped = board.apply
    engine = Engine(holder, recorder=recorder, allow_test_clock=allow_test_clock, switchboard=board)
    from ivr.switchboard import SwitchEntry
    server = build_server(engine, host=host, port=port, limits=limits, allow=allow,
                          scripts={"switch": SwitchEntry(holder, board, engine.clock).handle})
    bound = await server.start()
    pid_file.parent.mkdir(parents=True, exist_ok=True)
    pid_file.write_text(f"{os.getpid()}\n", encoding="utf-8")
    if allow_test_clock:
        log.warning("serve.test_clock_allowed", variable="HOTLINE_AT", advice="dry runs only, never production")
    click.echo(f"hotline: FastAGI listening on {host}:{bound} (pid {os.getpid()}, table "
               f"{holder.current.table.version}); SIGHUP reloads, SIGTERM/Ctrl-C drains", err=True)
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
        try:
            if pid_file.read_text(encoding="utf-8").strip() == str(os.getpid()):
                pid_file.unlink()
        except OSError:
            pass


def switch_ack_path(pid_file: Path) -> Path:
    """Where the engine says which switch revision it has read (`hotline switch` waits for it)."""
    return pid_file.parent / "switches-seen.json"


async def _start_switchboard(settings, pid_file: Path):
    """The override switches, refreshed from SQL in the background (ivr.switchboard); SIGUSR1 refreshes now.
    Without a readable database no switch is on, and calls are routed all the same."""
    from ivr.switchboard import SwitchBoard

    store = None
    try:
        from records.switches import SwitchStore
        store = await asyncio.to_thread(SwitchStore.for_url, settings.db_url)
    except Exception as exc:
        log.error("switches.unavailable", error=f"{type(exc).__name__}: {exc}", effect="no switch is on")
    board = SwitchBoard(store, ack_path=switch_ack_path(pid_file))
    await asyncio.to_thread(board.refresh)          # the state in force before the first call
    asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, board.wake)
    return board, asyncio.create_task(board.run(), name="switchboard")


@click.command()
@click.option("--pid-file", type=click.Path(path_type=Path), default=PID_FILE, show_default=True)
@click.option("--pid", type=int, default=None, help="Signal this process instead of the pid file's.")
def reload(pid_file: Path, pid: int | None) -> None:
    """Validate the routing table and menus, then ask a running `hotline serve` to load them (SIGHUP).

    A broken file is reported here and nothing is sent; the server would refuse it anyway and keep running
    its current table. The check is the server's own: a bounded child process, with the same limits."""
    from ivr.configcheck import read_pair, validate_in_child
    from routing.yamlsource import SourceError

    settings = load_settings()
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
        try:
            pid = int(pid_file.read_text(encoding="utf-8").strip())
        except (OSError, ValueError):
            raise click.ClickException(f"no running engine found ({pid_file} missing or unreadable)")
    from scripts.companions import note_reload_request

    note_reload_request()
    try:
        os.kill(pid, signal.SIGHUP)
    except ProcessLookupError:
        raise click.ClickException(f"no process {pid} (stale {pid_file}?)")
    click.echo(f"reload requested from pid {pid}; its log says config.reloaded or config.reload_refused")


@click.command()
@click.argument("number")
@click.option("--dtmf", default="", help="Keys the caller presses, comma separated: 1,2 / 12# / timeout / hangup.")
@click.option("--at", "at", default=None, help="Test instant (ISO 8601); needs serve --allow-test-clock.")
@click.option("--caller", default="13800138000", show_default=True, help="Calling number.")
@click.option("--caller-name", default="Dry Run", show_default=True)
@click.option("--host", default=None, help="Engine address [HOTLINE_AGI_HOST].")
@click.option("--port", type=int, default=None, help="Engine port [HOTLINE_AGI_PORT].")
@click.option("--hangup-after", type=int, default=None,
              help="The caller hangs up at the N-th AGI command (0-based): during it if it plays or listens, "
                   "right after it otherwise.")
@click.option("--timeout", type=float, default=30.0, show_default=True)
def call(number, dtmf, at, caller, caller_name, host, port, hangup_after, timeout) -> None:
    """Place an emulated call (Asterisk 22 as recorded) against a running engine and print what happened."""
    from ivr.emulator import place_call

    settings = load_settings()
    keys = [k.strip() for k in dtmf.split(",") if k.strip()]
    variables = {"HOTLINE_AT": at} if at else {}
    t = asyncio.run(place_call(host or settings.agi_host, settings.agi_port if port is None else port,
                               dialed=number, caller=caller, caller_name=caller_name, dtmf=keys,
                               hangup_at=hangup_after, variables=variables, timeout=timeout,
                               exit_on_hangup=True))   # as the generated dialplan (AGIEXITONHANGUP=yes)
    click.echo(t.render())
    if at and not any(cmd.startswith("GET VARIABLE HOTLINE_AT") for cmd, _ in t.exchanges):
        click.echo("note: the engine ignored --at (start it with `hotline serve --allow-test-clock`); "
                   "the call was routed for the current time", err=True)
    if t.error:
        click.echo(f"error: {t.error}", err=True)
        sys.exit(1)
