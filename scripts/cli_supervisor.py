"""`hotline web` (the supervisors' live view) and `hotline queues watch` (the same figures in a terminal)."""
from __future__ import annotations

import asyncio
import getpass
import sys
import time

import click

from scripts.settings import load_settings


@click.group(invoke_without_command=True)
@click.option("--host", default=None, help="Address to listen on (default HOTLINE_WEB_HOST, 127.0.0.1).")
@click.option("--port", default=None, type=int, help="Port (default HOTLINE_WEB_PORT, 8345).")
@click.pass_context
def web(ctx: click.Context, host: str | None, port: int | None) -> None:
    """Serve the supervisors' live view (one AMI link per Asterisk server in HOTLINE_AMI_SERVERS)."""
    if ctx.invoked_subcommand is not None:
        return
    from scripts.enginestate import port_problem
    from supervisor.config import ConfigError
    from supervisor.service import run_supervisor
    settings = load_settings()
    taken = port_problem(host or settings.web_host, settings.web_port if port is None else port, "web view address")
    if taken:                 # uvicorn would sys.exit() from inside the event loop: a traceback, not a message
        raise click.UsageError(taken)
    try:
        asyncio.run(run_supervisor(settings, host=host, port=port))
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    except KeyboardInterrupt:
        pass


MIN_PASSWORD_LENGTH = 10


@web.command("hash-password", epilog="""\b
Examples:
  hotline web hash-password --name wang --role supervisor --phone PJSIP/8001
  printf '%s\\n' "$PW" | hotline web hash-password --name li --role admin --password-stdin >> users.txt""")
@click.option("--name", required=True, help="Login name (no ':').")
@click.option("--role", required=True, type=click.Choice(["admin", "supervisor", "viewer"]),
              help="admin: everything, audit and full numbers; supervisor: queue actions; viewer: read only.")
@click.option("--phone", default="", help="The user's own phone, for listen/whisper/barge (e.g. PJSIP/8001).")
@click.option("--password-stdin", is_flag=True, help="Read the password from the first line of stdin (scripts).")
def hash_password_cmd(name: str, role: str, phone: str, password_stdin: bool) -> None:
    """Print a ready-to-paste line of the users file (HOTLINE_WEB_USERS): name:role:scrypt-hash[:phone].

    Asks for the password twice (at least 10 characters). Only the hash is printed, never
    the password; the users file is read again by the running view whenever it changes."""
    from supervisor.auth import hash_password
    if ":" in name or ":" in phone or not name.strip():
        raise click.BadParameter("a name (and phone) without ':', the users file's separator")
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        click.echo(f"password for {name} (at least {MIN_PASSWORD_LENGTH} characters)", err=True)
        password = getpass.getpass("password: ")
        if password != getpass.getpass("again: "):
            raise click.ClickException("the two passwords differ")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise click.ClickException(f"the password has {len(password)} characters; use at least "
                                   f"{MIN_PASSWORD_LENGTH}")
    line = f"{name}:{role}:{hash_password(password)}" + (f":{phone}" if phone else "")
    click.echo(line)
    click.echo("append this line to the users file named by HOTLINE_WEB_USERS", err=True)


@click.group()
def queues() -> None:
    """Live queue figures from Asterisk (AMI)."""


@queues.command(epilog="\b\nExamples:\n  hotline queues watch\n  hotline queues watch --once --lang en\n"
                        "  HOTLINE_LANG=en hotline queues watch --interval 5")
@click.option("--once", is_flag=True, help="Print one frame once every server has answered, then exit.")
@click.option("--interval", default=1.0, show_default=True, help="Seconds between frames.")
@click.option("--full-numbers", is_flag=True, help="Show caller numbers in full (default: masked).")
@click.option("--timeout", default=10.0, show_default=True, help="With --once: how long to wait for Asterisk.")
@click.option("--lang", "lang", type=click.Choice(["zh", "en"]), envvar="HOTLINE_LANG", default="zh",
              show_default=True, help="Language of the frame (also HOTLINE_LANG).")
def watch(once: bool, interval: float, full_numbers: bool, timeout: float, lang: str) -> None:
    """A refreshing plain-text view of every queue on every configured Asterisk server."""
    from supervisor.config import ConfigError
    try:
        code = asyncio.run(_watch(once, interval, full_numbers, timeout, lang))
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    except KeyboardInterrupt:
        code = 0
    sys.exit(code)


async def _watch(once: bool, interval: float, full_numbers: bool, timeout: float, lang: str) -> int:
    from supervisor.config import ami_servers
    from supervisor.hub import SupervisorHub
    from supervisor.i18n import text
    from supervisor.service import make_clients, make_refresher, records_loader
    from supervisor.state import LiveState
    from supervisor.textview import render

    settings = load_settings()
    state = LiveState()
    refresher = make_refresher(settings, state)
    if not any(server.secret for server in ami_servers(settings)):  # first run: say what to configure
        await asyncio.to_thread(refresher.refresh_names)
        click.echo(render(state.view(time.time(), full_numbers=False, lang=lang), lang), nl=False)
        return 1
    # Today's figures from the SQL records, as the web view has them (then kept live from AMI).
    hub = SupervisorHub(make_clients(settings, reconnect_max_delay=5), state=state,
                        records_loader=records_loader(settings))
    refresher.on_change = hub.notify
    await refresher.start()
    await hub.start()

    def frame() -> str:
        return render(state.view(time.time(), full_numbers=full_numbers, lang=lang), lang, refresher.backlog)
    try:
        if once:
            synced = await hub.wait_synced(timeout)
            click.echo(frame(), nl=False)
            if not synced:
                click.echo(text("view.text.not_answered", lang), err=True)
            return 0 if synced else 1
        clear = "\x1b[H\x1b[2J" if sys.stdout.isatty() else ""
        while True:
            click.echo(clear + frame(), nl=False)
            await hub.wait_change(interval)
            await asyncio.sleep(0.1)  # a burst of events makes one frame, not ten
    finally:
        await hub.stop()
        await refresher.stop()
